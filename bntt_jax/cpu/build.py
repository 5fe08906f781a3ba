"""Building the compiled library: the compiler's command, the cache, and a build that a kill
or a full cache never leaves half-done.

The sources (``csrc/``) are compiled for ``-march=$BNTT_JAX_MARCH`` into
``$BNTT_JAX_CACHE`` (default ``~/.cache/bntt_jax``), named by a hash of everything that changes
the binary (:func:`library_path`). :func:`build` writes ``.build-<pid>-*.so`` and renames it
when the compiler succeeds; the compiler dies with the process that started it (Linux), and
the partial file of a killed build is deleted by the next build. :mod:`bntt_jax.cpu.ffi` loads
and registers the result. This module imports nothing of the model, and JAX only to build.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import re
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SOURCES = ("event_conv.cc", "dense_input_grad.cc", "bntt_lif.cc", "masked_input_grad.cc")
#: Headers the sources include: part of the cache key, so that an edit rebuilds.
HEADERS = ("by_dtype.h", "lif.h", "lists.h", "vec.h")
#: Every flag but ``-march``; the sources build without a warning under ``-Wall -Wextra``
#: (the XLA headers are included as system headers, whose warnings are not ours).
#: ``-fno-trapping-math`` (floating-point traps are never enabled here; no result changes) lets
#: GCC turn the LIF update's compare into vector blends without AVX-512's masks: with traps
#: assumed it kept the fused layers' element-wise loops scalar at ``x86-64-v3`` and below.
FLAGS = (
    "-O3",
    "-fno-trapping-math",
    "-fopenmp",
    "-shared",
    "-fPIC",
    "-std=c++17",
    "-Wall",
    "-Wextra",
)
#: x86 target macros (``g++ -march=... -dM -E``) and the ``/proc/cpuinfo`` flag each needs.
_X86_FEATURES = {
    "__SSSE3__": "ssse3",
    "__SSE4_1__": "sse4_1",
    "__SSE4_2__": "sse4_2",
    "__POPCNT__": "popcnt",
    "__AVX__": "avx",
    "__AVX2__": "avx2",
    "__FMA__": "fma",
    "__F16C__": "f16c",
    "__BMI__": "bmi1",
    "__BMI2__": "bmi2",
    "__LZCNT__": "abm",
    "__MOVBE__": "movbe",
    "__AVX512F__": "avx512f",
    "__AVX512BW__": "avx512bw",
    "__AVX512CD__": "avx512cd",
    "__AVX512DQ__": "avx512dq",
    "__AVX512VL__": "avx512vl",
}
_SOURCE_DIR = Path(__file__).parent / "csrc"


def cache_dir() -> Path:
    """Where the compiled library is cached: ``$BNTT_JAX_CACHE`` or ``~/.cache/bntt_jax``."""
    return Path(os.environ.get("BNTT_JAX_CACHE", Path.home() / ".cache" / "bntt_jax"))


def march() -> str:
    """The ``-march`` the kernels are built for: ``$BNTT_JAX_MARCH``, default ``native``.

    Raises ``ValueError`` for a value that cannot be a target name."""
    value = os.environ.get("BNTT_JAX_MARCH", "native")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", value):
        raise ValueError(
            f"BNTT_JAX_MARCH={value!r} is not a -march target name; use e.g. native, x86-64-v2, "
            "x86-64-v3 or x86-64-v4 (or unset it for native)"
        )
    return value


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for ln in text.splitlines() if ln.startswith("flags") for f in ln.split()[2:]}


def missing_features(compiler: str, target: str) -> list[str]:
    """The CPU features that code built with ``-march=target`` uses and this CPU lacks
    (x86 only; empty for ``native``, on other machines, or where ``/proc/cpuinfo`` is
    unreadable). Raises ``RuntimeError`` if the compiler does not know the target."""
    if target == "native" or platform.machine() not in ("x86_64", "AMD64"):
        return []
    flags = _cpu_flags()
    cmd = [compiler, f"-march={target}", "-dM", "-E", "-x", "c++", os.devnull]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-1000:]}"
        )
    defined = {ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("#define")}
    if not flags:
        return []
    return [flag for macro, flag in _X86_FEATURES.items() if macro in defined and flag not in flags]


def cpu_signature() -> str:
    """This CPU as a build or a measurement depends on it: its model name and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def library_path(compiler: str, target: str) -> Path:
    """Where the library built with ``compiler`` for ``-march=target`` is cached: its name
    holds a hash of the sources, the compiler, the flags, jaxlib's version and the CPU."""
    import jaxlib  # here, not at the top: the cache's and the CPU's names need no JAX

    digest = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        digest.update((_SOURCE_DIR / name).read_bytes())
    for part in (
        compiler,
        f"-march={target}",
        *FLAGS,
        jaxlib.__version__,
        platform.machine(),
        cpu_signature(),
    ):
        digest.update(part.encode())
    return cache_dir() / f"ffi-{target}-{digest.hexdigest()[:16]}.so"


def compile_command(compiler: str, target: str, output: str, *extra: str) -> list[str]:
    """The command that builds the sources for ``-march=target`` into ``output``."""
    import jax  # here, not at the top: the cache's and the CPU's names need no JAX

    return [
        compiler,
        f"-march={target}",
        *FLAGS,
        *extra,
        "-isystem",
        jax.ffi.include_dir(),
        *(str(_SOURCE_DIR / name) for name in SOURCES),
        "-o",
        output,
    ]


class CacheNotWritableError(RuntimeError):
    """The folder that caches the compiled library cannot be written."""


#: A build in progress writes ``.build-<pid>-<random>.so`` in the cache, renamed when done.
_PARTIAL = re.compile(r"\.build-(\d+)-[^/]*\.so$")


def _remove_abandoned(folder: Path) -> None:
    """Delete the partial libraries of builds whose process is gone (killed mid-build)."""
    for partial in folder.glob(".build-*.so"):
        match = _PARTIAL.match(partial.name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            partial.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _dies_with_this_process() -> Any:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when this process dies (Linux's
    ``PR_SET_PDEATHSIG``), so a killed build leaves no compiler behind; ``None`` elsewhere."""
    if platform.system() != "Linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # died before the signal was armed
            os._exit(1)

    return set_death_signal


def build(compiler: str, target: str, output: Path) -> str:
    """Compile the sources for ``-march=target`` into ``output`` (written under a temporary
    name, then renamed); returns the compiler's warnings (empty when there are none). Raises
    ``RuntimeError`` with the compiler's messages when the build fails, and
    :class:`CacheNotWritableError` naming the cache folder when it cannot be written. A build
    killed midway leaves no compiler running, and its partial file is deleted by the next
    build."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(output.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".build-{os.getpid()}-", suffix=".so", dir=output.parent)
    except PermissionError as err:
        raise CacheNotWritableError(
            f"the cache folder {output.parent} cannot be written ({err.strerror}): make it "
            "writable, or set BNTT_JAX_CACHE to a folder you can write"
        ) from None
    os.close(fd)
    cmd = compile_command(compiler, target, tmp)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, preexec_fn=_dies_with_this_process()
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return proc.stderr
