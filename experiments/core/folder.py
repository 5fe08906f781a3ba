"""The former name of :mod:`experiments.core.run_folder`, kept so that code written against it
(``except experiments.core.folder.CheckpointDamagedError``) still works."""

from experiments.core.run_folder import (  # noqa: F401  (re-exported under the old name)
    CheckpointDamagedError,
    RunFolder,
    RunFolderError,
    inspect,
    read_manifest,
)
