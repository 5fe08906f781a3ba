"""How a command ends when it cannot go on: one line on stderr that names the problem and the
fix, and its exit code: 2 a bad command (nothing started), 1 a failure after work started
(what was committed stays intact), 130 Ctrl-C (128 + SIGINT), wherever it lands. What a
command writes is replaced whole (:mod:`experiments.core.files`), so an interrupted command
leaves nothing half-written. No JAX."""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from experiments.core.files import NoSpaceError, RunFolderError, no_space
from experiments.core.keys import ConfigError

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130


def fail(message: Any, code: int = 2) -> int:
    """Print ``error: <message>`` on one line (its whitespace folded); return ``code``."""
    text = message.args[0] if isinstance(message, KeyError) else str(message)
    print(f"error: {' '.join(str(text).split())}", file=sys.stderr)
    return code


def log_traceback(folder: Path, what: str) -> None:
    """Append ``what`` and the current exception's traceback to ``folder/log.txt``."""
    stamp = time.strftime("%H:%M:%S")
    with open(Path(folder) / "log.txt", "a") as f:
        f.write(f"{stamp} {what}:\n{traceback.format_exc()}")


def run_failed(out: Path, sweep: bool, err: Exception) -> int:
    """The exit of a run or sweep (``sweep``) that failed after its folder ``out`` was
    claimed: a full disk 1, with how to resume; a bad folder or config 2; divergence or a
    damaged checkpoint 1; any other error 1, its traceback in ``log.txt``. Call it while
    ``err`` is being handled (its traceback is logged)."""
    from experiments.core import run_folder, runner  # JAX: loaded already by the run

    if no_space(err):
        with contextlib.suppress(OSError):  # the log may not fit either
            log_traceback(out, "the disk is full")
        problem = str(err) if isinstance(err, NoSpaceError) else f"no space left on {out}."
        return fail(
            f"{problem} What was committed is intact: free space there, then python -m "
            f"experiments.run --resume --out {out}",
            code=1,
        )
    if isinstance(err, ConfigError | RunFolderError):
        return fail(err)
    if isinstance(err, runner.TrainingDivergedError | run_folder.CheckpointDamagedError):
        return fail(err, code=1)
    what = f"the run failed ({type(err).__name__}: {runner.first_line(err)})"
    log = out / "log.txt"
    if sweep and out.is_dir():  # a run logs its own (the ledger)
        log_traceback(out, what)
    if not log.is_file():
        return fail(f"{what}; nothing was written.", code=1)
    return fail(
        f"{what}; the traceback is in {log}. What was committed is intact; after fixing "
        f"the cause: python -m experiments.run --resume --out {out}",
        code=1,
    )


def exit_with(main: Callable[[], int], again: str) -> NoReturn:
    """``sys.exit(main())``; a Ctrl-C prints ``interrupted: … {again}`` and exits 130."""
    try:
        code = main()
    except KeyboardInterrupt:
        print(
            f"interrupted: what was written stays whole (every file is replaced at once); {again}",
            file=sys.stderr,
        )
        code = INTERRUPTED
    sys.exit(code)
