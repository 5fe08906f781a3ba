"""The results folder of a run and the protocol by which a run commits its progress to it.

Layout::

    config.json                 the run's resolved config, written once before epoch 1
    log.txt                     appended by every leg of the run
    metrics.json                what the run has measured so far (history; final metrics)
    checkpoints/manifest.json   the commit record: the truth about what is done
    checkpoints/last/<E>/       training state after epoch E (the last two epochs are kept)
    checkpoints/best/<E>/       state at the best test accuracy (and the best before it)
    report.md, *.png            written at the end

**Commit protocol.** Each epoch ends by (1) saving a new ``best`` checkpoint if the test
accuracy improved, (2) saving ``last/<E>``, (3) hashing every file of the new checkpoints,
(4) writing ``manifest.json`` (the history, the best record, the SHA-256 of every file of every
kept checkpoint) to a temporary file and renaming it into place: that rename is the commit.
Only then are ``metrics.json`` rewritten from the manifest and superseded checkpoints deleted.
A kill at any instant therefore leaves either the old or the new manifest, each describing
checkpoints that are complete on disk; ``--resume`` continues from the manifest, deletes what
no manifest refers to (partial or uncommitted writes) and rewrites ``metrics.json``. The
previous ``last`` checkpoint is kept, so a checkpoint found damaged on resume (its hash does
not match) falls back one epoch with a warning that names the damaged file.

**Fault points.** :func:`fault_point` marks every write boundary of the protocol by name.
Setting ``BNTT_JAX_FAULT=<point>@<epoch>`` makes the process SIGKILL itself there, and
``BNTT_JAX_FAULT_TRACE=<file>`` appends each boundary reached to a file: the crash tests use
these to kill a real run at every boundary deterministically. Unset, they cost one
environment lookup per boundary.

This module does not import JAX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

#: Version of the results-folder layout. Folders without it predate crash-safe checkpoints.
FORMAT = 2
CONFIG = "config.json"
METRICS = "metrics.json"
SWEEP = "sweep.json"  # marks the folder of a sweep of runs (experiments.sweeps)
MANIFEST = Path("checkpoints") / "manifest.json"
KINDS = ("last", "best")

#: The write boundaries of a run, in the order one epoch (then the end of the run) meets them.
EPOCH_FAULT_POINTS = (
    "best_saved",  # a new best checkpoint is complete on disk, not yet committed
    "last_saved",  # the epoch's last checkpoint is complete on disk, not yet committed
    "manifest_staged",  # manifest.json.tmp written; the rename (the commit) is next
    "committed",  # the epoch is committed
    "metrics_written",  # metrics.json rewritten from the manifest
    "collected",  # superseded checkpoints deleted
)
FINAL_FAULT_POINTS = (
    "plots_written",
    "report_written",
    "final_metrics_written",  # metrics.json holds the final metrics
    "completed",  # the manifest says complete: the run is finished
)
FAULT_POINTS = ("config_written", *EPOCH_FAULT_POINTS, *FINAL_FAULT_POINTS)
#: After a finished run, once each of its analyses is written (``analysis_written@<i>``,
#: 1-based); the run itself is complete by then.
ANALYSIS_FAULT_POINTS = ("analysis_written",)


def fault_point(name: str, epoch: int) -> None:
    """A write boundary: record it (``BNTT_JAX_FAULT_TRACE``) and die here if asked to
    (``BNTT_JAX_FAULT=name@epoch``), as a ``kill -9`` would."""
    trace = os.environ.get("BNTT_JAX_FAULT_TRACE")
    if trace:
        with open(trace, "a") as f:
            f.write(f"{name}@{epoch}\n")
    if os.environ.get("BNTT_JAX_FAULT") == f"{name}@{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


class RunFolderError(ValueError):
    """The results folder cannot be used as asked; the message says why and what to do."""


class CheckpointDamagedError(RuntimeError):
    """A checkpoint's files do not match the hashes committed with it."""


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, flushed, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2, default=float))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """JSON from ``path``; a damaged file raises :class:`RunFolderError` naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path} is damaged ({err}); it is not valid JSON.") from None


# ----------------------------------------------------------------------------- the folder
@dataclasses.dataclass(frozen=True)
class RunFolder:
    """What a results folder holds: nothing, a run (unfinished or finished), or other files."""

    path: Path
    state: str  # 'absent', 'empty', 'run', 'finished', 'legacy', 'sweep', 'foreign'
    config: dict[str, Any] | None = None  # config.json of a run
    manifest: dict[str, Any] | None = None  # the commit record, once epoch 1 committed

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
    names = {p.name for p in path.iterdir()}
    if names <= {CONFIG + ".tmp", SWEEP + ".tmp"}:
        return RunFolder(path, "empty")  # nothing, or a run killed before it existed
    if SWEEP in names:
        return RunFolder(path, "sweep")  # the folder of a sweep (experiments.sweeps)
    config_file = path / CONFIG
    if not config_file.is_file():
        return RunFolder(path, "foreign")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return RunFolder(path, "foreign")
    if not isinstance(config, dict) or "experiment" not in config or "name" not in config:
        return RunFolder(path, "foreign")
    if config.get("format") != FORMAT:
        return RunFolder(path, "legacy", config)
    manifest_file = path / MANIFEST
    manifest = read_json(manifest_file) if manifest_file.is_file() else None
    state = "finished" if manifest and manifest.get("complete") else "run"
    return RunFolder(path, state, config, manifest)


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
        "legacy": f"a run of {folder.config['name']} from an earlier version",
    }[folder.state]
    hint = " Pass --resume to continue it, or" if folder.state == "run" else ""
    raise RunFolderError(
        f"{where} already holds {what}; nothing is overwritten.{hint} Give --out a new folder."
    )


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


# ------------------------------------------------------------------------ checksums
def sha256(file: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory``, by path relative to it."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            file = Path(root) / name
            out[file.relative_to(directory).as_posix()] = sha256(file)
    return dict(sorted(out.items()))


def verify(directory: Path, files: dict[str, str]) -> str | None:
    """``None`` if every file of ``files`` is in ``directory`` with its hash; otherwise the
    first problem, naming the file."""
    if not directory.is_dir():
        return f"{directory} is missing"
    for rel, expected in files.items():
        file = directory / rel
        if not file.is_file():
            return f"{file} is missing"
        if sha256(file) != expected:
            return f"{file} is damaged (its SHA-256 differs from the one committed with it)"
    return None


# ------------------------------------------------------------------------- manifest
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


def commit(path: Path, manifest: dict[str, Any], epoch: int) -> None:
    """Write the manifest: staged to a temporary file, then renamed into place (the commit)."""
    file = path / MANIFEST
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2, default=float))
        f.flush()
        os.fsync(f.fileno())
    fault_point("manifest_staged", epoch)
    os.replace(tmp, file)
    _fsync_dir(file.parent)


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
                f"{best['accuracy']:.4f}) cannot be used: {problem}. It is set aside; the run "
                "continues and saves a best checkpoint again when test accuracy next improves."
            )
            manifest = {
                **manifest,
                "best": {**best, "checkpoint": None},
                "checkpoints": {k: v for k, v in manifest["checkpoints"].items() if k != key},
            }
            commit(path, manifest, manifest["epoch"])
    return manifest


def check_resume_changes(saved: Any, requested: Any, path: Path, name: str) -> None:
    """Refuse a resume whose config differs from the run's own (``saved``) in a key that
    changes what the run computes; only :data:`experiments.config.RESUME_SAFE_KEYS` may."""
    from experiments.config import RESUME_SAFE_KEYS

    for field in dataclasses.fields(saved):
        old, new = getattr(saved, field.name), getattr(requested, field.name)
        if old == new or field.name in RESUME_SAFE_KEYS:
            continue
        raise RunFolderError(
            f"--set {field.name}={_show(new)} would change the run in {path}, which has "
            f"{field.name}={_show(old)}; a resumed run keeps its own config.json (only "
            f"{', '.join(RESUME_SAFE_KEYS)} may change). To train with {field.name}="
            f"{_show(new)}, start a new run: python -m experiments.run {name} --set "
            f"{field.name}={_show(new)} --out NEW_FOLDER"
        )


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def check_same_data(folder: RunFolder, fingerprint: str, data_dir: str) -> None:
    """A resumed run must see the data it started with (compared by fingerprint)."""
    saved = (folder.config or {}).get("data", {}).get("fingerprint")
    if saved and saved != fingerprint:
        raise RunFolderError(
            f"the data in {data_dir} differ from the data the run in {folder.path} started "
            f"with (fingerprint {fingerprint}, the run's {saved}); resuming would mix two "
            "datasets. Point --set data_dir at the original data."
        )
