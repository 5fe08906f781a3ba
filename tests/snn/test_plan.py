"""Networks of your own as a layer plan (``arch='custom'``): the plan of a preset computes the
preset, the layer table counts neurons and FLOPs as Eq. 22–23 do by hand, and a bad plan
names its first bad word."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax.metrics import energy

VGG9_PLAN = "c64,c64,p,c128,c128,p,c256,c256,c256,p,f1024"


def test_the_vgg9_plan_is_the_vgg9_preset():
    preset = bj.NetworkConfig(arch="vgg9", num_steps=3, img_size=8, in_channels=2)
    custom = bj.NetworkConfig(
        arch="custom", plan=VGG9_PLAN, num_steps=3, img_size=8, in_channels=2, leak=0.95
    )
    assert custom.layers == preset.layers and custom.readout_name == "fc2"
    assert custom.plan == tuple(VGG9_PLAN.split(","))
    a, b = bj.init(4, preset), bj.init(4, custom)  # one draw over the same tree
    x = jax.random.normal(jax.random.key(0), (3, 8, 8, 2)) * 1.5
    spikes = bj.poisson_encode(jax.random.key(1), x, 3)
    np.testing.assert_array_equal(bj.simulate(a, spikes).logits, bj.simulate(b, spikes).logits)


def test_a_dense_plan_takes_feature_vectors():
    cfg = bj.NetworkConfig(arch="custom", plan=("f32", "f16"), in_features=7, num_classes=3)
    assert cfg.input_shape == (7,) and not cfg.takes_images
    assert [(s.name, s.kind, s.features) for s in cfg.layers] == [
        ("fc1", "fc", 32),
        ("fc2", "fc", 16),
    ]
    out = bj.simulate(bj.init(0, cfg), np.ones((cfg.num_steps, 2, 7), np.float32))
    assert out.logits.shape == (2, 3)


def test_layer_table_by_hand():
    # 8×8×1 input: conv c8 (8×8 output, 512 neurons, 3²·8²·1·8 = 4,608 FLOPs), 2×2 pool,
    # dense f16 from 8·4·4 = 128 inputs (2,048 FLOPs), readout 16 → 10 (160 FLOPs).
    cfg = bj.NetworkConfig(arch="custom", plan="c8,p,f16", img_size=8, in_channels=1)
    rows = energy.layer_table(cfg)
    assert [
        (r["layer"], r["kind"], r["output"], r["pool"], r["neurons"], r["flops"]) for r in rows
    ] == [
        ("conv1", "conv", [8, 8, 8], "avg2", 512, 4608),
        ("fc1", "fc", [16], None, 16, 2048),
        ("fc2", "readout", [10], None, 0, 160),
    ]


BAD_PLANS = [
    (dict(arch="custom"), "arch='custom' needs a plan"),
    (dict(arch="custom", plan="c8,x3"), r"word 2 \('x3'\).*unknown word"),
    (dict(arch="custom", plan="p,c8"), r"word 1 \('p'\).*a pool follows a convolution"),
    (dict(arch="custom", plan="c8,p,p"), r"word 3 \('p'\).*a pool follows a convolution"),
    (dict(arch="custom", plan="f8,c8"), "convolutions come before the dense layers"),
    (dict(arch="custom", plan="c8,g,c8"), "nothing convolves after a global pool"),
    (dict(arch="custom", plan=""), "unknown word"),
    (dict(arch="custom", plan="c0"), r"word 1 \('c0'\).*a layer has at least 1 channel, e.g. c64"),
    (dict(arch="custom", plan="c8,f0"), r"word 2 \('f0'\).*at least 1 neuron"),
    (dict(arch="custom", plan=",".join(["f8"] * 257)), "the plan has 257 words; at most 256"),
    (dict(arch="vgg9", plan="c8"), "plan applies to arch='custom' only"),
    (dict(arch="custom", plan="c8,p,p2", img_size=6), "unknown word"),
    (dict(arch="custom", plan="c8,p,c8,p", img_size=3), "img_size must be at least 4"),
    (dict(arch="custom", plan="f8", img_size=8), "img_size applies to networks of images"),
]


@pytest.mark.parametrize("kw,match", BAD_PLANS)
def test_a_bad_plan_names_the_problem(kw, match):
    with pytest.raises(bj.NetworkConfigError, match=match):
        bj.NetworkConfig(**kw)


def test_a_plan_pools_odd_sizes_by_flooring():
    # 42×42 → 21×21 → 10×10, as PyTorch's AvgPool2d(2): the last odd row and column dropped
    cfg = bj.NetworkConfig(arch="custom", plan="c4,p,c4,p,f8", img_size=42, in_channels=1)
    assert [s.size for s in cfg.layers[:2]] == [42, 21]
    assert energy.layer_table(cfg)[2]["flops"] == 4 * 10 * 10 * 8  # fc1 reads 4·10·10
    x = np.arange(9.0).reshape(1, 1, 3, 3, 1)
    np.testing.assert_array_equal(bj.avg_pool2(x)[0, 0, :, :, 0], [[(0 + 1 + 3 + 4) / 4]])
