"""The γ-based early-exit rule (BNTT paper, Sec. 3.4, Fig. 3 and 6) on hand-made γᵗ: the
paper's absolute threshold, our relative one, the threshold sweep, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax.early_exit import exit_step_from_means

# Two layers over T = 6: the first peaks early, the second later and lower (Fig. 3's shape).
MEANS = np.array(
    [
        [0.9, 0.7, 0.30, 0.12, 0.05, 0.01],
        [0.2, 0.4, 0.45, 0.30, 0.08, 0.02],
    ]
)


@pytest.mark.parametrize(
    "threshold,relative,step",
    [
        (0.1, False, 4),  # t = 4: 0.12 and 0.30 ≥ 0.1; from t = 5 on both are below
        (0.3, False, 4),  # 0.30 ≥ 0.3 at t = 4 (layer 2)
        (0.31, False, 3),
        (0.5, False, 2),  # only layer 1 reaches it, at t = 1..2
        (0.95, False, 1),  # never reached: exit after the first step
        (0.0, False, 6),  # everything is ≥ 0
        # relative: layer 1 against 0.9·f, layer 2 against 0.45·f
        (0.5, True, 4),  # layer 2: 0.30 ≥ 0.225 at t = 4, 0.08 < 0.225 after
        (0.7, True, 3),  # layer 1 against 0.63 (t = 1, 2), layer 2 against 0.315 (t = 2, 3)
    ],
)
def test_exit_rule_on_hand_made_gamma(threshold, relative, step):
    assert exit_step_from_means(MEANS, threshold, relative) == step


def test_relative_rule_exits_where_the_absolute_one_cannot():
    # γᵗ that stay near their initial 1 (a short schedule): no absolute threshold below 0.8
    # exits early, the relative rule still sees the fall
    flat = np.array([[1.0, 0.98, 0.95, 0.9, 0.85, 0.82], [0.99, 0.97, 0.93, 0.88, 0.84, 0.8]])
    assert exit_step_from_means(flat, 0.1) == exit_step_from_means(flat, 0.5) == 6
    assert exit_step_from_means(flat, 0.9, relative=True) == 4  # 0.9 ≥ 0.9, 0.85 < 0.9


def test_early_exit_and_sweep_read_the_networks_gamma():
    net = bj.init(0, arch="mlp", in_features=4, hidden=(3, 2), num_classes=2, num_steps=6)
    params = dict(net.params)
    for name, row in zip(("norm_fc1", "norm_fc2"), MEANS, strict=True):
        channels = params[name]["gamma_t"].shape[1]
        # per-channel values whose channel mean is the row: ±0.01 around it
        spread = np.linspace(-0.01, 0.01, channels)[None, :]
        params[name] = {**params[name], "gamma_t": np.asarray(row)[:, None] + spread}
    net = net.replace(params=params)
    np.testing.assert_allclose(np.stack(list(bj.gamma_means(net).values())), MEANS, atol=1e-6)
    assert bj.early_exit_step(net, 0.1) == 4
    assert bj.early_exit_step(net, 0.5, relative=True) == 4
    assert bj.exit_sweep(net, [0.1, 0.31, 0.5, 0.95]) == {0.1: 4, 0.31: 3, 0.5: 2, 0.95: 1}


def test_bad_exit_input():
    with pytest.raises(ValueError, match=r"\[layers, T\]"):
        exit_step_from_means(np.ones(5), 0.1)
    with pytest.raises(ValueError, match="finite number >= 0"):
        exit_step_from_means(MEANS, -0.1)
    net = bj.init(
        0, arch="mlp", in_features=4, hidden=(3,), num_classes=2, num_steps=3, norm="none"
    )
    with pytest.raises(ValueError, match="needs BNTT's per-step γᵗ"):
        bj.early_exit_step(net)
