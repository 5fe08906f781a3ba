"""Transparent huge pages for XLA:CPU's large buffers (glibc ``malloc`` tunable).

XLA:CPU allocates its intermediate buffers anew on every call, and glibc serves large ones
from fresh ``mmap`` pages: each call then pays one page fault per 4 KiB it writes. For one
element-wise pass over a ``[784, 128, 256]`` float32 array on this project's 2-core machine
that is ~25,000 minor faults and half of the time (0.039 s; 0.020 s and ~560 faults with
huge pages). The time-folded tensors of an SNN are exactly such buffers.

glibc ≥ 2.35 can ask the kernel for transparent huge pages (2 MiB) for those blocks: the
tunable ``glibc.malloc.hugetlb=1``. It is read only at process start, so the command-line
entry points (``python -m experiments.run``, ``python -m benchmarks.step``) restart
themselves once with it set (:func:`restart_with_huge_pages`); in your own scripts, start
Python with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``. Memory is still returned to the OS as
usual. Elsewhere (not glibc, or THP disabled by the system) the setting does nothing.
Set ``BNTT_JAX_HUGE_PAGES=0`` to keep the restart from happening.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

TUNABLE = "glibc.malloc.hugetlb=1"


def huge_pages_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with :data:`TUNABLE` added to ``GLIBC_TUNABLES`` (others kept)."""
    env = dict(environ)
    current = env.get("GLIBC_TUNABLES", "")
    if TUNABLE not in current.split(":"):
        env["GLIBC_TUNABLES"] = f"{current}:{TUNABLE}" if current else TUNABLE
    return env


def huge_pages_on(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process (or ``environ``) was started with the tunable."""
    return TUNABLE in environ.get("GLIBC_TUNABLES", "").split(":")


def restart_with_huge_pages(module: str, argv: Sequence[str]) -> None:
    """Re-execute ``python -m module argv`` with the tunable, unless it is already set, the
    platform is not Linux, or ``BNTT_JAX_HUGE_PAGES=0``. Returns only when no restart is due.
    """
    if (
        huge_pages_on()
        or not sys.platform.startswith("linux")
        or os.environ.get("BNTT_JAX_HUGE_PAGES", "1") == "0"
    ):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], huge_pages_env(os.environ))
