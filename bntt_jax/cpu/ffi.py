"""Compiled XLA:CPU code, built on first use and registered through ``jax.ffi``.

The FFI targets live as C++ sources in ``bntt_jax/cpu/csrc/``. The first call of
:func:`available` in a process compiles them with the system C++ compiler (``$CXX``, else
``g++``) against the XLA FFI headers that ship with jaxlib (``jax.ffi.include_dir()``), for the
target ``-march=$BNTT_JAX_MARCH`` (default ``native``: the CPU it runs on; e.g. ``x86-64-v2``,
``x86-64-v3``, ``x86-64-v4`` to build for a class of machines), and caches the shared library
under ``$BNTT_JAX_CACHE`` (default ``~/.cache/bntt_jax``), keyed by the sources, the compiler,
the flags, the jaxlib version and the CPU. Later processes load the cached library. The build
writes a temporary file and renames it, so an interrupted or concurrent build never leaves a
broken library behind; the compiler dies with the process that started it, and a killed
build's partial file is deleted by the next one. A cache that cannot be written is named, with
how to fix it.

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
import os
import shutil
import subprocess
import warnings

import jax

from bntt_jax.cpu.build import (  # the build's names, as this module's former users call them
    CacheNotWritableError,
    build,
    library_path,
    march,
    missing_features,
)

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
    path = library_path(compiler, target)
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
    except CacheNotWritableError as err:
        warnings.warn(
            f"bntt_jax: {err}. Until then the compiled CPU code is off and the slower pure-XLA "
            "paths are used (results are the same).",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
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
