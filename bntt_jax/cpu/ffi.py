"""Compiled XLA:CPU code, built on first use and registered through ``jax.ffi``.

The FFI targets live as C++ sources in ``bntt_jax/cpu/csrc/``. The first call of
:func:`available` in a process compiles them with the system C++ compiler against the XLA FFI
headers that ship with jaxlib (``jax.ffi.include_dir()``), for the CPU it runs on
(``-march=native``), and caches the shared library under ``$BNTT_JAX_CACHE`` (default
``~/.cache/bntt_jax``), keyed by the sources, the flags, the jaxlib version and the CPU. Later
processes load the cached library. The build writes a temporary file and renames it, so an
interrupted or concurrent build never leaves a broken library behind.

If no compiler is found or the build fails, :func:`available` returns ``False`` after one
warning that says why, and the library runs its pure-XLA code paths instead (same results,
slower). Set ``BNTT_JAX_FFI=0`` to turn the compiled code off (``BNTT_JAX_KERNELS=0``, its
former name, still works).

The compiled code is used only where the CPU is one device (:func:`usable`). A custom call is
opaque to XLA's SPMD partitioner: with several CPU devices (forced host devices, or several
``jax.distributed`` processes) XLA would all-gather each call's whole input onto every
device and run the call on the whole batch there, N times the work plus one collective
rendezvous per call. The pure-XLA paths partition over the batch instead.

Targets (``csrc/sparse_conv.cc``): the event-driven convolution's forward and filter gradient
and the dense input gradient, used by :func:`bntt_jax.cpu.convolution.conv3x3` and
:func:`~bntt_jax.cpu.convolution.spike_dense` on CPU, and the fused evaluation-mode layer
(convolution + per-step affine + LIF) of :mod:`bntt_jax.cpu.fused`; ``csrc/bntt_lif.cc``:
the training-mode BNTT normalisation + LIF forward and backward of the same module;
``csrc/masked_input_grad.cc``: the input gradient on the surrogate's support of
:mod:`bntt_jax.cpu.masked`. This module imports nothing of the model.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax
import jaxlib

SOURCES = ("sparse_conv.cc", "bntt_lif.cc", "masked_input_grad.cc")
#: Headers the sources include: part of the cache key, so that an edit rebuilds.
HEADERS = ("by_dtype.h", "vec.h")
#: FFI target name -> symbol exported by the library.
TARGETS = {
    "bntt_sparse_conv_fwd": "SparseConvFwd",
    "bntt_sparse_conv_dw": "SparseConvDw",
    "bntt_sparse_conv_lif_eval": "SparseConvLifEval",
    "bntt_conv_input_grad": "SparseConvDx",
    "bntt_conv_input_grad_masked": "MaskedInputGrad",
    "bntt_lif_train_fwd": "BnttLifTrainFwd",
    "bntt_lif_train_bwd": "BnttLifTrainBwd",
}
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17", "-w")
_SOURCE_DIR = Path(__file__).parent / "csrc"


def cache_dir() -> Path:
    """Where the compiled library is cached: ``$BNTT_JAX_CACHE`` or ``~/.cache/bntt_jax``."""
    return Path(os.environ.get("BNTT_JAX_CACHE", Path.home() / ".cache" / "bntt_jax"))


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def _library_path(compiler: str) -> Path:
    digest = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        digest.update((_SOURCE_DIR / name).read_bytes())
    for part in (compiler, *FLAGS, jaxlib.__version__, platform.machine(), _cpu_signature()):
        digest.update(part.encode())
    return cache_dir() / f"ffi-{digest.hexdigest()[:16]}.so"


def _build(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [
        compiler,
        *FLAGS,
        f"-I{jax.ffi.include_dir()}",
        *(str(_SOURCE_DIR / name) for name in SOURCES),
        "-o",
        tmp,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_loaded: list[ctypes.CDLL] = []  # the registered library, kept alive for the process


def load(compiler: str) -> None:
    """Build the library with ``compiler`` if they are not cached, load and register them.

    Raises ``RuntimeError`` (with the compiler's messages) when the build fails. The FFI
    targets are registered once per process; later loads only check that the build works.
    """
    path = _library_path(compiler)
    if not path.exists():
        _build(compiler, path)
    library = ctypes.cdll.LoadLibrary(str(path))
    if _loaded:
        return
    for name, symbol in TARGETS.items():
        jax.ffi.register_ffi_target(
            name, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu"
        )
    _loaded.append(library)


@functools.cache
def available() -> bool:
    """Compile (once, cached) and register the compiled code; ``False`` if that is impossible."""
    if os.environ.get("BNTT_JAX_FFI", os.environ.get("BNTT_JAX_KERNELS", "1")) == "0":
        return False
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        warnings.warn(
            "bntt_jax: no C++ compiler (g++) found, so the fast compiled CPU code is off and the "
            "slower pure-XLA paths are used. Install g++ (e.g. `apt install g++`) to enable "
            "it, or set BNTT_JAX_FFI=0 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    try:
        load(compiler)
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as err:
        warnings.warn(
            f"bntt_jax: building the compiled CPU code failed, so the slower pure-XLA paths are "
            f"used (results are the same). Set BNTT_JAX_FFI=0 to silence this. Cause: {err}",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def usable() -> bool:
    """Whether the library uses the compiled code here: it is :func:`available` and the CPU
    backend is a single device (see the module docstring for why not on several)."""
    return available() and len(jax.devices("cpu")) == 1
