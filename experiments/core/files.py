"""Files that a kill never leaves half-written, and the checksums that find a damaged one:
atomic writes (a temporary file in the same folder, flushed, then renamed) and SHA-256 hashes.
No JAX."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def user_path(text: str) -> Path:
    """A path as a user typed it, ``~`` expanded: a quoted ``'~/x'`` reaches a command
    unexpanded, and would otherwise become a folder named ``~`` here."""
    return Path(text).expanduser()


class RunFolderError(ValueError):
    """A results folder, or a file in it, cannot be used as asked; the message says why and
    what to do."""


class NoSpaceError(RunFolderError):
    """The disk that holds a results folder is full (or would be by the next write)."""


def check_space(folder: Path, need: int, what: str) -> None:
    """Refuse, before writing, ``need`` bytes of ``what`` into ``folder`` (or the nearest
    folder above it that exists) where its disk has less free space."""
    where = Path(folder)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need:
        raise NoSpaceError(
            f"no space left on {folder}: {what} needs about {need / 1e6:.1f} MB and "
            f"{free / 1e6:.1f} MB are free there."
        )


def no_space(err: BaseException) -> bool:
    """Whether ``err`` (or an error it wraps) is a full disk: ``ENOSPC``, or a library's
    message that carries it (the checkpoint writer's)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, NoSpaceError) or getattr(seen, "errno", None) == errno.ENOSPC:
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, flushed, then renamed."""
    write_synced(Path(path), json.dumps(data, indent=2, default=float))


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


def write_synced(file: Path, text: str | bytes, *, rename: bool = True) -> Path:
    """Write ``text`` (or bytes) to ``file`` through a flushed temporary file renamed into
    place, or (``rename=False``) to ``file`` itself, flushed."""
    tmp = file.with_name(file.name + ".tmp") if rename else file
    with open(tmp, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if rename:
        os.replace(tmp, file)
    return file


def fsync_dir(directory: Path) -> None:
    """Flush a folder's entries (a rename in it), where the system allows it."""
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


# ------------------------------------------------------------------------------ checksums
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
