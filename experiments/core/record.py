"""The commit record of a results folder (``checkpoints/manifest.json``, the truth about what
is done; layout in :mod:`experiments.core.run_folder`), and every write that goes through it.

**Commit order.** Each epoch ends by (1) saving a new ``best`` checkpoint if the test accuracy
improved, (2) saving ``last/<E>``, (3) hashing every file of the new checkpoints, (4) writing
``manifest.json`` (the history, the best record, the SHA-256 of every file of every kept
checkpoint and of ``config.json``, in an envelope with the SHA-256 of the record itself) to a
temporary file and renaming it into place: that rename is the commit. The commit it supersedes
is written first to ``manifest.previous.json``, so that a manifest found damaged falls back one
commit. Only then is ``metrics.json`` rewritten from the manifest and are superseded
checkpoints deleted. A kill at any instant leaves either the old or the new manifest, each
describing checkpoints complete on disk; a resume (:func:`begin`) deletes what no manifest
refers to and falls back one epoch past a checkpoint whose hashes do not match.

This module is that protocol, for every writer (a run, an imported network's folder): the
format (:func:`read_manifest`), the commits (:func:`write_config`, :func:`begin`,
:func:`commit_epoch`, :func:`commit_finished`) and the choice of an intact checkpoint to load
(:func:`checkpoint_to_load`). The caller's ``save`` writes the checkpoints (orbax,
:mod:`experiments.core.checkpoints`); no JAX here."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.core import tensorboard
from experiments.core.faults import fault_point
from experiments.core.files import (
    RunFolderError,
    fsync_dir,
    sha256,
    verify,
    write_json,
    write_synced,
)

#: Version of the results-folder layout. Folders without it predate crash-safe checkpoints.
FORMAT = 2
CONFIG = "config.json"
METRICS = "metrics.json"
MANIFEST = Path("checkpoints") / "manifest.json"
#: The commit before the last one, kept so that a damaged manifest falls back one commit.
PREVIOUS = Path("checkpoints") / "manifest.previous.json"
KINDS = ("last", "best")


class CheckpointDamagedError(RuntimeError):
    """A checkpoint's files do not match the hashes committed with it."""


# ------------------------------------------------------------------- the manifest's format
def _digest(manifest: dict[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest file: the record in an envelope with the SHA-256 of its canonical JSON,
    so that any change to it (a flipped bit, a truncation) is found on reading."""
    body = json.loads(json.dumps(manifest, default=float))  # exactly what is read back
    return json.dumps({"sha256": _digest(body), "manifest": body}, indent=2)


def _parse_manifest(file: Path) -> tuple[dict[str, Any] | None, str]:
    """The record in a manifest file, or ``None`` and what is wrong with it."""
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        return None, f"{file} is missing"
    except (OSError, ValueError) as err:
        return None, f"{file} is damaged (not valid JSON: {err})"
    if isinstance(data, dict) and set(data) == {"sha256", "manifest"}:
        body = data["manifest"]
        if isinstance(body, dict) and data["sha256"] == _digest(body):
            return body, ""
        return None, f"{file} is damaged (its checksum does not match its content)"
    if isinstance(data, dict) and {"epoch", "history", "checkpoints"} <= set(data):
        return data, ""  # written by a version without checksums
    return None, f"{file} is damaged (it holds no commit record)"


def read_manifest(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The commit record of the run in ``path`` (``None`` before its first commit) and, if
    ``manifest.json`` is damaged or missing and the previous commit was used instead, a
    warning that says so. Raises :class:`RunFolderError` when neither can be read."""
    path = Path(path)
    if not (path / MANIFEST).exists() and not (path / PREVIOUS).exists():
        return None, None
    manifest, problem = _parse_manifest(path / MANIFEST)
    if manifest is not None:
        return manifest, None
    previous, second = _parse_manifest(path / PREVIOUS)
    if previous is None:
        raise RunFolderError(
            f"the commit record of {path} cannot be read: {problem}; and {second}. Without "
            "it no checkpoint can be verified. Nothing was changed (the checkpoints are left "
            "as they are); start a new run with another --out."
        )
    return previous, (
        f"WARNING: {problem}. The run falls back one commit, to the previous one (epoch "
        f"{previous['epoch']}, {PREVIOUS.as_posix()}), and any later epoch is trained again."
    )


# ------------------------------------------------------------------ the record's contents
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


def truncate(manifest: dict[str, Any], epoch: int) -> dict[str, Any]:
    """The manifest as it was committed after ``epoch`` (for a fall-back)."""
    best = None  # the first epoch with the highest test accuracy
    for h in manifest["history"]:
        if h["epoch"] <= epoch and "test_accuracy" in h:
            if best is None or h["test_accuracy"] > best["accuracy"]:
                best = {"epoch": h["epoch"], "accuracy": h["test_accuracy"]}
    if best is not None:
        key = f"best/{best['epoch']}"
        best["checkpoint"] = key if key in manifest["checkpoints"] else None
    keep = {f"last/{epoch}"} | ({best["checkpoint"]} if best else set())
    return {
        **manifest,
        "epoch": epoch,
        "complete": False,
        "history": [h for h in manifest["history"] if h["epoch"] <= epoch],
        "best": best,
        "checkpoints": {k: v for k, v in manifest["checkpoints"].items() if k in keep},
    }


# ------------------------------------------------------------------------------ the commits
def commit(
    path: Path, manifest: dict[str, Any], epoch: int, previous: dict[str, Any] | None = None
) -> None:
    """Write the manifest (with its checksum): staged to a temporary file, then renamed into
    place (the commit). ``previous``, the commit it supersedes, is first written to
    ``manifest.previous.json``, the fall-back for a manifest found damaged later."""
    if previous is not None:
        write_synced(path / PREVIOUS, manifest_text(previous))
    file = path / MANIFEST
    tmp = write_synced(file.with_name(file.name + ".tmp"), manifest_text(manifest), rename=False)
    fault_point("manifest_staged", epoch)
    os.replace(tmp, file)
    fsync_dir(file.parent)


def collect(path: Path, manifest: dict[str, Any]) -> None:
    """Delete every checkpoint folder the committed ``manifest`` does not keep: superseded
    ones, and partial or uncommitted writes of a killed run. Folders set aside as damaged
    stay."""
    for kind in KINDS:
        root = path / "checkpoints" / kind
        for entry in root.iterdir() if root.is_dir() else ():
            if f"{kind}/{entry.name}" in manifest["checkpoints"] or ".damaged" in entry.name:
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def write_progress(out: Path, manifest: dict[str, Any]) -> None:
    """``metrics.json`` of an unfinished run, the committed history; and its TensorBoard view
    (:mod:`experiments.core.tensorboard`, epochs timed from ``config.json``'s writing)."""
    write_json(out / METRICS, {"history": manifest["history"], "complete": False})
    tensorboard.write_history(out, manifest["history"], (out / CONFIG).stat().st_mtime)


def write_config(out: Path, config: dict[str, Any]) -> None:
    """A new run's first write, ``config.json``: from then on the folder holds a run."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG, config)
    fault_point("config_written", 0)


def begin(out: Path, resumed: bool, warn: Callable[[str], None]) -> dict[str, Any]:
    """The committed record of the run in ``out`` for a new leg. A resumed run's manifest is
    read again (it is the truth under the folder's lock; the previous commit if it is damaged,
    committed again, with a warning), verified, and falls back past damaged checkpoints
    (:func:`recover`); then partial or uncommitted writes of a killed leg are deleted."""
    manifest = new_manifest()
    if resumed:
        committed, warning = read_manifest(out)
        manifest = committed or manifest
        if warning:
            warn(warning)
            commit(out, manifest, manifest["epoch"])
        manifest = recover(out, manifest, warn)
    if "config_sha256" not in manifest and (out / CONFIG).is_file():
        manifest["config_sha256"] = sha256(out / CONFIG)  # config.json is checked on resume
    collect(out, manifest)
    if resumed:
        write_progress(out, manifest)
    return manifest


def commit_epoch(
    out: Path,
    manifest: dict[str, Any],
    record: dict[str, Any],
    save: Callable[[str], dict[str, str]],
    elapsed: Callable[[], float],
    primary: bool = True,
) -> dict[str, Any]:
    """Commit the epoch of ``record`` (its history record; ``test_accuracy`` if it was tested)
    in the commit order (module docstring) and return the new record. ``save(key)`` writes the
    training state to ``checkpoints/<key>`` and returns its files' hashes; a process other than
    the ``primary`` one keeps the same record in memory and writes nothing."""
    epoch, best = record["epoch"], manifest["best"]
    new: dict[str, dict[str, str]] = {}
    accuracy = record.get("test_accuracy")
    if accuracy is not None and (best is None or accuracy > best["accuracy"]):
        best = {"epoch": epoch, "accuracy": accuracy, "checkpoint": f"best/{epoch}"}
        if primary:
            new[f"best/{epoch}"] = save(f"best/{epoch}")
            fault_point("best_saved", epoch)
    if primary:
        new[f"last/{epoch}"] = save(f"last/{epoch}")
        fault_point("last_saved", epoch)
    # keep what a fall-back of one epoch needs: the last two epochs and the best of each
    previous_best = manifest["best"]["checkpoint"] if manifest["best"] else None
    keep = {f"last/{epoch}", f"last/{epoch - 1}", best and best["checkpoint"], previous_best}
    merged = {**manifest["checkpoints"], **new}
    committed = {
        **manifest,
        "epoch": epoch,
        "history": [*manifest["history"], record],
        "best": best,
        "checkpoints": {k: v for k, v in merged.items() if k in keep},
        "elapsed_s": elapsed(),
    }
    if primary:
        commit(out, committed, epoch, manifest)
        fault_point("committed", epoch)
        write_progress(out, committed)
        fault_point("metrics_written", epoch)
        collect(out, committed)
        fault_point("collected", epoch)
    return committed


def commit_finished(
    out: Path,
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    writes: list[Callable[[], Any]],
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """Finish a run (or a network imported from elsewhere, ``manifest`` holding its epoch-0
    checkpoints): its plots and report (``writes``, each followed by its fault point), the
    final ``metrics.json``, then the record committed as complete: a finished run is never
    modified again."""
    epoch = manifest["epoch"]
    for write, point in zip(writes, ("plots_written", "report_written"), strict=True):
        write()
        fault_point(point, epoch)
    write_json(out / METRICS, metrics)
    fault_point("final_metrics_written", epoch)
    finished = {**manifest, "complete": True, "elapsed_s": metrics["wall_time_s"]}
    commit(out, finished, epoch, manifest)
    best = finished["best"]
    if best and best["checkpoint"] is None:
        warn(
            f"WARNING: the best epoch's checkpoint (epoch {best['epoch']}) was set aside as "
            f"damaged and no later epoch improved on it. {restore_hint(best['epoch'])}"
        )
    fault_point("completed", epoch)
    return finished


# ----------------------------------------------------------------- damaged checkpoints
def set_aside(path: Path, key: str) -> Path:
    """Rename a damaged checkpoint ``kind/<E>`` to ``kind/<E>.damaged-<n>`` (never deleted)."""
    source = path / "checkpoints" / key
    n = 1
    while (target := source.with_name(f"{source.name}.damaged-{n}")).exists():
        n += 1
    os.replace(source, target)
    return target


def restore_hint(epoch: int) -> str:
    """How to get a best checkpoint back that was set aside as damaged."""
    return (
        f"Until then load_checkpoint and analyze use the last intact checkpoint instead. To "
        f"get best/{epoch} back, put an intact copy at checkpoints/best/{epoch} (the manifest "
        f"keeps its hashes), or re-derive it: a new run with the same config trains the same "
        f"weights and saves them at epoch {epoch}."
    )


def _problem(path: Path, manifest: dict[str, Any], key: str) -> str | None:
    return verify(path / "checkpoints" / key, manifest["checkpoints"].get(key, {}))


def recover(path: Path, manifest: dict[str, Any], warn: Callable[[str], None]) -> dict:
    """Verify the committed checkpoints of ``manifest`` before a resume.

    A damaged or missing ``last`` checkpoint is set aside and the run falls back one epoch
    (to the previous ``last``, kept for this; from epoch 1 back to the start). A damaged
    best checkpoint is set aside and the run continues; it saves a best checkpoint again at
    the next improvement. Every such step is committed and reported through ``warn``.
    Raises :class:`CheckpointDamagedError` when no usable checkpoint is left.
    """
    epoch = int(manifest["epoch"])
    key = f"last/{epoch}"
    if epoch and (problem := _problem(path, manifest, key)):
        previous, fallback = f"last/{epoch - 1}", None
        if epoch == 1:
            fallback = truncate(manifest, 0)
        elif previous in manifest["checkpoints"]:
            if (second := _problem(path, manifest, previous)) is None:
                fallback = truncate(manifest, epoch - 1)
            else:
                problem = f"{problem}; and {second}"
        if fallback is None:
            raise CheckpointDamagedError(
                f"cannot resume {path}: {problem}. No intact checkpoint is left to continue "
                "from; start a new run."
            )
        if (path / "checkpoints" / key).exists():
            set_aside(path, key)
        warn(
            f"WARNING: {problem}. It is set aside as {key}.damaged-*, and the run falls back "
            f"to epoch {epoch - 1} and trains epoch {epoch} again."
        )
        manifest = fallback
        commit(path, manifest, fallback["epoch"])
    best = manifest["best"]
    if best and best["checkpoint"] and (problem := _problem(path, manifest, best["checkpoint"])):
        key = best["checkpoint"]
        if (path / "checkpoints" / key).exists():
            set_aside(path, key)
        warn(
            f"WARNING: the best checkpoint (epoch {best['epoch']}, test accuracy "
            f"{best['accuracy']:.4f}) cannot be used: {problem}. It is set aside as "
            f"{key}.damaged-*; the run continues and saves a best checkpoint again when test "
            f"accuracy next improves. {restore_hint(best['epoch'])}"
        )
        kept = {k: v for k, v in manifest["checkpoints"].items() if k != key}
        manifest = {**manifest, "best": {**best, "checkpoint": None}, "checkpoints": kept}
        commit(path, manifest, manifest["epoch"])
    return manifest


# ------------------------------------------------------------------ the checkpoint to load
def checkpoint_to_load(
    run: Path, manifest: dict[str, Any], kind: str, epoch: str | None = None
) -> tuple[Path, str | None]:
    """The committed checkpoint to load from ``run``, verified, and a warning if it is not
    the one asked for. ``kind/epoch`` asked for by name is never replaced (a damaged one
    raises :class:`CheckpointDamagedError`); the ``best`` (or newest ``last``) checkpoint
    that was set aside or is damaged is replaced by the newest intact ``last`` one, with a
    warning that says what to do."""
    if epoch is not None:
        key = f"{kind}/{epoch}"
        if key not in manifest["checkpoints"]:
            committed = "committed: " + (", ".join(sorted(manifest["checkpoints"])) or "none")
            raise FileNotFoundError(f"{run} has no committed checkpoint {key}; {committed}.")
        if problem := _problem(run, manifest, key):
            raise CheckpointDamagedError(f"cannot load {key}: {problem}.")
        return run / "checkpoints" / key, None
    problems = []
    if kind == "best":
        best = manifest["best"]
        if best is None:
            raise FileNotFoundError(f"{run} has no best checkpoint yet (no test so far).")
        key = best["checkpoint"]
        problem = "it was set aside as damaged" if key is None else _problem(run, manifest, key)
        if problem is None:
            return run / "checkpoints" / key, None
        problems.append(f"the best checkpoint (epoch {best['epoch']}) cannot be used: {problem}")
    lasts = [k for k in manifest["checkpoints"] if k.startswith("last/")]
    for key in sorted(lasts, key=lambda k: -int(k.split("/")[1])):
        if (problem := _problem(run, manifest, key)) is None:
            hint = restore_hint(manifest["best"]["epoch"]) if kind == "best" else ""
            if not problems:
                return run / "checkpoints" / key, None
            why = "; ".join(problems)
            instead = f"Loading {key}, the last intact checkpoint, instead. {hint}".rstrip()
            return run / "checkpoints" / key, f"{run}: {why}. {instead}"
        problems.append(problem)
    raise CheckpointDamagedError(
        f"cannot load {run}: {'; '.join(problems) or 'no checkpoint is committed'}. No intact "
        "checkpoint is left."
    )
