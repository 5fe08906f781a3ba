"""Training the TTFS surrogate (Eq. 9, Table 3): the step's terms and metrics, SR and the
kernels' start, the weight decay's mask. (That a TTFS MLP learns the digits and its spiking
network predicts what it predicts: tests/experiments/test_ttfs_runs.py, through the runner.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import ttfs
from bntt_jax.ttfs import train as tt
from bntt_jax.ttfs.losses import kernel_regularization, tb_penalty
from bntt_jax.ttfs.models import batch_norm_parameters, kernel_parameters


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], d.target[order]


def test_loss_is_eq9_and_metrics_are_reported():
    net = ttfs.init(0, arch="mlp", in_features=8, hidden=(16, 12))
    net = net.replace(params=jax.tree.map(lambda a: a * 1.1, net.params))  # τ ≠ τ_0 etc.
    state = tt.TrainState.create(net, tt.make_optimizer())
    x = jax.random.uniform(jax.random.key(1), (32, 8))
    y = jnp.arange(32) % 10
    step = jax.jit(functools.partial(tt.train_step, lambda_tr=0.5, lambda_tb=0.25))
    _, m = step(state, x, y, jax.random.key(0), 100)
    kernels = kernel_parameters(net.params, net.config)
    reg = kernel_regularization(
        [a for a, _ in kernels.values()], [b for _, b in kernels.values()], 10.0, 0.0
    )
    bn = batch_norm_parameters(net.params, net.config)
    z_mins = [ttfs.representation_range(*kernels[k], 32)[0] for k in bn]
    p_tb = tb_penalty([g for g, _ in bn.values()], [b for _, b in bn.values()], z_mins)
    assert float(m["reg_tr"]) == pytest.approx(float(reg), rel=1e-6)
    assert float(m["reg_tr"]) == pytest.approx(3 * 1.0**2, rel=1e-5)  # τ = 11 in 3 kernels
    assert float(m["p_tb"]) == pytest.approx(float(p_tb), rel=1e-6)
    assert float(m["loss"]) == pytest.approx(
        float(m["loss_ce"]) + 0.5 * float(reg) - 0.25 * float(p_tb), rel=1e-5
    )
    assert float(m["relaxed"]) == 0.0  # epoch 100 ≥ e_tar = 50
    for name in ("input", "fc1", "fc2"):
        for key in ("tau", "t_d", "z_min", "z_max", "error_max", "error_min", "error_precision"):
            assert f"{key}/{name}" in m
        assert 0 <= float(m[f"spikes/{name}"]) <= net.config.neurons_per_layer()[name]
    assert float(m["z_max/fc1"]) == pytest.approx(np.exp(1.1 * 0.0 / 11.0))
    assert bool(m["finite"].all()) and len(m["finite"]) == len(tt.finite_flag_names(net))


def test_sr_relaxes_early_and_kernels_can_wait():
    net = ttfs.init(0, arch="mlp", in_features=8, hidden=(16, 12))
    state = tt.TrainState.create(net, tt.make_optimizer())
    x = jax.random.uniform(jax.random.key(1), (16, 8))
    y = jnp.arange(16) % 10
    # epoch 0 with e_tar = 1000: p = 0.999, nearly every layer takes the ReLU path
    step = jax.jit(functools.partial(tt.train_step, target_epoch=1000, kernel_train_start=5))
    relaxed = [float(step(state, x, y, jax.random.key(i), 0)[1]["relaxed"]) for i in range(5)]
    assert np.mean(relaxed) > 0.8
    new, _ = step(state, x, y, jax.random.key(0), 0)
    for (tau0, td0), (tau1, td1) in zip(
        kernel_parameters(net.params, net.config).values(),
        kernel_parameters(new.net.params, net.config).values(),
        strict=True,
    ):
        assert float(tau0) == float(tau1) and float(td0) == float(td1)  # frozen before epoch 5
    # from epoch 5 on they train (without SR here, so that fc1's kernel is on the path)
    later, _ = jax.jit(functools.partial(tt.train_step, target_epoch=None, kernel_train_start=5))(
        state, x, y, jax.random.key(0), 5
    )
    assert float(later.net.params["fc1"]["temporal"]["tau"]) != 10.0


def test_weight_decay_reaches_kernels_only():
    mask = tt.weight_kernels(ttfs.init(0, arch="mlp", in_features=8, hidden=(4,)).params)
    assert mask["fc1"]["dense"]["kernel"] and mask["out"]["kernel"]
    assert not mask["fc1"]["dense"]["bias"] and not mask["fc1"]["bn"]["scale"]
    assert not mask["fc1"]["temporal"]["tau"] and not mask["input"]["t_d"]
