"""Measuring as another machine would: every implementation limited to one instruction set.

An AVX-512 machine can time what an AVX2 or a 128-bit machine runs, by limiting each party:

* bntt-jax's compiled kernels: built for that target (``BNTT_JAX_MARCH``);
* XLA's generated code: ``XLA_FLAGS=--xla_cpu_max_isa=...`` (the convolutions and matmuls XLA
  calls into are precompiled in jaxlib for its own baseline, AVX, whatever the limit says; jaxlib
  does not run on x86 without AVX at all, so the 128-bit profile stands for ARM NEON's 16-byte
  vectors, measured on the same cores);
* PyTorch: ``ATEN_CPU_CAPABILITY`` (its vectorised ATen kernels) and ``ONEDNN_MAX_CPU_ISA``
  (oneDNN's convolutions).

:func:`check` reads back from each party that its limit is honoured; :func:`header` is the
line every table starts with: the CPU model, its vector ISA, and the limits in force.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

#: name -> (what it stands for, the environment that limits every party to it)
PROFILES: dict[str, tuple[str, dict[str, str]]] = {
    "native": ("this CPU's own ISA, no limits", {}),
    "avx2": (
        "an AVX2 + FMA machine (Intel client CPUs, AMD Zen 2/3)",
        {
            "BNTT_JAX_MARCH": "x86-64-v3",
            "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
            "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
        },
    ),
    "sse": (
        "a 128-bit machine (x86-64-v2; the stand-in for ARM NEON's 16-byte vectors)",
        {
            "BNTT_JAX_MARCH": "x86-64-v2",
            "XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2",
            "ATEN_CPU_CAPABILITY": "default",
            "ONEDNN_MAX_CPU_ISA": "SSE41",
        },
    ),
}


def environment(profile: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the profile's limits; ``XLA_FLAGS`` extended."""
    env = dict(os.environ if base is None else base)
    for key, value in PROFILES[profile][1].items():
        if key == "XLA_FLAGS" and env.get(key):
            value = f"{env[key]} {value}"
        env[key] = value
    return env


def cpu_model() -> str:
    """The CPU's model name and its widest vector ISA, from ``/proc/cpuinfo``."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")),
        platform.machine(),
    )
    flags = set(re.findall(r"\b(avx512f|avx2|fma|asimd)\b", text))
    isa = (
        "AVX-512"
        if "avx512f" in flags
        else "AVX2"
        if "avx2" in flags
        else "NEON"
        if "asimd" in flags
        else "SSE"
    )
    cores = os.cpu_count()
    return f"{model} ({cores} vCPUs, {isa})"


_CHECK = r"""
import json, os, subprocess, sys, tempfile, glob
out = {}
from bntt_jax.cpu import ffi
info = ffi.target()
out["kernels"] = f"-march={info['march']}, {info['isa']}" if info else "off"
dump = tempfile.mkdtemp()
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump}").strip()
import jax, jax.numpy as jnp
jax.jit(lambda x: jnp.tanh(x) * 2 + 1)(jnp.ones((256, 256))).block_until_ready()
asm = "".join(subprocess.run(["objdump", "-d", f], capture_output=True, text=True).stdout
              for f in glob.glob(f"{dump}/*.o"))
widest = "zmm" if "%zmm" in asm else "ymm" if "%ymm" in asm else "xmm"
import re
evex = bool(re.search(r"%[xyz]mm(1[6-9]|2\d|3[01])|%k[1-7]|vpternlog|\{1to", asm))
out["xla"] = f"widest {widest}, AVX-512 instructions: {'yes' if evex else 'none'}"
try:
    import torch
except ImportError:
    out["torch"] = "not installed"
else:
    x = torch.randn(2, 8, 8, 8)
    torch.nn.functional.conv2d(x, torch.randn(8, 8, 3, 3), padding=1)
    out["torch"] = f"ATen {torch.backends.cpu.get_cpu_capability()}"
print(json.dumps(out))
"""


def check(profile: str) -> dict[str, str]:
    """What each party runs under the profile, read back from it in a fresh process: the
    kernels' target (``bntt_jax.cpu.ffi.target``), whether XLA's generated code holds AVX-512
    instructions (``objdump`` of a dumped module), PyTorch's ATen capability and oneDNN's ISA
    (its verbose line)."""
    env = environment(profile, {**os.environ, "ONEDNN_VERBOSE": "1", "JAX_PLATFORMS": "cpu"})
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, cwd=tmp
        )
    if proc.returncode != 0:
        raise RuntimeError(f"checking the {profile} limits failed:\n{proc.stderr[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    isa = next((ln.split("isa:", 1)[1] for ln in lines if ",info,cpu,isa:" in ln), None)
    if out["torch"] != "not installed":
        out["torch"] += f", oneDNN {isa or 'unknown'}"
    return out


def header(profile: str, checked: dict[str, str] | None = None) -> str:
    """The line above a table: the CPU, the profile, and the limits in force."""
    meaning, env = PROFILES[profile]
    limits = ", ".join(f"{k}={v}" for k, v in env.items()) or "none"
    line = f"CPU: {cpu_model()}. Profile `{profile}`: {meaning}. Limits: {limits}."
    if checked:
        line += " Read back: " + "; ".join(f"{k}: {v}" for k, v in checked.items()) + "."
    return line
