"""The compiled CPU kernels: event-driven convolution forward and filter gradient.

Each kernel is checked against XLA's convolution / matmul in float64 (where only the
summation order differs) on inputs of the kinds the networks feed them: binary spikes,
2×2 averages of spikes, signed Poisson spikes and all-zero maps, with shapes that exercise
the vector chunks, their tails, the padded borders and 1×1 maps.
"""

import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax.cpu import build, choice, convolution, ffi
from bntt_jax.cpu.convolution import (
    conv3x3,
    conv3x3_reference,
    sparse_conv,
    sparse_conv_filter_grad,
    spike_dense,
)
from tests.helpers.choices import targets_with

pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="no C++ compiler on this machine: the kernels cannot be built (pure-XLA paths run)",
)


def sparse_input(rng, shape, kind):
    """Inputs of the kinds the networks produce, at a ~25% firing rate."""
    fired = rng.random(shape) < 0.25
    if kind == "binary":
        return fired.astype(np.float64)
    if kind == "signed":  # Poisson spikes carry the pixel's sign
        return fired * np.sign(rng.normal(size=shape))
    if kind == "pooled":  # 2×2 averages of binary spikes: multiples of 1/4
        return rng.integers(0, 5, size=shape) / 4.0 * fired
    return np.zeros(shape)


def reference_conv(x, kernel):
    k = kernel.shape[0]
    pad = (k - 1) // 2
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), ((pad, pad), (pad, pad)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def test_kernels_build_and_register():
    assert ffi.available()
    assert build.cache_dir().is_dir()
    assert list(build.cache_dir().glob("ffi-*.so"))


CASES = [
    # (input shape [N, H, W, C], k, features D, input kind); method 1 takes its per-channel
    # path where an image has >= 6 non-zeros per channel and strip (the first two cases, the
    # tall ones below), its per-pixel path elsewhere
    ((3, 5, 6, 70), 3, 100, "binary"),  # float64 chunks of 32 features: 3 full + a tail of 4
    ((2, 7, 4, 19), 3, 64, "pooled"),
    ((4, 3, 3, 3), 3, 70, "signed"),  # the first layer's 3 signed input channels
    ((2, 1, 1, 33), 3, 40, "binary"),  # 1×1 map: only the centre tap is inside
    ((2, 2, 2, 17), 3, 9, "pooled"),  # VGG11's 2×2 maps; D narrower than a vector
    ((9, 1, 1, 40), 1, 64, "binary"),  # a dense layer as a 1×1 convolution
    ((2, 4, 4, 8), 3, 16, "zeros"),
    ((2, 40, 37, 8), 3, 20, "pooled"),  # strips of 3x3 taps over a 40-row map, a feature tail
    ((3, 30, 9, 5), 3, 40, "signed"),
    # small maps in groups of images (16 of 4×4, 4 of 8×8): whole groups and a partial one
    ((37, 4, 4, 24), 3, 40, "binary"),
    ((9, 8, 8, 20), 3, 36, "pooled"),
]


@pytest.mark.kernels
@pytest.mark.parametrize("by_channel", [False, True])
@pytest.mark.parametrize(("shape", "k", "features", "kind"), CASES)
def test_forward_and_filter_gradient_match_xla_in_float64(shape, k, features, kind, by_channel):
    rng = np.random.default_rng(shape[0] * 100 + features)
    with jax.enable_x64(True):
        x = jnp.asarray(sparse_input(rng, shape, kind))
        kernel = jnp.asarray(rng.normal(size=(k, k, shape[-1], features)))
        g = jnp.asarray(rng.normal(size=shape[:3] + (features,)))
        y = jax.jit(sparse_conv)(x, kernel)
        np.testing.assert_allclose(y, reference_conv(x, kernel), rtol=1e-12, atol=1e-12)
        dw = jax.jit(sparse_conv_filter_grad, static_argnums=3)(x, kernel, g, by_channel)
        _, vjp = jax.vjp(reference_conv, x, kernel)
        np.testing.assert_allclose(dw, vjp(g)[1], rtol=1e-12, atol=1e-12)
    assert y.dtype == jnp.float64 and dw.dtype == jnp.float64


@pytest.mark.parametrize(
    ("shape", "features"),
    [
        ((3, 5, 6, 70), 100),
        ((2, 7, 4, 19), 64),
        ((4, 3, 3, 3), 70),
        ((2, 1, 1, 33), 40),
        ((2, 13, 17, 64), 32),
    ],
)
@pytest.mark.kernels
def test_input_gradient_matches_xla_in_float64(shape, features):
    # channel tails (70 = 64 + 6, 19, 3, 33), 6-pixel blocks running on into the next row and
    # a last block past the image's end
    rng = np.random.default_rng(shape[2])
    with jax.enable_x64(True):
        x = jnp.zeros(shape)
        kernel = jnp.asarray(rng.normal(size=(3, 3, shape[-1], features)))
        g = jnp.asarray(rng.normal(size=shape[:3] + (features,)))
        dx = jax.jit(convolution.conv_input_grad)(g, kernel)
        (ref,) = jax.linear_transpose(lambda v: reference_conv(v, kernel), x)(g)
        np.testing.assert_allclose(dx, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.kernels
def test_filter_gradient_flushes_partial_sums_across_many_images():
    # 300 one-pixel images: the per-thread float partial sums are flushed into the double
    # totals many times; every flush must add, none may drop or double-count.
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        x = jnp.asarray(sparse_input(rng, (300, 1, 1, 20), "binary"))
        kernel = jnp.asarray(rng.normal(size=(1, 1, 20, 48)))
        g = jnp.asarray(rng.normal(size=(300, 1, 1, 48)))
        dw = sparse_conv_filter_grad(x, kernel, g)
        np.testing.assert_allclose(dw[0, 0], x[:, 0, 0].T @ g[:, 0, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.kernels
def test_float32_agrees_with_xla_to_float32_rounding():
    rng = np.random.default_rng(2)
    x = jnp.asarray(sparse_input(rng, (8, 16, 16, 64), "binary"), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 64, 128)) * 0.05, jnp.float32)
    g = jnp.asarray(rng.normal(size=(8, 16, 16, 128)), jnp.float32)
    y = sparse_conv(x, kernel)
    ref = reference_conv(x, kernel)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, ref, rtol=0, atol=2e-6 * float(jnp.max(jnp.abs(ref))))
    dw = sparse_conv_filter_grad(x, kernel, g)
    ref_dw = jax.vjp(reference_conv, x, kernel)[1](g)[1]
    np.testing.assert_allclose(dw, ref_dw, rtol=0, atol=2e-6 * float(jnp.max(jnp.abs(ref_dw))))


@pytest.mark.parametrize("use_kernels", [True, False])
def test_conv3x3_and_spike_dense_gradients_with_and_without_kernels(retrace, use_kernels):
    if not use_kernels:
        retrace(convolution.ffi, "available", lambda: False)
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x = jnp.asarray(sparse_input(rng, (4, 6, 17, 20), "binary"))  # blocks across rows
        kernel = jnp.asarray(rng.normal(size=(3, 3, 20, 24)))
        g = jnp.asarray(rng.normal(size=(4, 6, 17, 24)))
        ref = jax.grad(lambda x, k: jnp.sum(g * conv3x3_reference(x, k)), argnums=(0, 1))(x, kernel)
        np.testing.assert_allclose(conv3x3(x, kernel), conv3x3_reference(x, kernel), atol=1e-12)
        # the event-driven forward, then the dense one, compiled or XLA's; the input gradient
        # compiled or XLA's
        for rate, dense, input_grad in (
            (1.0, "kernel", "kernel"),
            (0.0, "kernel", "xla"),
            (0.0, "xla", "kernel"),
        ):
            retrace(
                choice,
                "TARGETS",
                targets_with(conv_rate=rate, dense_forward=dense, input_grad=input_grad),
            )
            np.testing.assert_allclose(
                jax.jit(conv3x3)(x, kernel), conv3x3_reference(x, kernel), atol=1e-12
            )
            ours = jax.jit(jax.grad(lambda x, k: jnp.sum(g * conv3x3(x, k)), argnums=(0, 1)))(
                x, kernel
            )
            for a, b in zip(ours, ref, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

        # a 4×4 map: the filter gradient event-driven, then im2col's matmul
        x4, g4 = x[:, :4, :4], g[:, :4, :4]
        ref = jax.grad(lambda x, k: jnp.sum(g4 * conv3x3_reference(x, k)), argnums=(0, 1))(
            x4, kernel
        )
        for rate in (1.0, 0.0):
            retrace(choice, "DENSE_FILTER_GRAD_RATE", rate)
            ours = jax.jit(jax.grad(lambda x, k: jnp.sum(g4 * conv3x3(x, k)), argnums=(0, 1)))(
                x4, kernel
            )
            for a, b in zip(ours, ref, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

        s = jnp.asarray(sparse_input(rng, (5, 3, 32), "binary"))  # [T, B, F]
        w = jnp.asarray(rng.normal(size=(32, 16)))
        h = jnp.asarray(rng.normal(size=(5, 3, 16)))
        np.testing.assert_allclose(spike_dense(s, w), s @ w, rtol=1e-12, atol=1e-12)
        ref = jax.grad(lambda s, w: jnp.sum(h * (s @ w)), argnums=(0, 1))(s, w)
        # a small layer (event-driven), then a large one: XLA's matmul for the weight gradient,
        # and forward event-driven or XLA's matmul as the inputs' density says
        for limit, rate in ((1 << 20, 1.0), (0, 1.0), (0, 0.0)):
            retrace(choice, "SPARSE_DENSE_GRAD_BYTES", limit)
            retrace(choice, "DENSE_MATMUL_RATE", rate)
            np.testing.assert_allclose(jax.jit(spike_dense)(s, w), s @ w, rtol=1e-12, atol=1e-12)
            ours = jax.grad(lambda s, w: jnp.sum(h * spike_dense(s, w)), argnums=(0, 1))(s, w)
            for a, b in zip(ours, ref, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dense_forward", ["kernel", "xla"])
def test_the_forward_chooses_dense_or_event_driven_by_the_inputs_density(retrace, dense_forward):
    """Inputs denser than the target's conv_rate take the dense forward the target names (the
    compiled one or XLA's convolution), sparser ones the event-driven one: replacing one by a
    function that returns NaN shows which ran."""
    retrace(choice, "TARGETS", targets_with(conv_rate=0.5, dense_forward=dense_forward))
    rng = np.random.default_rng(5)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 8, 16)), jnp.float32)
    sparse = jnp.asarray(rng.random((2, 6, 6, 8)) < 0.2, jnp.float32)
    dense = jnp.asarray(rng.random((2, 6, 6, 8)) < 0.8, jnp.float32)

    def nan(x, k):
        return jnp.full(x.shape[:3] + k.shape[3:], jnp.nan, x.dtype)

    dense_name = {"kernel": "conv3x3_dense", "xla": "conv3x3_reference"}[dense_forward]
    originals = {name: getattr(convolution, name) for name in ("sparse_conv", dense_name)}
    for x, used, unused in (
        (sparse, "sparse_conv", dense_name),
        (dense, dense_name, "sparse_conv"),
    ):
        retrace(convolution, used, originals[used])
        retrace(convolution, unused, nan)
        np.testing.assert_allclose(
            jax.jit(conv3x3)(x, kernel), reference_conv(x, kernel), atol=1e-4
        )
        retrace(convolution, unused, originals[unused])
        retrace(convolution, used, nan)
        assert bool(jnp.isnan(jax.jit(conv3x3)(x, kernel)).all())


@pytest.mark.parametrize("input_grad", ["kernel", "xla"])
def test_the_input_gradient_is_the_one_the_target_chooses(retrace, input_grad):
    """The dense input gradient is the compiled kernel or XLA's, as the target's choices say:
    with the compiled kernel replaced by NaN, only the XLA choice is finite (and right)."""
    retrace(choice, "TARGETS", targets_with(input_grad=input_grad))
    retrace(
        convolution,
        "conv_input_grad",
        lambda g, k: jnp.full(g.shape[:3] + k.shape[2:3], jnp.nan, g.dtype),
    )
    rng = np.random.default_rng(8)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 8, 16)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(2, 6, 6, 16)), jnp.float32)
    dx = jax.jit(convolution.dense_input_grad)(g, kernel)
    if input_grad == "kernel":
        assert bool(jnp.isnan(dx).all())
    else:
        x = jnp.zeros((2, 6, 6, 8), jnp.float32)
        np.testing.assert_allclose(dx, jax.vjp(reference_conv, x, kernel)[1](g)[0], atol=1e-4)


@pytest.mark.parametrize("side", [2, 4, 6])
def test_xlas_input_gradient_is_the_convolutions_transpose(side):
    """XLA's dense input gradient, im2col's transpose on maps of at most SMALL_INPUT_GRAD_MAP
    pixels and the flipped forward convolution above, is the VJP of XLA's own convolution."""
    assert (side * side <= choice.SMALL_INPUT_GRAD_MAP) == (side < 6)
    rng = np.random.default_rng(side)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 8, 16)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(3, side, side, 16)), jnp.float32)
    x = jnp.zeros((3, side, side, 8), jnp.float32)
    np.testing.assert_allclose(
        jax.jit(convolution.xla_input_grad)(g, kernel),
        jax.vjp(reference_conv, x, kernel)[1](g)[0],
        atol=1e-4,
    )


def test_a_small_maps_filter_gradient_chooses_matmul_or_event_driven(retrace):
    """On a map of at most SMALL_FILTER_GRAD_MAP pixels, inputs denser than
    DENSE_FILTER_GRAD_RATE take im2col's matmul for the filter gradient, sparser ones the
    event-driven kernel (the one not chosen is replaced by NaN)."""
    rng = np.random.default_rng(6)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 8, 16)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(3, 4, 4, 16)), jnp.float32)

    def nan(x, k, g):
        return jnp.full(k.shape, jnp.nan, k.dtype)

    def filter_grad(x):
        return jax.jit(jax.grad(lambda k: jnp.sum(g * conv3x3(x, k))))(kernel)

    names = ("sparse_conv_filter_grad", "_im2col_filter_grad")
    originals = {name: getattr(convolution, name) for name in names}
    for rate, used in ((0.2, "sparse_conv_filter_grad"), (0.8, "_im2col_filter_grad")):
        x = jnp.asarray(rng.random((3, 4, 4, 8)) < rate, jnp.float32)
        ref = jax.grad(lambda k, x=x: jnp.sum(g * reference_conv(x, k)))(kernel)
        (unused,) = set(names) - {used}
        retrace(convolution, used, originals[used])
        retrace(convolution, unused, nan)
        np.testing.assert_allclose(filter_grad(x), ref, atol=1e-4)
        retrace(convolution, unused, originals[unused])
        retrace(convolution, used, nan)
        assert bool(jnp.isnan(filter_grad(x)).all())


def test_the_network_runs_the_kernels_on_cpu():
    # The compiled programs call the custom targets: the fused layer in evaluation, the
    # event-driven forward and filter gradient in training.
    import bntt_jax as bj

    cfg = bj.NetworkConfig(arch="vgg9", num_steps=2, img_size=8)
    net = bj.init(jax.random.key(0), cfg)
    spikes = jnp.zeros((2, 2, 8, 8, 3), jnp.float32)
    hlo = jax.jit(lambda n, s: bj.simulate(n, s).logits).lower(net, spikes).as_text()
    assert "bntt_event_conv_lif_eval" in hlo

    def loss(params):
        out = bj.simulate(net.replace(params=params), spikes, train=True)
        return jnp.sum(out.logits)

    hlo = jax.jit(jax.grad(loss)).lower(net.params).as_text()
    assert "bntt_event_conv_forward" in hlo and "bntt_event_conv_filter_grad" in hlo


def test_a_failing_build_warns_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match="failed"):
        ffi.load("false")  # a "compiler" that always exits 1
    assert not list(tmp_path.glob("*.so")), "a failed build must leave no library behind"

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    ffi.available.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert ffi.available() is False
        assert any("pure-XLA" in str(w.message) for w in caught)
    finally:
        monkeypatch.delenv("CXX")
        monkeypatch.delenv("BNTT_JAX_CACHE")
        ffi.available.cache_clear()
    assert ffi.available()


@pytest.mark.parametrize("variable", ["BNTT_JAX_FFI", "BNTT_JAX_KERNELS"])  # and its former name
def test_the_compiled_code_can_be_switched_off(monkeypatch, variable):
    monkeypatch.setenv(variable, "0")
    ffi.available.cache_clear()
    try:
        assert ffi.available() is False
    finally:
        monkeypatch.delenv(variable)
        ffi.available.cache_clear()
    assert ffi.available()


def test_bad_inputs_get_clear_errors():
    x = jnp.zeros((2, 4, 4, 3), jnp.float32)
    with pytest.raises(ValueError, match="odd k"):
        sparse_conv(x, jnp.zeros((2, 2, 3, 8), jnp.float32))
    with pytest.raises(ValueError, match="3 input channels but x has 5"):
        sparse_conv(jnp.zeros((2, 4, 4, 5)), jnp.zeros((3, 3, 3, 8)))
    with pytest.raises(TypeError, match="float32 or float64"):
        sparse_conv(x.astype(jnp.bfloat16), jnp.zeros((3, 3, 3, 8)))
    with pytest.raises(ValueError, match="output shape"):
        sparse_conv_filter_grad(x, jnp.zeros((3, 3, 3, 8)), jnp.zeros((2, 4, 4, 7)))


def test_one_guard_decides_where_the_compiled_code_runs(monkeypatch):
    """``ffi.runs``: float32/float64 on a usable build; switched off, every op that a direct
    call would need it for refuses with the same message naming what falls back."""
    assert ffi.runs(jnp.zeros(3, jnp.float32))
    with jax.enable_x64(True):
        assert ffi.runs(jnp.zeros(3, jnp.float64))
    assert not ffi.runs(jnp.zeros(3, jnp.bfloat16)) and not ffi.runs(jnp.zeros(3, jnp.int32))
    monkeypatch.setenv("BNTT_JAX_FFI", "0")
    ffi.available.cache_clear()
    try:
        assert not ffi.runs(jnp.zeros(3, jnp.float32))
        with pytest.raises(
            RuntimeError,
            match=r"sparse_conv\(\) needs the compiled CPU code.*"
            "conv3x3 and spike_dense fall back by themselves",
        ):
            sparse_conv(jnp.zeros((2, 4, 4, 3)), jnp.zeros((3, 3, 3, 8)))
    finally:
        monkeypatch.delenv("BNTT_JAX_FFI")
        ffi.available.cache_clear()
    assert ffi.runs(jnp.zeros(3, jnp.float32))


KILLED_BUILD = """
import sys
from pathlib import Path
from bntt_jax.cpu import build
build.build(sys.argv[1], "native", Path(sys.argv[2]))
"""


def test_a_killed_build_leaves_no_compiler_and_its_partial_file_goes(tmp_path):
    """``kill -9`` of a process while its compiler runs: the compiler dies with it (it would
    otherwise run on, orphaned), and the next build deletes the partial library."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "compiler.pid"
    slow = tmp_path / "slow-compiler"
    slow.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nsleep 60\n")
    slow.chmod(0o755)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(slow), str(cache / "x.so")])
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline and proc.poll() is None, "the build never started"
        time.sleep(0.05)
    compiler = int(pid_file.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{compiler}") and "Z" not in _state(compiler):
        assert time.monotonic() < deadline, "the compiler outlived the killed build"
        time.sleep(0.05)
    (partial,) = cache.glob(".build-*.so")  # the kill left it: no `finally` runs on SIGKILL
    build.build("true", "native", cache / "y.so")  # a "compiler" that writes nothing
    assert not partial.exists() and (cache / "y.so").exists()
    assert not list(cache.glob(".build-*.so"))


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"  # gone


def test_an_unwritable_cache_is_named_with_its_fix(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build.tempfile, "mkstemp", refuse)
    with pytest.raises(build.CacheNotWritableError, match=r"cache folder .*cache cannot be"):
        build.build("g++", "native", tmp_path / "cache" / "x.so")
    monkeypatch.setattr(ffi, "library_path", lambda c, t: tmp_path / "cache" / "absent.so")
    ffi.available.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert ffi.available() is False
        (message,) = [str(w.message) for w in caught]
        assert "make it writable, or set BNTT_JAX_CACHE" in message
        assert "BNTT_JAX_FFI=0" not in message
    finally:
        monkeypatch.undo()
        ffi.available.cache_clear()
    assert ffi.available()
