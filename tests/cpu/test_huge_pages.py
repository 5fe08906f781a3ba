"""Huge pages for XLA:CPU's large buffers: fewer page faults, and the CLIs' restart."""

import os
import subprocess
import sys

import pytest

from bntt_jax.cpu.huge_pages import TUNABLE, huge_pages_env, huge_pages_on

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunable")

PROBE = """
import resource, jax, jax.numpy as jnp
x = jax.random.normal(jax.random.key(0), (512, 128, 256))
f = jax.jit(lambda x: x * 2 + 1)
jax.block_until_ready(f(x))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    jax.block_until_ready(f(x))
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
"""


def run(args, env):
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def clean_env():
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["JAX_PLATFORMS"] = "cpu"
    return env


def test_tunable_is_appended_to_existing_tunables():
    assert huge_pages_env({})["GLIBC_TUNABLES"] == TUNABLE
    env = huge_pages_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
    assert env == {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}", "X": "1"}
    assert huge_pages_env(env) == env  # idempotent
    assert huge_pages_on(env) and not huge_pages_on({})


@linux_only
def test_huge_pages_cut_the_page_faults_of_every_call():
    # A 64 MiB output is 16,384 pages of 4 KiB: by default each call faults them in again.
    default = float(run(["-c", PROBE], clean_env()))
    huge = float(run(["-c", PROBE], huge_pages_env(clean_env())))
    assert default > 8000
    assert huge < 0.2 * default


@linux_only
def test_command_line_entry_points_restart_once_with_the_tunable(tmp_path):
    (tmp_path / "probe_main.py").write_text(
        "import os, sys\n"
        "from bntt_jax.cpu.huge_pages import restart_with_huge_pages\n"
        "restart_with_huge_pages('probe_main', sys.argv[1:])\n"
        "print(os.environ['GLIBC_TUNABLES'], *sys.argv[1:])\n"
    )
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    assert run(["-m", "probe_main", "a", "b"], env) == f"{TUNABLE} a b"
    env["BNTT_JAX_HUGE_PAGES"] = "0"
    proc = subprocess.run([sys.executable, "-m", "probe_main"], env=env, capture_output=True)
    assert proc.returncode == 1 and b"KeyError" in proc.stderr  # no restart: no tunable
