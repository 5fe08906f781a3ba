"""The compiled kernels on every target: built for x86-64-v2, -v3 and -v4 (16-, 32- and 64-byte
vectors), each without a warning under ``-Wall -Wextra``, and every kernel's equality test
against XLA (the tests marked ``kernels``) run with that build where this CPU can run it, a
compile-only check where it cannot; the aarch64 build compiled where a cross-compiler is
installed; and, read from the generated assembly, no vector register spilled to the stack in
any kernel's hot loop on any target.

Building a target this CPU cannot run is refused before anything is built or loaded, and the
cache keeps one library per target.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bntt_jax.cpu import build, ffi

ROOT = Path(__file__).parents[2]
X86 = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
COMPILER = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
KERNEL_TESTS = [
    "tests/cpu/test_ffi.py",
    "tests/cpu/test_masked.py",
    "tests/cpu/test_fused.py",
    "tests/cpu/test_fused_train.py",
]
on_x86 = pytest.mark.skipif(
    os.uname().machine != "x86_64" or COMPILER is None,
    reason="the x86 targets need an x86-64 machine with a C++ compiler",
)


@on_x86
@pytest.mark.e2e
@pytest.mark.parametrize("march", X86)
def test_every_kernel_equals_xla_when_built_for(march, tmp_path):
    cache = tmp_path / "cache"
    library = cache / "library.so"
    warnings = build.build(COMPILER, march, library)
    assert warnings == "", f"-march={march}: the build warns:\n{warnings}"
    assert library.stat().st_size > 0
    if build.missing_features(COMPILER, march):
        return  # this CPU cannot run it: compiled (and warning-free) is what can be checked
    env = {
        **os.environ,
        "BNTT_JAX_MARCH": march,
        "BNTT_JAX_CACHE": str(cache),
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "-m",
            "kernels",
            *KERNEL_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"-march={march}:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    assert " passed" in proc.stdout and " failed" not in proc.stdout
    built = list(cache.glob(f"ffi-{march}-*.so"))
    assert len(built) == 1, "the kernels ran from a library built for the target"


@pytest.mark.e2e
@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-g++") is None,
    reason="no aarch64 cross-compiler (apt install g++-aarch64-linux-gnu)",
)
def test_the_sources_compile_for_aarch64_without_a_warning(tmp_path):
    cmd = build.compile_command(
        "aarch64-linux-gnu-g++", "armv8-a", str(tmp_path / "arm.so"), "-mtune=neoverse-n1"
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr[-3000:]
    header = (tmp_path / "arm.so").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # AArch64


@on_x86
@pytest.mark.e2e
def test_no_hot_loop_spills_a_vector_register_on_any_target():
    from benchmarks import assembly

    targets = [*X86, *(["aarch64"] if shutil.which(assembly.AARCH64[0]) else [])]
    for target in targets:
        loops = assembly.analyse(target)
        assert set(loops) == set(assembly.KERNELS), f"{target}: hot loops not found"
        for kernel, loop in loops.items():
            assert loop.stack_vector == 0, (
                f"{target}, {kernel}: {loop.stack_vector} vector stack operands in its hot "
                "loop:\n  " + "\n  ".join(loop.body)
            )


@on_x86
def test_a_target_this_cpu_cannot_run_is_refused_before_building(monkeypatch, tmp_path):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path))
    v3 = {
        "sse4_1",
        "sse4_2",
        "popcnt",
        "ssse3",
        "avx",
        "avx2",
        "fma",
        "bmi1",
        "bmi2",
        "f16c",
        "abm",
        "movbe",
    }
    monkeypatch.setattr(build, "_cpu_flags", lambda: v3)
    assert build.missing_features(COMPILER, "x86-64-v3") == []
    missing = build.missing_features(COMPILER, "x86-64-v4")
    assert {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= set(missing)
    with pytest.raises(RuntimeError, match="avx512f.*BNTT_JAX_MARCH"):
        ffi.load(COMPILER, "x86-64-v4")
    assert not list(tmp_path.iterdir()), "nothing may be built for a target that cannot run"


def test_the_target_comes_from_bntt_jax_march_and_keys_the_cache(monkeypatch):
    monkeypatch.delenv("BNTT_JAX_MARCH", raising=False)
    assert build.march() == "native"
    monkeypatch.setenv("BNTT_JAX_MARCH", "x86-64-v3")
    assert build.march() == "x86-64-v3"
    for bad in ("x86 64", "-O0", "native;rm", ""):
        monkeypatch.setenv("BNTT_JAX_MARCH", bad)
        with pytest.raises(ValueError, match="BNTT_JAX_MARCH"):
            build.march()
    names = {march: build.library_path("g++", march).name for march in ("native", *X86)}
    assert len(set(names.values())) == 4
    assert all(name.startswith(f"ffi-{march}-") for march, name in names.items())


def test_the_build_in_use_says_what_it_was_compiled_for():
    info = ffi.target()
    assert info is not None and info["march"] == build.march()
    assert info["vector_bytes"] in (16, 32, 64) and info["vector_registers"] in (16, 32)
    # the register blocks fit the register file (vec.h's static_asserts, read back)
    blocks = info["block_pixels"] * info["block_vectors"] + info["block_vectors"] + 1
    assert blocks <= info["vector_registers"]
    assert 9 * info["grad_vectors"] + 1 <= info["vector_registers"]
    assert info["isa"] in ffi.summary()
