"""The experiment suite: one registered entry per table and figure of the papers.

``python -m experiments.run --list`` shows what is registered; ``python -m experiments.run NAME``
runs one. Layout: ``core/`` (the run loop and its ledger, configs, data readers, registry,
sweeps, the batched test-set loop), one folder per method (``bntt/``, ``ttfs/``, ``ann/``:
its keys, entries, implementation and report), ``analyses/`` (one module per analysis of a
finished run), and the commands ``run``, ``analyze``, ``redraw`` and ``import_torch``.

Importing this package registers every method and entry; it does not import JAX. From Python:
``experiments.run_experiment(name, config, out_dir)`` trains a run and
``experiments.load_checkpoint(folder)`` reads a results folder's network (both load JAX).
"""

from bntt_jax import _lazy

# Each method's entries register its keys and experiments, in any order (an entry built on
# another method's, or a sweep member, names it and is resolved when first used).
from experiments.ann import entries as _ann_entries  # noqa: F401
from experiments.bntt import entries as _bntt_entries  # noqa: F401
from experiments.core.config import ExperimentConfig  # noqa: F401  (re-exported)
from experiments.core.registry import Experiment, get, names, register  # noqa: F401
from experiments.ttfs import entries as _ttfs_entries  # noqa: F401

_API = {
    "run_experiment": "experiments.core.runner",
    "load_checkpoint": "experiments.core.checkpoints",
}
__all__ = ["Experiment", "ExperimentConfig", "get", "names", "register", *_API]
__getattr__, __dir__ = _lazy.install(__name__, _API)
