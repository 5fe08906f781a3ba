"""Orbax checkpoints of a run, verified against the SHA-256 hashes committed with them.

A checkpoint is the training state after an epoch: ``{"step", "params", "batch_stats",
"opt_state"}`` as host arrays, written by orbax (which writes into a temporary folder and
renames it when complete) to ``checkpoints/last/<E>`` or ``checkpoints/best/<E>``. How they
are committed, and which one may be loaded, is :mod:`experiments.core.record`;
:func:`load_checkpoint` reads the network of any results folder, verified against the hashes
committed with it.

Only the calling process writes or reads: under ``jax.distributed`` process 0 saves (the state
is replicated, so it holds all of it) and every process restores for itself from the shared
results folder.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from bntt_jax import train as tr
from experiments.core import record
from experiments.core.files import check_space, hash_tree, read_json
from experiments.core.methods import method_spec


def _checkpointer() -> ocp.Checkpointer:
    """A synchronous orbax checkpointer for this process alone (no cross-process barriers)."""
    me = jax.process_index()
    options = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    handler = ocp.PyTreeCheckpointHandler(multiprocessing_options=options)
    return ocp.Checkpointer(handler, multiprocessing_options=options)


def state_tree(state: tr.TrainState) -> dict[str, Any]:
    """The arrays of a training state, copied to the host."""
    return jax.device_get(
        {
            "step": state.step,
            "params": state.net.params,
            "batch_stats": state.net.batch_stats,
            "opt_state": state.opt_state,
        }
    )


def save(run: Path, key: str, state: tr.TrainState) -> dict[str, str]:
    """Write ``state`` to ``run/checkpoints/<key>`` and return the SHA-256 of its files.

    A folder already there is an uncommitted leftover of a killed run (a committed one is
    never written again) and is replaced.
    """
    target = (Path(run) / "checkpoints" / key).absolute()
    if target.exists():
        shutil.rmtree(target)
    tree = state_tree(state)
    # the arrays and the checkpoint's own files (~40 kB), checked before the writer starts:
    # a full disk inside it fails in its threads with a page of tracebacks
    need = sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(tree)) + (1 << 20)
    check_space(target.parent, need, f"the checkpoint {key!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    _checkpointer().save(target, args=ocp.args.PyTreeSave(tree))
    return hash_tree(target)


def _restore(directory: Path, target: dict[str, Any], partial: bool) -> dict[str, Any]:
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    try:
        return _checkpointer().restore(
            directory.absolute(),
            args=ocp.args.PyTreeRestore(
                item=target, restore_args=restore_args, partial_restore=partial
            ),
        )
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise record.CheckpointDamagedError(
            f"{directory} does not hold this run's network ({first}); was config.json edited?"
        ) from None


def restore_state(directory: Path, template: tr.TrainState) -> tr.TrainState:
    """The training state in ``directory``, shaped like ``template`` (host arrays)."""
    restored = _restore(directory, state_tree(template), partial=False)
    return template.replace(
        step=restored["step"],
        net=template.net.replace(params=restored["params"], batch_stats=restored["batch_stats"]),
        opt_state=restored["opt_state"],
    )


def _network_template(run: Path) -> Any:
    """A network of the run's architecture (its method's ``init``), to restore into."""
    config = read_json(run / record.CONFIG)
    spec = method_spec(config.get("experiment", {}).get("method", "bntt"))
    network = spec.network.built.from_dict(config["network"])
    return spec.load().init(jax.random.key(0), network)


def load_checkpoint(path: str | Path) -> Any:
    """The network of a results folder, verified against its committed hashes: a
    :class:`bntt_jax.NetworkParams`, :class:`bntt_jax.ttfs.TTFSParams` for a TTFS run, or
    :class:`bntt_jax.baselines.ann.ANNParams` for an ANN.

    ``path`` is a results folder (its best checkpoint), ``.../checkpoints/best`` or
    ``.../checkpoints/last`` (the committed one), or one checkpoint ``.../checkpoints/last/<E>``.
    If the best (or last) checkpoint was set aside or is damaged, the newest intact ``last``
    one loads instead, with a warning naming the damage and how to restore it; one checkpoint
    asked for by name is never replaced, and a damaged file raises
    :class:`experiments.core.run_folder.CheckpointDamagedError` naming it. A damaged manifest falls
    back to the previous commit, with a warning. Folders of earlier versions (no hashes) load
    unverified, with a warning.
    """
    path = Path(path)
    if path.parent.name == "checkpoints":
        run, kind, epoch = path.parents[1], path.name, None
    elif path.parent.parent.name == "checkpoints":
        run, kind, epoch = path.parents[2], path.parent.name, path.name
    else:
        run, kind, epoch = path, "best", None
    if not (run / record.CONFIG).is_file():
        raise FileNotFoundError(f"no config.json in {run}: not a results folder.")
    if kind not in record.KINDS:
        raise ValueError(f"{path}: expected checkpoints/best or checkpoints/last.")
    manifest, warning = record.read_manifest(run)
    if warning:
        warnings.warn(warning, UserWarning, stacklevel=2)
    if manifest is None:
        directory = _legacy_checkpoint(run / "checkpoints" / kind, epoch)
    else:
        directory, instead = record.checkpoint_to_load(run, manifest, kind, epoch)
        if instead:
            warnings.warn(instead, UserWarning, stacklevel=2)
    template = _network_template(run)
    target = {"params": template.params, "batch_stats": template.batch_stats}
    restored = _restore(directory, jax.device_get(target), partial=True)
    return template.replace(
        params=jax.tree.map(jax.numpy.asarray, restored["params"]),
        batch_stats=jax.tree.map(jax.numpy.asarray, restored["batch_stats"]),
    )


def _legacy_checkpoint(root: Path, epoch: str | None) -> Path:
    """A checkpoint of a folder without a manifest (orbax ``CheckpointManager`` layout)."""
    steps = sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {root}.")
    warnings.warn(
        f"{root.parent.parent} predates checkpoint hashes: loading it unverified.",
        UserWarning,
        stacklevel=3,
    )
    return root / (epoch if epoch is not None else str(steps[-1]))
