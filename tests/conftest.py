"""Test configuration: run on the CPU, float32 by default (tests that need float64 opt in),
and share compilations.

Every process of one test session (both xdist workers, and the commands the tests start) uses
one persistent XLA compilation cache, so a program compiled once (the digits step, a VGG
forward) is not compiled again by the next process that runs it. The cache is new for every
session: a session's timing never rests on an earlier one's.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
_CACHE = Path(tempfile.gettempdir()) / f"bntt_jax_test_xla_cache-{_SESSION}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
