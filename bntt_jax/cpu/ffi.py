"""Compiled XLA:CPU code, built on first use and registered through ``jax.ffi``.

The FFI targets live as C++ sources in ``bntt_jax/cpu/csrc/``. The first call of
:func:`available` in a process compiles them with the system C++ compiler (``$CXX``, else
``g++``) against the XLA FFI headers that ship with jaxlib (``jax.ffi.include_dir()``), for the
target ``-march=$BNTT_JAX_MARCH`` (default ``native``: the CPU it runs on; e.g. ``x86-64-v2``,
``x86-64-v3``, ``x86-64-v4`` to build for a class of machines), and caches the shared library
under ``$BNTT_JAX_CACHE`` (default ``~/.cache/bntt_jax``), keyed by the sources, the compiler,
the flags, the jaxlib version and the CPU. Later processes load the cached library. The build
writes a temporary file and renames it, so an interrupted or concurrent build never leaves a
broken library behind.

The kernels are written for the target's own vector width and register file (``csrc/vec.h``:
64-byte vectors and 32 registers with AVX-512, 32 bytes and 16 with AVX/AVX2, 16 bytes
otherwise); :func:`target` says what a build was compiled for. A target this CPU cannot run
(``BNTT_JAX_MARCH=x86-64-v4`` without AVX-512) is refused before anything is loaded.

If no compiler is found, the build fails or the target cannot run here, :func:`available`
returns ``False`` after one warning that says why, and the library runs its pure-XLA code paths
instead (same results, slower). Set ``BNTT_JAX_FFI=0`` to turn the compiled code off
(``BNTT_JAX_KERNELS=0``, its former name, still works).

The compiled code is used only where the CPU is one device (:func:`usable`). A custom call is
opaque to XLA's SPMD partitioner: with several CPU devices (forced host devices, or several
``jax.distributed`` processes) XLA would all-gather each call's whole input onto every
device and run the call on the whole batch there, N times the work plus one collective
rendezvous per call. The pure-XLA paths partition over the batch instead.

Targets: ``csrc/event_conv.cc``, the event-driven convolution's forward and filter gradients
(pixel by pixel, or a 3×3 kernel's channel by channel), used by
:func:`bntt_jax.cpu.convolution.conv3x3` and :func:`~bntt_jax.cpu.convolution.spike_dense` on
CPU, and the fused evaluation-mode layer (convolution + per-step affine + LIF) of
:mod:`bntt_jax.cpu.fused`; ``csrc/dense_input_grad.cc``, the 3×3 convolution's dense input
gradient; ``csrc/bntt_lif.cc``:
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
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax
import jaxlib

SOURCES = ("event_conv.cc", "dense_input_grad.cc", "bntt_lif.cc", "masked_input_grad.cc")
#: Headers the sources include: part of the cache key, so that an edit rebuilds.
HEADERS = ("by_dtype.h", "lif.h", "lists.h", "vec.h")
#: FFI target name -> symbol exported by the library.
TARGETS = {
    "bntt_event_conv_forward": "EventConvForward",
    "bntt_event_conv_filter_grad": "EventConvFilterGrad",
    "bntt_event_conv_filter_grad_3x3": "EventConvFilterGrad3x3",
    "bntt_event_conv_lif_eval": "EventConvLifEval",
    "bntt_dense_input_grad": "DenseInputGrad",
    "bntt_conv_input_grad_masked": "MaskedInputGrad",
    "bntt_lif_train_fwd": "BnttLifTrainFwd",
    "bntt_lif_train_bwd": "BnttLifTrainBwd",
}
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


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def _library_path(compiler: str, target: str) -> Path:
    digest = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        digest.update((_SOURCE_DIR / name).read_bytes())
    for part in (
        compiler,
        f"-march={target}",
        *FLAGS,
        jaxlib.__version__,
        platform.machine(),
        _cpu_signature(),
    ):
        digest.update(part.encode())
    return cache_dir() / f"ffi-{target}-{digest.hexdigest()[:16]}.so"


def compile_command(compiler: str, target: str, output: str, *extra: str) -> list[str]:
    """The command that builds the sources for ``-march=target`` into ``output``."""
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


def build(compiler: str, target: str, output: Path) -> str:
    """Compile the sources for ``-march=target`` into ``output`` (written under a temporary
    name, then renamed); returns the compiler's warnings (empty when there are none). Raises
    ``RuntimeError`` with the compiler's messages when the build fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=output.parent)
    os.close(fd)
    cmd = compile_command(compiler, target, tmp)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return proc.stderr


_loaded: list[ctypes.CDLL] = []  # the registered library, kept alive for the process


def describe(library: ctypes.CDLL) -> dict:
    """What a loaded build was compiled for: its vector ISA, width and registers, and the
    register blocking of its kernels (``csrc/vec.h``)."""
    values = (ctypes.c_int64 * 8)()
    function = library.BnttTarget
    function.restype = ctypes.c_char_p
    isa = function(values).decode()
    names = (
        "vector_bytes",
        "vector_registers",
        "fma",
        "chunk_vectors",
        "grad_vectors",
        "block_pixels",
        "block_vectors",
        "pixel_group",
    )
    return {"isa": isa, **dict(zip(names, map(int, values), strict=True))}


def target() -> dict | None:
    """What the compiled code in use was built for (:func:`describe`, with its ``march``), or
    ``None`` where it is not :func:`available`."""
    if not available() or not _loaded:
        return None
    return {"march": march(), **describe(_loaded[0])}


def summary() -> str:
    """One line for logs: the compiled code's target, or why the pure-XLA paths run."""
    info = target()
    if info is None:
        return "compiled CPU code: off (pure-XLA paths)"
    line = (
        f"compiled CPU code: -march={info['march']}, {info['isa']} ({info['vector_bytes']}-byte "
        f"vectors, {info['vector_registers']} registers{', FMA' if info['fma'] else ''})"
    )
    if not usable():
        line += f", unused on {len(jax.devices('cpu'))} CPU devices (pure-XLA paths)"
    return line


def load(compiler: str, target: str = "native") -> None:
    """Build the library with ``compiler`` for ``-march=target`` if it is not cached, load it
    and register its FFI targets.

    Raises ``RuntimeError`` (with the compiler's messages) when the build fails, or naming the
    missing features when this CPU cannot run ``target``, before building or loading anything.
    The FFI targets are registered once per process; later loads only check that the build
    works.
    """
    missing = missing_features(compiler, target)
    if missing:
        raise RuntimeError(
            f"code built with -march={target} needs CPU features this CPU lacks "
            f"({', '.join(missing)}); set BNTT_JAX_MARCH to a target it can run (native, or "
            "x86-64-v2 / x86-64-v3)"
        )
    path = _library_path(compiler, target)
    if not path.exists():
        build(compiler, target, path)
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
        load(compiler, march())
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as err:
        warnings.warn(
            "bntt_jax: the compiled CPU code could not be built or run here, so the slower "
            "pure-XLA paths are used (results are the same). Set BNTT_JAX_FFI=0 to silence "
            f"this. Cause: {err}",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def usable() -> bool:
    """Whether the library uses the compiled code here: it is :func:`available` and the CPU
    backend is a single device (see the module docstring for why not on several)."""
    return available() and len(jax.devices("cpu")) == 1


#: The dtypes the compiled kernels are built for.
DTYPES = ("float32", "float64")


def runs(x: jax.Array) -> bool:
    """The one guard of the compiled code: whether it runs on ``x`` here (a dtype of
    :data:`DTYPES` and :func:`usable`). The model falls back to XLA's ops where it does not."""
    return str(x.dtype) in DTYPES and usable()


def require(name: str, what: str, x: jax.Array, fallback: str) -> None:
    """Refuse a direct call of the compiled op ``name`` that cannot run: ``x`` (its argument
    ``what``) of another dtype, or no compiled code here (``fallback`` says what falls back to
    XLA by itself)."""
    if str(x.dtype) not in DTYPES:
        raise TypeError(f"{name}(): {what} must be float32 or float64, got {x.dtype}")
    if not available():
        raise RuntimeError(
            f"{name}() needs the compiled CPU code, which is unavailable here (see the warning "
            f"from bntt_jax.cpu.ffi); {fallback}."
        )
