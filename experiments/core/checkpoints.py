"""Orbax checkpoints of a run, verified against the SHA-256 hashes committed with them.

A checkpoint is the training state after an epoch: ``{"step", "params", "batch_stats",
"opt_state"}`` as host arrays, written by orbax (which writes into a temporary folder and
renames it when complete) to ``checkpoints/last/<E>`` or ``checkpoints/best/<E>``. How the
run commits them is in :mod:`experiments.core.ledger`; :func:`load_checkpoint` reads the
network of any results folder, verified against the hashes committed with it.

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
import orbax.checkpoint as ocp

from bntt_jax import train as tr
from experiments.core import folder
from experiments.core.config import method_spec
from experiments.core.manifest import restore_hint


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
    target.parent.mkdir(parents=True, exist_ok=True)
    _checkpointer().save(target, args=ocp.args.PyTreeSave(state_tree(state)))
    return folder.hash_tree(target)


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
        raise folder.CheckpointDamagedError(
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
    config = folder.read_json(run / folder.CONFIG)
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
    :class:`experiments.core.folder.CheckpointDamagedError` naming it. A damaged manifest falls
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
    if not (run / folder.CONFIG).is_file():
        raise FileNotFoundError(f"no config.json in {run}: not a results folder.")
    if kind not in folder.KINDS:
        raise ValueError(f"{path}: expected checkpoints/best or checkpoints/last.")
    manifest, warning = folder.read_manifest(run)
    if warning:
        warnings.warn(warning, UserWarning, stacklevel=2)
    if manifest is None:
        directory = _legacy_checkpoint(run / "checkpoints" / kind, epoch)
    elif epoch is not None:
        directory = _exactly(run, manifest, f"{kind}/{epoch}")
    else:
        directory = _intact(run, manifest, kind)
    template = _network_template(run)
    target = {"params": template.params, "batch_stats": template.batch_stats}
    restored = _restore(directory, jax.device_get(target), partial=True)
    return template.replace(
        params=jax.tree.map(jax.numpy.asarray, restored["params"]),
        batch_stats=jax.tree.map(jax.numpy.asarray, restored["batch_stats"]),
    )


def _exactly(run: Path, manifest: dict[str, Any], key: str) -> Path:
    """The committed checkpoint ``key``, verified (no fall-back: it was asked for by name)."""
    if key not in manifest["checkpoints"]:
        raise FileNotFoundError(
            f"{run} has no committed checkpoint {key}; committed: "
            f"{', '.join(sorted(manifest['checkpoints'])) or 'none'}."
        )
    problem = folder.verify(run / "checkpoints" / key, manifest["checkpoints"][key])
    if problem:
        raise folder.CheckpointDamagedError(f"cannot load {key}: {problem}.")
    return run / "checkpoints" / key


def _intact(run: Path, manifest: dict[str, Any], kind: str) -> Path:
    """The committed ``best`` (or newest ``last``) checkpoint; if it was set aside or is
    damaged, the newest intact ``last`` one, with a warning that says what to do."""
    problems = []
    if kind == "best":
        best = manifest["best"]
        if best is None:
            raise FileNotFoundError(f"{run} has no best checkpoint yet (no test so far).")
        key = best["checkpoint"]
        problem = "it was set aside as damaged" if key is None else folder.verify(
            run / "checkpoints" / key, manifest["checkpoints"].get(key, {})
        )  # fmt: skip
        if problem is None:
            return run / "checkpoints" / key
        problems.append(f"the best checkpoint (epoch {best['epoch']}) cannot be used: {problem}")
    lasts = sorted((k for k in manifest["checkpoints"] if k.startswith("last/")),
                   key=lambda k: -int(k.split("/")[1]))  # fmt: skip
    for key in lasts:
        problem = folder.verify(run / "checkpoints" / key, manifest["checkpoints"][key])
        if problem is None:
            if problems:
                hint = restore_hint(manifest["best"]["epoch"]) if kind == "best" else ""
                warnings.warn(f"{run}: {'; '.join(problems)}. Loading {key}, the last intact "
                              f"checkpoint, instead. {hint}".rstrip(), UserWarning,
                              stacklevel=3)  # fmt: skip
            return run / "checkpoints" / key
        problems.append(problem)
    raise folder.CheckpointDamagedError(
        f"cannot load {run}: {'; '.join(problems) or 'no checkpoint is committed'}. No intact "
        "checkpoint is left."
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
