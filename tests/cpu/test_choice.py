"""Which form computes each CPU operation (``bntt_jax.cpu.choice``), and that nothing else
in the package chooses."""

import ast
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bntt_jax
from bntt_jax.cpu import choice, ffi
from bntt_jax.cpu.choice import Pick


@pytest.fixture
def width(monkeypatch):
    """Pretend the compiled code was built for ``vector_bytes`` (64, 32 or 16) and runs."""

    def set_width(vector_bytes):
        monkeypatch.setattr(ffi, "target", lambda: {"vector_bytes": vector_bytes})
        monkeypatch.setattr(ffi, "runs", lambda x: str(x.dtype) in ffi.DTYPES)

    return set_width


def maps(side, c=8, dtype=jnp.float32):
    return jax.ShapeDtypeStruct((4, side, side, c), dtype)


def test_a_convolution_is_chosen_by_target_map_size_and_dtype(width):
    # AVX-512: the compiled dense forward on every map above 2×2, event-driven below 60 %
    width(64)
    assert choice.conv_forward(maps(32)) == Pick("event", "kernel", 0.6)
    assert choice.conv_forward(maps(3)) == Pick("event", "kernel", 0.6)  # 9 px > 4
    assert choice.conv_forward(maps(2)) == Pick("event")  # ≤ 4 px: event-driven alone
    assert choice.conv_input_grad(maps(4)) == Pick("kernel")
    assert choice.conv_input_grad(maps(2)) == Pick("xla")  # one matmul beats the blocks
    # AVX2: the classes by the smallest map of each (1024, 256, 64, 0 px)
    width(32)
    assert choice.conv_forward(maps(32)) == Pick("event", "kernel", 0.55)
    assert choice.conv_forward(maps(16)) == Pick("event", "kernel", 0.6)
    assert choice.conv_forward(maps(8)) == Pick("event", "xla", 0.55)
    assert choice.conv_forward(maps(7)) == Pick("event", "xla", 0.5)  # 49 px < 64
    assert choice.conv_input_grad(maps(8)) == Pick("kernel")
    assert choice.conv_input_grad(maps(4)) == Pick("xla")
    assert choice.conv_input_grad_on_support(maps(4)) == Pick("support", "dense", 0.45)
    # SSE / NEON: XLA's dense forms everywhere
    width(16)
    assert choice.conv_forward(maps(16)) == Pick("event", "xla", 0.27)
    assert choice.conv_input_grad(maps(32)) == Pick("xla")
    assert choice.conv_input_grad_on_support(maps(8)) == Pick("support", "dense", 0.4)
    assert choice.eval_conv(jax.ShapeDtypeStruct((2, 4, 8, 8, 3), jnp.float32)) == Pick(
        "fused", "xla", 0.3
    )
    width(64)
    assert choice.eval_conv(jax.ShapeDtypeStruct((2, 4, 8, 8, 3), jnp.float32)) == Pick("fused")


def test_the_fixed_rules_hold_on_every_target(width):
    for vector_bytes in (64, 32, 16):
        width(vector_bytes)
        # the filter gradient: im2col's matmul above 40 % only on maps of at most 16 px
        assert choice.conv_filter_grad(maps(4)) == Pick("event", "im2col", 0.4)
        assert choice.conv_filter_grad(maps(5)) == Pick("event")
        # XLA's input gradient: im2col's transpose on maps of at most 16 px
        assert choice.xla_input_grad(maps(4)) == Pick("im2col")
        assert choice.xla_input_grad(maps(5)) == Pick("xla")
        assert choice.conv_input_grad_on_support(maps(2)) is None  # the op's own gradient
        # dense layers: the readout (10 outputs) stays XLA's; 256 × 256 float32 (256 KiB)
        # event-driven both ways; 4096 × 1024 (16 MiB) XLA's weight gradient and a forward
        # that turns to XLA's matmul above 20 %; 512 × 512 float64 is 2 MiB, large too
        x32 = jax.ShapeDtypeStruct((5, 3, 256), jnp.float32)
        for kernel, forward, weight_grad in (
            ((256, 10), Pick("xla"), None),
            ((256, 256), Pick("event"), Pick("event")),
            ((4096, 1024), Pick("event", "xla", 0.2), Pick("xla")),
        ):
            k = jax.ShapeDtypeStruct(kernel, jnp.float32)
            assert choice.dense_compiled(x32, k) == (weight_grad is not None)
            assert choice.dense_forward(x32, k) == forward
            if weight_grad is not None:
                assert choice.dense_weight_grad(x32, k) == weight_grad
        x64 = jax.ShapeDtypeStruct((5, 3, 512), jnp.float64)
        assert choice.dense_weight_grad(x64, jax.ShapeDtypeStruct((512, 512), jnp.float64)) == (
            Pick("xla")
        )


def test_without_the_compiled_code_every_operation_is_xlas(width):
    width(64)
    bf16 = jnp.bfloat16  # no compiled kernel takes it
    assert choice.conv_forward(maps(8, dtype=bf16)) == Pick("xla")
    assert choice.conv_forward(maps(2, dtype=bf16)) == Pick("im2col")  # XLA's conv is slow there
    assert not choice.conv_compiled(maps(8, dtype=bf16))
    assert choice.conv_input_grad_on_support(maps(8, dtype=bf16)) is None
    x = jax.ShapeDtypeStruct((5, 3, 256), bf16)
    k = jax.ShapeDtypeStruct((256, 256), bf16)
    assert choice.dense_forward(x, k) == Pick("xla")
    assert choice.dense_input_grad_on_support(x, k) is None
    assert not choice.fused_layers(x)


def test_a_pick_runs_below_up_to_its_rate_and_above_beyond():
    forms = {"low": lambda v: v + 1, "high": lambda v: v - 1}
    pick = Pick("low", "high", 0.5)
    for fraction, expected in ((0.5, 2.0), (0.51, 0.0), (0.0, 2.0)):
        run = jax.jit(lambda v, f=fraction: pick.run(forms, lambda: jnp.float32(f), v))
        assert float(run(jnp.float32(1))) == expected

    def unmeasured():
        raise AssertionError("a single form measures nothing")

    assert float(Pick("high").run(forms, unmeasured, jnp.float32(1))) == 0.0


def test_the_nonzero_fraction_is_measured_on_about_64_images():
    x = np.zeros((128, 2, 2, 1), np.float32)
    x[::2] = 1  # every even image non-zero: the sample (every 2nd image) sees only those
    assert float(choice.nonzero_fraction(jnp.asarray(x))) == 1.0
    y = np.zeros((10, 2, 2, 1), np.float32)
    y[:, 0] = 1  # 10 images, all sampled: half of each image's elements
    assert float(choice.nonzero_fraction(jnp.asarray(y))) == 0.5


def _calls(path: Path) -> set[str]:
    """``module.function`` for every call of an attribute of a name in ``path``."""
    tree = ast.parse(path.read_text())
    return {
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }


def test_only_the_choice_asks_the_guard_or_branches_on_data():
    """The guard's questions (``ffi.runs``, ``ffi.usable``, ``ffi.available``) and the
    data-dependent branch between forms (``lax.cond``) appear in ``cpu/choice.py`` alone
    (``ffi.py`` defines the guard); every other module asks the choice."""
    root = Path(bntt_jax.__file__).parent
    asked = {"ffi.runs", "ffi.usable", "ffi.available", "lax.cond"}
    found = {
        str(path.relative_to(root)): sorted(_calls(path) & asked)
        for path in sorted(root.rglob("*.py"))
        if path.name not in ("choice.py", "ffi.py") and _calls(path) & asked
    }
    assert found == {}
    assert {"ffi.runs", "ffi.usable", "lax.cond"} <= _calls(root / "cpu" / "choice.py")


def test_describe_names_every_map_class_of_the_build():
    text = choice.describe()
    if ffi.target() is None:
        assert "none" in text
        return
    assert text.count("3×3 conv on") == len(choice.target_choice().maps)
    assert "dense layers: input gradient on the support below" in text
