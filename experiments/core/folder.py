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

How a run commits its progress to it is :mod:`experiments.core.ledger`. This module checks
what a folder holds before anything is written (:func:`inspect`, :func:`check_new`,
:func:`check_resumable`), writes files atomically and hashes them. It does not import JAX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from experiments.core.config import RESUME_SAFE_KEYS, ExperimentConfig, show

#: Version of the results-folder layout. Folders without it predate crash-safe checkpoints.
FORMAT = 2
CONFIG = "config.json"
METRICS = "metrics.json"
SWEEP = "sweep.json"  # marks the folder of a sweep of runs (experiments.core.sweeps)
MANIFEST = Path("checkpoints") / "manifest.json"
#: The commit before the last one, kept so that a damaged manifest falls back one commit.
PREVIOUS = Path("checkpoints") / "manifest.previous.json"
LOCK = ".lock"  # the folder's writer lock (experiments.core.lock); not part of the run
KINDS = ("last", "best")


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


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


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


# ------------------------------------------------------------------------ the manifest
def _canonical(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=True)


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest file: the record in an envelope with the SHA-256 of its canonical JSON,
    so that any change to it (a flipped bit, a truncation) is found on reading."""
    body = json.loads(json.dumps(manifest, default=float))  # exactly what is read back
    digest = hashlib.sha256(_canonical(body).encode()).hexdigest()
    return json.dumps({"sha256": digest, "manifest": body}, indent=2)


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
        if (
            isinstance(body, dict)
            and data["sha256"] == hashlib.sha256(_canonical(body).encode()).hexdigest()
        ):
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
            f"{show(new)}, start a new run: python -m experiments.run {name} --set "
            f"{key}={show(new)} --out NEW_FOLDER"
        )


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
