"""One writer per results folder: an OS file lock held for the whole command.

Every command that writes a results folder (``run``, ``--resume``, a sweep, ``analyze``,
``redraw``, ``import_torch``) holds an exclusive ``flock`` on ``<folder>/.lock`` while it
writes. The lock belongs to the open file, so the OS releases it when the process ends in any
way, ``kill -9`` included: a killed command never leaves a stale lock, and the ``.lock`` file
it leaves behind (it names the last holder) is ignored. A second writer fails at once with
:class:`FolderLockedError`, naming the holder's PID, host and command.

Locks are re-entrant within a process (a command's run holds its folder while the runner
takes it again). No JAX.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from experiments.core.run_folder import LOCK, RunFolderError

_HELD: dict[Path, int] = {}  # folder -> how many holds of this process are open on it


class FolderLockedError(RunFolderError):
    """Another process is writing the results folder; the message names it."""


def _holder(file: Path) -> str:
    """Who wrote ``file`` (the current holder while it is locked)."""
    try:
        info = json.loads(file.read_text())
        return (
            f"PID {info['pid']} on host {info['host']}, `{info['command']}`, since "
            f"{info['started']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its name"


def _locked_error(folder: Path, holder: str) -> FolderLockedError:
    return FolderLockedError(
        f"{folder} is being written by another command ({holder}). Two writers would "
        "corrupt it: wait for that command to end (or stop it; a stopped or killed command "
        "releases the folder at once), then try again."
    )


def check_free(folder: Path) -> None:
    """Raise :class:`FolderLockedError` if another process holds ``folder``'s lock; writes
    nothing (a probe before a command's checks: the loser of two commands started at once
    hears about the other writer, not about what the winner has written so far)."""
    folder = Path(folder).absolute()
    file = folder / LOCK
    if folder in _HELD or not file.is_file():
        return
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return  # unreadable: hold() will say what is wrong
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _locked_error(folder, _holder(file)) from None
    finally:
        os.close(fd)  # also releases the probe's shared lock


@contextlib.contextmanager
def hold(folder: Path, *, create: bool = True) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block, creating the folder if ``create``.

    Raises :class:`FolderLockedError` if another process holds it, and
    :class:`~experiments.core.run_folder.RunFolderError` naming the path if the folder cannot be
    created or written. A folder this call created and left holding nothing but the lock
    file is removed again on exit (a command that stopped before writing leaves nothing).
    """
    folder = Path(folder).absolute()
    if folder in _HELD:
        _HELD[folder] += 1
        try:
            yield
        finally:
            _HELD[folder] -= 1
        return
    existed = folder.exists()
    fd = _open(folder, create)
    try:
        _acquire(fd, folder)
        _write_holder(fd)
        _HELD[folder] = 1
        try:
            yield
        finally:
            del _HELD[folder]
            if not existed:
                _remove_if_unused(folder)
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, folder: Path, patience: float = 0.25) -> None:
    """The exclusive lock, or :class:`FolderLockedError`. A writer holds it for the whole
    command; only another command's :func:`check_free` probe holds it for an instant, so a
    refusal is retried for ``patience`` seconds before it is believed."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _locked_error(folder, _holder(folder / LOCK)) from None
            time.sleep(0.02)


def _open(folder: Path, create: bool) -> int:
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        if err.errno in (errno.ENOENT, errno.ENOTDIR) and not create:
            reason = "it does not exist"
        raise RunFolderError(
            f"cannot write the results folder {folder}: {reason}. Give --out a folder you "
            "can write to."
        ) from None


def _command() -> str:
    """This process's command line as it was typed (``python -m experiments.run ...``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["-m", spec.name] if spec is not None and spec.name else sys.argv[:1]
    return " ".join(["python", *program, *sys.argv[1:]])[:300]


def _write_holder(fd: int) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


def _remove_if_unused(folder: Path) -> None:
    try:
        if {p.name for p in folder.iterdir()} == {LOCK}:
            (folder / LOCK).unlink()
            folder.rmdir()
    except OSError:
        pass  # another command is using it now: leave it
