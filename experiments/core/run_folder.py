"""The results folder of a run: its layout, what a folder holds, and its files.

Layout::

    config.json                 the run's resolved config, written once before epoch 1
    log.txt                     appended by every leg of the run
    metrics.json                what the run has measured so far (history; final metrics)
    checkpoints/manifest.json   the commit record: the truth about what is done
    checkpoints/last/<E>/       training state after epoch E (the last two epochs are kept)
    checkpoints/best/<E>/       state at the best test accuracy (and the best before it)
    report.md, *.png            written at the end
    analyses/                   the analyses of the finished run

How anything is committed to it, and which checkpoint of it may be loaded, is
:mod:`experiments.core.record` (the commit record's one owner); its files are written
atomically (:mod:`experiments.core.files`). This module says what a folder holds and whether a
command may use it, before anything is written (:func:`inspect`, :func:`check_new`,
:func:`check_resumable`, :func:`resolve_run`). It does not import JAX.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any, NamedTuple

from experiments.core import registry
from experiments.core.config import RESUME_SAFE_KEYS, ExperimentConfig, show
from experiments.core.files import RunFolderError, read_json, sha256
from experiments.core.record import CONFIG, FORMAT, METRICS, read_manifest
from experiments.core.record import CheckpointDamagedError as CheckpointDamagedError  # re-exported

SWEEP = "sweep.json"  # marks the folder of a sweep of runs (experiments.core.sweeps)
LOCK = ".lock"  # the folder's writer lock (experiments.core.lock); not part of the run


# ----------------------------------------------------------------------------- the folder
@dataclasses.dataclass(frozen=True)
class RunFolder:
    """What a results folder holds: nothing, a run (unfinished or finished), or other files."""

    path: Path
    state: str  # 'absent', 'empty', 'run', 'finished', 'legacy', 'sweep', 'foreign'
    config: dict[str, Any] | None = None  # config.json of a run
    manifest: dict[str, Any] | None = None  # the commit record, once epoch 1 committed
    warning: str | None = None  # why the manifest fell back one commit, if it did

    @property
    def epoch(self) -> int:
        """The last committed epoch (0 before the first commit)."""
        return int(self.manifest["epoch"]) if self.manifest else 0


def inspect(path: Path) -> RunFolder:
    """Classify ``path`` without changing anything in it."""
    path = Path(path)
    if not path.exists():
        return RunFolder(path, "absent")
    if not path.is_dir():
        raise RunFolderError(f"{path} is a file, not a folder; give --out a folder path.")
    names = {p.name for p in path.iterdir()} - {LOCK}
    if names <= {CONFIG + ".tmp", SWEEP + ".tmp"}:
        return RunFolder(path, "empty")  # nothing, or a run killed before it existed
    if SWEEP in names:
        return RunFolder(path, "sweep")  # the folder of a sweep (experiments.core.sweeps)
    config_file = path / CONFIG
    if not config_file.is_file():
        return RunFolder(path, "foreign")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        config = err
    if not isinstance(config, dict) or "experiment" not in config or "name" not in config:
        if (path / "checkpoints").is_dir() or METRICS in names:  # a run's, damaged
            why = f"not valid JSON: {config}" if isinstance(config, ValueError) else "no run"
            raise RunFolderError(
                f"{config_file} is damaged ({why}), but the folder holds a run (checkpoints, "
                "metrics): its config cannot be read. Nothing was changed; restore "
                "config.json from a copy, or start a new run with another --out."
            )
        return RunFolder(path, "foreign")
    if config.get("format") != FORMAT:
        return RunFolder(path, "legacy", config)
    manifest, warning = read_manifest(path)
    if manifest and manifest.get("config_sha256") not in (None, sha256(config_file)):
        raise RunFolderError(
            f"{config_file} is damaged: its SHA-256 differs from the one committed with the "
            "run, so it no longer says how the run was trained. Nothing was changed; restore "
            "it from a copy, or start a new run with another --out."
        )
    state = "finished" if manifest and manifest.get("complete") else "run"
    return RunFolder(path, state, config, manifest, warning)


def check_new(folder: RunFolder) -> None:
    """A new run may go into an absent or empty folder only."""
    if folder.state in ("absent", "empty"):
        return
    where = folder.path
    if folder.state == "foreign":
        raise RunFolderError(
            f"{where} is not empty and holds no run; nothing in it is touched. Give --out a "
            "new or empty folder."
        )
    if folder.state == "sweep":
        raise RunFolderError(
            f"{where} already holds a sweep; nothing is overwritten. Continue it with "
            f"python -m experiments.run --resume --out {where}, or give --out a new folder."
        )
    what = {
        "run": f"an unfinished run of {folder.config['name']} (epoch {folder.epoch} committed)",
        "finished": f"a finished run of {folder.config['name']}",
        "legacy": f"a run of {folder.config['name']} from {_version(folder)}",
    }[folder.state]
    hint = " Pass --resume to continue it, or" if folder.state == "run" else ""
    raise RunFolderError(
        f"{where} already holds {what}; nothing is overwritten.{hint} Give --out a new folder."
    )


def _newer(folder: RunFolder) -> bool:
    """Whether the folder's format is newer than the one this version writes."""
    written = folder.config.get("format") if folder.config else None
    return isinstance(written, int) and written > FORMAT


def _version(folder: RunFolder) -> str:
    """Which bntt-jax wrote a folder of another format, as a message says it."""
    if _newer(folder):
        return (
            f"a newer bntt-jax (results-folder format {folder.config['format']}; this one "
            f"reads format {FORMAT})"
        )
    return "an earlier version"


def check_resumable(folder: RunFolder, name: str | None) -> None:
    """``--resume`` needs an unfinished run of this version (and of ``name``, if given)."""
    where = folder.path
    if folder.state == "absent":
        raise RunFolderError(f"{where} does not exist: there is no run to resume.")
    if folder.state == "sweep":
        raise RunFolderError(
            f"{where} holds a sweep, not one run: resume it with python -m experiments.run "
            f"--resume --out {where}"
        )
    if folder.state in ("empty", "foreign"):
        raise RunFolderError(
            f"{where} holds no run (no bntt-jax config.json): nothing to resume. To start a "
            "run there, leave out --resume (a new run needs a new or empty folder)."
        )
    if folder.state == "legacy" and _newer(folder):
        raise RunFolderError(
            f"{where} was written by {_version(folder)} and cannot be resumed by this one. "
            "Update bntt-jax (git pull, then pip install -e .) and resume it."
        )
    if folder.state == "legacy":
        raise RunFolderError(
            f"{where} was written by an earlier bntt-jax without crash-safe checkpoints and "
            "cannot be resumed. Start a new run with another --out."
        )
    saved = folder.config["name"]
    if name is not None and name != saved:
        raise RunFolderError(
            f"{where} holds a run of {saved}, not {name}. Resume it with "
            f"`python -m experiments.run --resume --out {where}` (the name may be left out), "
            "or start a new run of the other experiment in another folder."
        )
    if folder.state == "finished":
        raise RunFolderError(
            f"{where} holds a finished run of {saved} ({folder.epoch} epochs); a finished run "
            "is never modified. To train longer or differently, start a new run with another "
            f"--out. Its analyses (if they were interrupted): python -m experiments.analyze "
            f"{where}"
        )


# ------------------------------------------------------------------------- resume
def check_resume_changes(saved: Any, requested: Any, path: Path, name: str) -> None:
    """Refuse a resume whose config differs from the run's own (``saved``) in a key that
    changes what the run computes; only :data:`experiments.core.config.RESUME_SAFE_KEYS` may."""
    old_keys, new_keys = saved.flat(), requested.flat()
    for key in [*old_keys, *(k for k in new_keys if k not in old_keys)]:
        old, new = old_keys.get(key), new_keys.get(key)
        if old == new or key in RESUME_SAFE_KEYS:
            continue
        raise RunFolderError(
            f"--set {key}={show(new)} would change the run in {path}, which has "
            f"{key}={show(old)}; a resumed run keeps its own config.json (only "
            f"{', '.join(RESUME_SAFE_KEYS)} may change). To train with {key}="
            f"{show(new)}, start a new run: {new_run_command(name, requested)}"
        )


def new_run_command(name: str, config: Any) -> str:
    """The command that starts a new run of ``config`` (a run's, with a change): the entry
    ``name`` and a ``--set`` for every key in which ``config`` differs from the entry's own,
    so that nothing of the run (its dataset, its network) is dropped."""
    try:
        base = registry.get(name).config.flat()
    except KeyError:  # an entry of another version: every key
        base = {}
    missing = object()
    sets = [
        f"--set {shlex.quote(f'{k}={show(v)}')}"
        for k, v in config.flat().items()
        if base.get(k, missing) != v
    ]
    return " ".join(["python -m experiments.run", name, *sets, "--out NEW_FOLDER"])


def check_same_data(folder: RunFolder, fingerprint: str, data_dir: str) -> None:
    """A resumed run must see the data it started with (compared by fingerprint)."""
    saved = (folder.config or {}).get("data", {}).get("fingerprint")
    if saved and saved != fingerprint:
        raise RunFolderError(
            f"the data in {data_dir} differ from the data the run in {folder.path} started "
            f"with (fingerprint {fingerprint}, the run's {saved}); resuming would mix two "
            "datasets. Point --set data_dir at the original data."
        )


class ResolvedRun(NamedTuple):
    """The run a command will train in a folder, after every check of the folder."""

    name: str
    config: Any  # ExperimentConfig
    paper: dict[str, Any]
    folder: RunFolder


def resolve_run(
    name: str | None,
    config: Any,
    out: Path,
    resume: bool,
    *,
    paper: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    primary: bool = True,
) -> ResolvedRun:
    """The name, config and paper values a run in ``out`` will use, after every check of the
    folder (nothing is written). A new run needs an absent or empty folder. On resume they are
    the run's own, from its ``config.json``, with ``changes`` (flat keys) applied or replaced
    by ``config``; a key that differs from the run's own but is not in
    :data:`~experiments.core.config.RESUME_SAFE_KEYS` is refused. ``primary=False`` (a
    process other than 0, whose folder process 0 may already be writing) checks nothing and
    only reads a resumed run's config."""
    folder = inspect(out) if primary or resume else RunFolder(Path(out), "absent")
    if not resume:
        if primary:
            check_new(folder)
        if name is None or config is None:
            raise ValueError("a new run needs an experiment name and a config.")
        return ResolvedRun(name, config, paper or {}, folder)
    if primary:
        check_resumable(folder, name)
    saved_record = folder.config or read_json(Path(out) / CONFIG)
    saved = ExperimentConfig.from_dict(saved_record["experiment"])
    requested = config if config is not None else saved.replace(**(changes or {}))
    if primary:
        check_resume_changes(saved, requested, out, saved_record["name"])
    return ResolvedRun(saved_record["name"], requested, saved_record.get("paper", {}), folder)
