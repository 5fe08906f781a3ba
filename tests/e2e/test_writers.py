"""One writer per results folder, with real concurrent commands: a run frozen (SIGSTOP) while
it holds its folder makes a second run, a second resume and an analyze of that folder exit 2
at once naming its PID and host; killed, it leaves no stale lock, and the folder resumes.
And every failure the process cannot foresee after the folder exists is in ``log.txt``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.core import lock, run_folder
from tests.helpers.runs import sets

pytestmark = pytest.mark.e2e  # the end-to-end tier

ROOT = Path(__file__).parents[2]
TINY = ["digits_bntt", *sets("epochs=3", "max_train_batches=2", "num_steps=4", "analyses=none")]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNTT_JAX_FAULT")}
    return {**env, "JAX_PLATFORMS": "cpu", "BNTT_JAX_HUGE_PAGES": "0", **extra}


def _command(module: str, *args: str, **env: str) -> list:
    return [[sys.executable, "-m", module, *args], {"cwd": ROOT, "env": _env(**env)}]


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
    cmd, kw = _command(module, *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _frozen(module_args: list[str], point: str) -> subprocess.Popen:
    """A command stopped (SIGSTOP) at the fault point ``point``, holding what it holds."""
    cmd, kw = _command(
        "experiments.run", *module_args, BNTT_JAX_FAULT=point, BNTT_JAX_FAULT_ACTION="stop"
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)
    deadline = time.monotonic() + 300
    while _state(proc.pid) != "T":
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)


def _refused_by(result: subprocess.CompletedProcess, holder: subprocess.Popen) -> None:
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"PID {holder.pid} on host {socket.gethostname()}" in line, line
    assert "being written by another command" in line


def test_a_second_writer_exits_2_naming_the_first(tmp_path):
    out = tmp_path / "run"
    first = _frozen([*TINY, "--out", str(out)], "committed@1")
    try:
        before = sorted(p.name for p in out.rglob("*"))
        start = time.monotonic()
        _refused_by(_run("experiments.run", *TINY, "--out", str(out)), first)  # a new run
        _refused_by(_run("experiments.run", "--resume", "--out", str(out)), first)  # a resume
        _refused_by(_run("experiments.analyze", str(out)), first)  # an analyze
        assert time.monotonic() - start < 30  # at once: before JAX, three processes
        assert sorted(p.name for p in out.rglob("*")) == before  # nothing written
    finally:
        _kill(first)
    # Killed, it leaves no stale lock: a resume goes on, and is frozen in its turn; a second
    # resume of the same folder is refused naming it.
    second = _frozen(["--resume", "--out", str(out)], "committed@2")
    try:
        _refused_by(_run("experiments.run", "--resume", "--out", str(out)), second)
    finally:
        _kill(second)
    done = _run("experiments.run", "--resume", "--out", str(out))
    assert done.returncode == 0, done.stderr
    manifest, warning = run_folder.read_manifest(out)
    assert warning is None and manifest["complete"]
    assert [h["epoch"] for h in manifest["history"]] == [1, 2, 3]
    assert [leg["from_epoch"] for leg in manifest["legs"]] == [0, 1, 2]


def test_two_new_runs_into_one_folder_one_wins(tmp_path):
    out = tmp_path / "race"
    cmd, kw = _command("experiments.run", *TINY, "--out", str(out))
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    loser = results[[p.returncode for p in procs].index(2)][1].strip().splitlines()[-1]
    # the loser hears of the other writer, or of the finished run it left, never "--resume"
    assert "being written by another command" in loser or "a finished run" in loser, loser
    assert "--resume" not in loser
    assert run_folder.inspect(out).state == "finished"


def test_lock_is_released_by_the_os_and_reentrant(tmp_path):
    folder = tmp_path / "f"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from experiments.core import lock\n"
            f"with lock.hold({str(folder)!r}):\n    print('held', flush=True); time.sleep(600)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lock.FolderLockedError, match=f"PID {holder.pid} on host"):
            lock.check_free(folder)
        with pytest.raises(lock.FolderLockedError, match=f"PID {holder.pid}"):
            with lock.hold(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    lock.check_free(folder)  # released by the OS with the process
    with lock.hold(folder), lock.hold(folder):  # re-entrant in one process
        lock.check_free(folder)
    assert (folder / run_folder.LOCK).is_file()  # kept: it names the last holder
    new = tmp_path / "created"
    with lock.hold(new):
        assert new.is_dir()
    assert not new.exists()  # nothing was written in it: removed again
    (tmp_path / "file").write_text("x")
    blocked = tmp_path / "file" / "sub"
    with pytest.raises(
        run_folder.RunFolderError, match=f"cannot write the results folder {blocked}"
    ):
        with lock.hold(blocked):
            pass


def test_a_failure_after_the_folder_exists_is_logged_and_resumable(tmp_path):
    out = tmp_path / "fails"
    fault = {"BNTT_JAX_FAULT": "metrics_written@2", "BNTT_JAX_FAULT_ACTION": "raise"}
    args = [*TINY, "--set", "progress_every_s=0.001", "--out", str(out)]
    cmd, kw = _command("experiments.run", *args, **fault)
    failed = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert failed.returncode == 1, failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert "the run failed (RuntimeError: fault injected at metrics_written@2" in line
    assert f"the traceback is in {out / 'log.txt'}" in line and "--resume" in line
    log = (out / "log.txt").read_text()
    assert "Traceback (most recent call last)" in log and "RuntimeError: fault injected" in log
    # without a terminal the log shows the progress within the epoch
    assert "epoch 1/3: step 1/2" in log and "images/s" in log and "left in the epoch" in log
    assert run_folder.inspect(out).state == "run"  # resumable
    done = _run("experiments.run", "--resume", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert run_folder.read_manifest(out)[0]["epoch"] == 3
