"""The commit record of a run (``checkpoints/manifest.json``): how it is built epoch by
epoch, written (with its checksum, the previous commit kept beside it), truncated for a
fall-back, and verified before a resume (:func:`recover`). The protocol that uses it is
:class:`experiments.core.ledger.Ledger`. No JAX.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from experiments.core.faults import fault_point
from experiments.core.folder import (
    FORMAT,
    KINDS,
    MANIFEST,
    METRICS,
    PREVIOUS,
    CheckpointDamagedError,
    manifest_text,
    verify,
    write_json,
)


def new_manifest() -> dict[str, Any]:
    """The commit record before epoch 1."""
    return {
        "format": FORMAT,
        "epoch": 0,
        "complete": False,
        "history": [],
        "best": None,  # {"epoch", "accuracy", "checkpoint": "best/<E>" or None}
        "checkpoints": {},  # "last/<E>" / "best/<E>" -> {file: sha256}
        "elapsed_s": 0.0,
        "legs": [],
    }


def commit(
    path: Path, manifest: dict[str, Any], epoch: int, previous: dict[str, Any] | None = None
) -> None:
    """Write the manifest (with its checksum): staged to a temporary file, then renamed into
    place (the commit). ``previous``, the commit it supersedes, is first written to
    ``manifest.previous.json``, the fall-back for a manifest found damaged later."""
    if previous is not None:
        _write_synced(path / PREVIOUS, manifest_text(previous))
    file = path / MANIFEST
    tmp = _write_synced(file.with_name(file.name + ".tmp"), manifest_text(manifest), rename=False)
    fault_point("manifest_staged", epoch)
    os.replace(tmp, file)
    _fsync_dir(file.parent)


def _write_synced(file: Path, text: str, *, rename: bool = True) -> Path:
    tmp = file.with_name(file.name + ".tmp") if rename else file
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if rename:
        os.replace(tmp, file)
    return file


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def best_as_of(manifest: dict[str, Any], epoch: int) -> dict[str, Any] | None:
    """The best record after ``epoch``: the first epoch with the highest test accuracy."""
    best = None
    for record in manifest["history"]:
        if record["epoch"] > epoch or "test_accuracy" not in record:
            continue
        if best is None or record["test_accuracy"] > best["accuracy"]:
            best = {"epoch": record["epoch"], "accuracy": record["test_accuracy"]}
    if best is not None:
        key = f"best/{best['epoch']}"
        best["checkpoint"] = key if key in manifest["checkpoints"] else None
    return best


def truncate(manifest: dict[str, Any], epoch: int) -> dict[str, Any]:
    """The manifest as it was committed after ``epoch`` (for a fall-back)."""
    out = dict(manifest)
    out["epoch"] = epoch
    out["complete"] = False
    out["history"] = [h for h in manifest["history"] if h["epoch"] <= epoch]
    out["best"] = best_as_of(manifest, epoch)
    keep = {f"last/{epoch}"} | ({out["best"]["checkpoint"]} if out["best"] else set())
    out["checkpoints"] = {k: v for k, v in manifest["checkpoints"].items() if k in keep}
    return out


def kept(manifest: dict[str, Any]) -> set[str]:
    """The checkpoints a committed manifest keeps on disk."""
    return set(manifest["checkpoints"])


def collect(path: Path, keep: set[str]) -> None:
    """Delete every checkpoint folder that ``keep`` does not name: superseded ones, and
    partial or uncommitted writes of a killed run. Folders set aside as damaged stay."""
    for kind in KINDS:
        root = path / "checkpoints" / kind
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if f"{kind}/{entry.name}" in keep or ".damaged" in entry.name:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def set_aside(path: Path, key: str) -> Path:
    """Rename a damaged checkpoint ``kind/<E>`` to ``kind/<E>.damaged-<n>`` (never deleted)."""
    source = path / "checkpoints" / key
    n = 1
    while (target := source.with_name(f"{source.name}.damaged-{n}")).exists():
        n += 1
    os.replace(source, target)
    return target


# --------------------------------------------------------------------------- resume
def recover(path: Path, manifest: dict[str, Any], warn: Any) -> dict[str, Any]:
    """Verify the committed checkpoints of ``manifest`` before a resume.

    A damaged or missing ``last`` checkpoint is set aside and the run falls back one epoch
    (to the previous ``last``, kept for this; from epoch 1 back to the start). A damaged
    best checkpoint is set aside and the run continues; it saves a best checkpoint again at
    the next improvement. Every such step is committed and reported through ``warn``.
    Raises :class:`CheckpointDamagedError` when no usable checkpoint is left.
    """
    epoch = int(manifest["epoch"])
    if epoch:
        key = f"last/{epoch}"
        problem = verify(path / "checkpoints" / key, manifest["checkpoints"].get(key, {}))
        if problem:
            previous = f"last/{epoch - 1}"
            fallback = None
            if epoch == 1:
                fallback = truncate(manifest, 0)
            elif previous in manifest["checkpoints"]:
                second = verify(path / "checkpoints" / previous, manifest["checkpoints"][previous])
                if second is None:
                    fallback = truncate(manifest, epoch - 1)
                else:
                    problem = f"{problem}; and {second}"
            if fallback is None:
                raise CheckpointDamagedError(
                    f"cannot resume {path}: {problem}. No intact checkpoint is left to "
                    "continue from; start a new run."
                )
            if (path / "checkpoints" / key).exists():
                set_aside(path, key)
            warn(
                f"WARNING: {problem}. It is set aside as {key}.damaged-*, and the run falls "
                f"back to epoch {epoch - 1} and trains epoch {epoch} again."
            )
            manifest = fallback
            commit(path, manifest, fallback["epoch"])
    best = manifest["best"]
    if best and best["checkpoint"]:
        key = best["checkpoint"]
        problem = verify(path / "checkpoints" / key, manifest["checkpoints"].get(key, {}))
        if problem:
            if (path / "checkpoints" / key).exists():
                set_aside(path, key)
            warn(
                f"WARNING: the best checkpoint (epoch {best['epoch']}, test accuracy "
                f"{best['accuracy']:.4f}) cannot be used: {problem}. It is set aside as "
                f"{key}.damaged-*; the run continues and saves a best checkpoint again when "
                f"test accuracy next improves. {restore_hint(best['epoch'])}"
            )
            manifest = {
                **manifest,
                "best": {**best, "checkpoint": None},
                "checkpoints": {k: v for k, v in manifest["checkpoints"].items() if k != key},
            }
            commit(path, manifest, manifest["epoch"])
    return manifest


def restore_hint(epoch: int) -> str:
    """How to get a best checkpoint back that was set aside as damaged."""
    return (
        f"Until then load_checkpoint and analyze use the last intact checkpoint instead. To "
        f"get best/{epoch} back, put an intact copy at checkpoints/best/{epoch} (the manifest "
        f"keeps its hashes), or re-derive it: a new run with the same config trains the same "
        f"weights and saves them at epoch {epoch}."
    )


def next_manifest(
    manifest: dict[str, Any],
    record: dict[str, Any],
    best: dict[str, Any] | None,
    new_checkpoints: dict[str, dict[str, str]],
    elapsed: float,
) -> dict[str, Any]:
    """The commit record after ``record``'s epoch. It keeps the checkpoints a fall-back of one
    epoch needs: the last two epochs, and the best checkpoint of each."""
    epoch = record["epoch"]
    previous_best = manifest["best"]["checkpoint"] if manifest["best"] else None
    keep = {f"last/{epoch}", f"last/{epoch - 1}", best and best["checkpoint"], previous_best}
    merged = {**manifest["checkpoints"], **new_checkpoints}
    return {
        **manifest,
        "epoch": epoch,
        "history": [*manifest["history"], record],
        "best": best,
        "checkpoints": {k: v for k, v in merged.items() if k in keep},
        "elapsed_s": elapsed,
    }


def write_progress(out: Path, manifest: dict[str, Any]) -> None:
    """``metrics.json`` of an unfinished run: the committed history."""
    write_json(out / METRICS, {"history": manifest["history"], "complete": False})
