"""Thin Flax modules of the TTFS surrogate model (Park & Yoon, Sec. 3–5);
:mod:`bntt_jax.ttfs.functional` is the functional API over them (``init``, ``forward``).

They hold parameters and statistics and call the pure functions of :mod:`.kernel` and
:mod:`.relaxation`. A layer is conv or dense → batch norm (γ and β) → the temporal kernel's
encoder and decoder (Eq. 5), which replaces the ReLU; stochastic relaxation (Sec. 4) comes in
as an input. The temporal-kernel-aware batch norm (TB, Sec. 5) normalises and returns its
P_TB (Eq. 14) for the ẑ_m of its layer's kernel.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from bntt_jax.ttfs.config import TTFSConfig, TTFSLayer
from bntt_jax.ttfs.kernel import decode, encode, representation_range
from bntt_jax.ttfs.losses import tb_probability
from bntt_jax.ttfs.relaxation import relax

#: Kernel initialiser: Glorot uniform, the Keras default of the authors' code.
KERNEL_INIT = nn.initializers.glorot_uniform()


class TemporalKernel(nn.Module):
    """One layer's temporal kernel: trainable scalars ``tau`` (τ) and ``t_d`` (t_d), Eq. 3.
    Calling it returns the decoded activation ẑ = g(f(z)) and the spike times t (Eq. 5);
    :meth:`range` returns its representation range (ẑ_m, ẑ_M) (Sec. 4)."""

    config: TTFSConfig

    def setup(self) -> None:
        c = self.config
        self.tau = self.param("tau", nn.initializers.constant(c.tau0), ())
        self.t_d = self.param("t_d", nn.initializers.constant(c.t_d0), ())

    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        c = self.config
        tau, t_d = self.tau.astype(z.dtype), self.t_d.astype(z.dtype)
        t = encode(z, tau, t_d, c.time_window, c.theta0, c.rounding)
        return decode(t, tau, t_d, c.time_window), t

    def range(self) -> tuple[jax.Array, jax.Array]:
        return representation_range(self.tau, self.t_d, self.config.time_window)


class TBBatchNorm(nn.Module):
    """Temporal-kernel-aware batch norm (TB, Sec. 5): a batch norm with γ (``scale``) and β
    (``bias``) over all axes but the channels, which also returns P_TB(γ, β) of Eq. 14 summed
    over its channels for the ẑ_m of its layer's kernel (a constant: TB moves γ and β only).

    Running statistics follow Keras/Flax: ``r ← m·r + (1 − m)·batch`` with the biased batch
    variance; evaluation uses them. ``(y − μ)·γ/√(σ² + ε) + β`` is what
    :func:`bntt_jax.ttfs.fold_batch_norm` folds into the weights.
    """

    momentum: float = 0.99
    epsilon: float = 1e-3

    @nn.compact
    def __call__(
        self, y: jax.Array, z_min: jax.Array, *, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        features = y.shape[-1]
        gamma = self.param("scale", nn.initializers.ones, (features,))
        beta = self.param("bias", nn.initializers.zeros, (features,))
        mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        if train:
            axes = tuple(range(y.ndim - 1))
            mu, sigma2 = jnp.mean(y, axes), jnp.var(y, axes)
            if not self.is_initializing():
                m = self.momentum
                mean.value = m * mean.value + (1 - m) * mu.astype(mean.value.dtype)
                var.value = m * var.value + (1 - m) * sigma2.astype(var.value.dtype)
        else:
            mu, sigma2 = mean.value.astype(y.dtype), var.value.astype(y.dtype)
        z = (y - mu) * (gamma.astype(y.dtype) * jax.lax.rsqrt(sigma2 + self.epsilon))
        z = z + beta.astype(y.dtype)
        return z, jnp.sum(tb_probability(gamma, beta, jax.lax.stop_gradient(z_min)))


class TTFSBlock(nn.Module):
    """conv (3×3) or dense → TB batch norm (γ, β) → temporal kernel, or ReLU when ``relaxed``
    (SR, Sec. 4) → dropout → 2×2 pooling. Returns ``(activation, z, t, P_TB)``."""

    config: TTFSConfig
    spec: TTFSLayer

    @nn.compact
    def __call__(
        self, x: jax.Array, *, train: bool, relaxed: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        c, spec = self.config, self.spec
        if spec.kind == "conv":
            y = nn.Conv(
                spec.features,
                (3, 3),
                padding=1,
                use_bias=c.use_bias,
                kernel_init=KERNEL_INIT,
                name="conv",
            )(x)
        else:
            y = nn.Dense(spec.features, use_bias=c.use_bias, kernel_init=KERNEL_INIT, name="dense")(
                x
            )
        kernel = TemporalKernel(c, name="temporal")
        z_min, _ = kernel.range()
        norm = TBBatchNorm(c.bn_momentum, c.bn_eps, name="bn")
        z, p_tb = norm(y, z_min, train=train)
        z_hat, t = kernel(z)
        out = z_hat if relaxed is None else relax(z, z_hat, relaxed)
        if c.dropout:
            out = nn.Dropout(c.dropout, deterministic=not train)(out)
        if spec.pool:
            out = pool(out, c.pooling)
        return out, z, t, p_tb


def pool(x: jax.Array, kind: str) -> jax.Array:
    """2×2 pooling, stride 2, on decoded activations ``[B, H, W, C]``. Max pooling of ẑ = κ(t)
    is the kernel of the earliest spike (κ decreases)."""
    if kind == "max":
        return nn.max_pool(x, (2, 2), strides=(2, 2))
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


class TTFSNetwork(nn.Module):
    """The surrogate DNN (Sec. 3): VGG-16 or an MLP whose hidden layers are :class:`TTFSBlock`s
    and whose output layer is a dense layer without kernel; its pre-activation is the logits
    (the spiking network's output layer only integrates).

    ``__call__(x, train=..., relaxed=None)`` returns ``(logits, aux)`` with ``aux['z']`` and
    ``aux['t']`` the pre-activations and spike times of every kernel (``'input'`` first with
    ``input_coding='ttfs'``; it has z = the image) and ``aux['p_tb']`` each layer's P_TB.
    ``relaxed``: a ``[layers]`` bool vector, the SR draw
    (:func:`bntt_jax.ttfs.relaxation.relaxed_layers`); ``None`` relaxes nothing.
    """

    config: TTFSConfig

    @nn.compact
    def __call__(
        self, x: jax.Array, *, train: bool = False, relaxed: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, Any]]:
        c = self.config
        zs: dict[str, jax.Array] = {}
        ts: dict[str, jax.Array] = {}
        p_tb: dict[str, jax.Array] = {}
        if c.input_coding == "ttfs":
            zs["input"] = x
            x, ts["input"] = TemporalKernel(c, name="input")(x)
        for i, spec in enumerate(c.layers):
            if spec.kind == "dense" and x.ndim > 2:
                x = x.reshape(x.shape[0], -1)
            r = None if relaxed is None else relaxed[i]
            x, zs[spec.name], ts[spec.name], p_tb[spec.name] = TTFSBlock(c, spec, name=spec.name)(
                x, train=train, relaxed=r
            )
        x = x.reshape(x.shape[0], -1)
        logits = nn.Dense(c.num_classes, use_bias=c.use_bias, kernel_init=KERNEL_INIT, name="out")(
            x
        )
        return logits, {"z": zs, "t": ts, "p_tb": p_tb}


def kernel_parameters(params: dict[str, Any], config: TTFSConfig) -> dict[str, tuple[Any, Any]]:
    """``{kernel name: (τ, t_d)}`` from a params tree, in network order."""
    out = {}
    for name in config.kernel_names:
        p = params[name] if name == "input" else params[name]["temporal"]
        out[name] = (p["tau"], p["t_d"])
    return out


def batch_norm_parameters(
    params: dict[str, Any], config: TTFSConfig
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``{layer: (γ, β)}`` of every kernel layer's batch norm, in network order."""
    return {
        s.name: (params[s.name]["bn"]["scale"], params[s.name]["bn"]["bias"]) for s in config.layers
    }


def zeros_input(config: TTFSConfig, batch: int = 1, dtype: Any = jnp.float32) -> jax.Array:
    return jnp.zeros((batch, *config.input_shape), dtype)
