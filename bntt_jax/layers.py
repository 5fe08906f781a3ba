"""Linen layers for spiking networks of your own: the BNTT building blocks over ``[T, B, ...]``.

Every layer takes and returns **time-major** activations ``[T, B, ...]`` and runs
**layer-major**: a synaptic layer computes its input for all T steps at once (T folded into
the batch of the convolution or matmul), a normalisation normalises every step vectorised
over T, and only the LIF recurrence is scanned over time. Because layer l at step t reads
only the spikes of layer l−1 at step t, stacking them computes exactly the time-major loop
of the BNTT paper (Algorithm 1), re-ordered. :class:`bntt_jax.SpikingNetwork` (the VGG9,
VGG11 and MLP presets) is written from these layers; a network of your own is too::

    class Net(nn.Module):
        @nn.compact
        def __call__(self, spikes, train=False):          # [T, B, 28, 28, 1]
            x = SpikingConv(32, name="conv1")(spikes)
            x = TemporalNorm("bntt", num_steps=25, name="norm_conv1")(x, train)
            x = avg_pool2(LIF(leak=0.95)(x))
            x = LIF(leak=0.95)(TemporalNorm("bntt", 25)(SpikingDense(128)(x), train))
            return Readout(10)(x)[0]                        # logits [B, 10]

* :class:`SpikingConv` / :class:`SpikingDense` — the synaptic input ``W·o_t`` (Eq. 4/9),
  no bias, the authors' Xavier-uniform initialisation with gain 2; on CPU the convolution
  and the matmul are event-driven (they visit only the non-zero inputs, i.e. the spikes);
* :class:`TemporalNorm` — BNTT (Eq. 9: μᵗ, σᵗ, γᵗ per step) or another
  :data:`bntt_jax.NORMS` choice, with running statistics in ``batch_stats``. In training,
  ``TemporalNorm("bntt", 25)(x, True, fire=dict(leak=0.95, threshold=1.0, alpha=0.3))``
  returns the spikes of the LIF neurons after it instead, both fused into one pass each way
  on CPU (:func:`bntt_lif`): how the presets train;
* :class:`LIF` — Eq. 4 with leak λ, threshold θ, soft or hard reset and the triangular
  surrogate of Eq. 8 (its scale α and half-width as arguments);
* :class:`Readout` — the non-spiking accumulating readout (Eq. 5);
* :class:`PoissonEncoder` — signed Poisson rate coding (Appendix B) from the ``"poisson"``
  RNG stream; :func:`avg_pool2` and :func:`global_avg_pool` — the VGGs' pooling.

The TTFS layers (temporal kernel with its straight-through quantiser, temporal-kernel-aware
batch norm) are :class:`bntt_jax.ttfs.TemporalKernel` and :class:`bntt_jax.ttfs.TBBatchNorm`.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.constants import EPS, MOMENTUM, SURROGATE_ALPHA
from bntt_jax.cpu import choice
from bntt_jax.cpu.convolution import conv3x3, spike_dense
from bntt_jax.cpu.fused import bntt_lif_train
from bntt_jax.cpu.masked import conv3x3_on_support, spike_dense_on_support
from bntt_jax.encoding import POISSON_SCALE, poisson_encode
from bntt_jax.lif import lif_scan
from bntt_jax.norms import bntt_batch_stats, bntt_normalize, normalization
from bntt_jax.readout import readout_steps

#: The authors' ``xavier_uniform_(gain=2)``: variance scale gain² = 4, fan-average, uniform.
xavier_uniform_gain2 = nn.initializers.variance_scaling(4.0, "fan_avg", "uniform")


def _time_major(x: jax.Array, where: str, rank: int | None = None) -> None:
    if x.ndim < 3 or (rank is not None and x.ndim != rank):
        want = f"rank {rank}" if rank is not None else "rank ≥ 3"
        raise ValueError(
            f"{where}: expects time-major input [T, B, ...] ({want}), got shape {x.shape}; "
            "encode a batch [B, ...] first, e.g. with PoissonEncoder or poisson_encode."
        )


def fold_time(fn, x: jax.Array, *more: jax.Array, batch_major: bool | None = None) -> jax.Array:
    """Apply a per-sample ``fn`` to ``[T, B, ...]`` with T folded into the batch (``fn(x,
    *more)``: further ``[T, B, ...]`` arrays are folded alike).

    On one device the fold is time-major (a free reshape). With several devices the batch
    axis may be sharded, and a time-major fold would interleave the devices' rows, which
    XLA's SPMD partitioner can only handle by gathering the whole batch onto every device
    (and computing every convolution N times); so there (``batch_major``, default: more than
    one device) the fold is batch-major, one transpose each way, and each device convolves
    its own samples. Both orders compute the same values.
    """
    t, b = x.shape[:2]
    if batch_major is None:
        batch_major = jax.device_count() > 1
    if batch_major:
        y = fn(*(jnp.swapaxes(v, 0, 1).reshape((b * t,) + v.shape[2:]) for v in (x, *more)))
        return jnp.swapaxes(y.reshape((b, t) + y.shape[1:]), 0, 1)
    y = fn(*(v.reshape((t * b,) + v.shape[2:]) for v in (x, *more)))
    return y.reshape((t, b) + y.shape[1:])


def _check_support(where: str, x: jax.Array, support: tuple | None) -> None:
    if support is not None and support[0].shape != x.shape:
        raise ValueError(
            f"{where}: support's membrane must have the input's shape {x.shape}, got "
            f"{support[0].shape}; pass the membrane of the LIF layer that produced x."
        )


class SpikingConv(nn.Module):
    """3×3 convolution, stride 1, padding 1, no bias (the authors' ``Conv2d``) of every step:
    ``[T, B, H, W, C] -> [T, B, H, W, features]``; parameter ``kernel`` ``[3, 3, C, features]``
    (HWIO)."""

    features: int

    @nn.compact
    def __call__(
        self, x: jax.Array, support: tuple[jax.Array, float, float] | None = None
    ) -> jax.Array:
        """``support``: when ``x`` is the spikes of LIF neurons, ``(u, threshold, width)`` with
        their pre-reset membrane ``u`` (``x``'s shape; :func:`bntt_lif` with
        ``return_membrane``): the input gradient is then computed only where their surrogate
        (Eq. 8) is non-zero, and is zero elsewhere, where their backward multiplies it by zero
        (:func:`bntt_jax.cpu.masked.conv3x3_on_support`); the parameters' gradients are the
        same."""
        _time_major(x, "SpikingConv", rank=5)
        kernel = self.param(
            "kernel", xavier_uniform_gain2, (3, 3, x.shape[-1], self.features), jnp.float32
        )
        kernel = kernel.astype(x.dtype)
        if support is None:
            return fold_time(lambda v: conv3x3(v, kernel), x)
        _check_support("SpikingConv", x, support)
        membrane, threshold, width = support
        conv = functools.partial(conv3x3_on_support, threshold=threshold, width=width)
        return fold_time(lambda v, u: conv(v, kernel, u), x, membrane)


class SpikingDense(nn.Module):
    """Fully connected layer of every step, no bias (the authors' ``Linear(bias=False)``):
    ``[T, B, ...] -> [T, B, features]`` (the trailing axes are flattened); parameter
    ``kernel`` ``[in, features]``."""

    features: int

    @nn.compact
    def __call__(
        self, x: jax.Array, support: tuple[jax.Array, float, float] | None = None
    ) -> jax.Array:
        """``support``: as :class:`SpikingConv`'s (``membrane`` of ``x``'s shape)."""
        _time_major(x, "SpikingDense")
        _check_support("SpikingDense", x, support)
        kernel = self.param(
            "kernel", xavier_uniform_gain2, (math.prod(x.shape[2:]), self.features), jnp.float32
        )
        kernel = kernel.astype(x.dtype)
        x = x.reshape(x.shape[:2] + (-1,))
        if support is None:
            return spike_dense(x, kernel)
        membrane, threshold, width = support
        return spike_dense_on_support(x, kernel, membrane.reshape(x.shape), threshold, width)


class TemporalNorm(nn.Module):
    """Normalisation of ``[T, B, ..., C]`` synaptic input by the :mod:`bntt_jax.norms` object
    named ``norm`` (BNTT: ``gamma_t`` and running ``mean``/``var``, ``[num_steps, C]``; a call
    with T ≤ num_steps uses and updates rows ``0 … T−1`` only). ``train=True`` normalises with
    batch statistics and updates the running ones (apply with ``mutable=["batch_stats"]``)."""

    norm: str = "bntt"
    num_steps: int = 25
    eps: float = EPS
    momentum: float = MOMENTUM
    threshold: float = 1.0  # V_th, which tdBN scales to

    @nn.compact
    def __call__(
        self, x: jax.Array, train: bool, fire: dict[str, float] | None = None
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """The normalised ``x``; with ``fire`` (training only, a normalisation with
        ``fused_train``), the spikes of the LIF neurons after it instead (``fire``: their
        ``leak``, ``threshold``, ``alpha``, ``width``; with ``return_membrane=True`` also
        their membrane, ``(spikes, u)``, for the next layer's ``support``), fused with it on
        CPU."""
        norm = normalization(self.norm)
        if x.shape[0] > self.num_steps:
            raise ValueError(
                f"TemporalNorm: the input has T = {x.shape[0]} steps but the layer keeps "
                f"statistics for num_steps = {self.num_steps}; build it with "
                f"num_steps={x.shape[0]}."
            )
        if fire is None:
            return norm(self, x, train, self.num_steps, self.eps, self.momentum, self.threshold)
        if not train:
            raise ValueError(
                "TemporalNorm(fire=...) is for training (train=True); in evaluation call it "
                "without fire and apply LIF to its output."
            )
        if not norm.fused_train:
            raise ValueError(
                f"TemporalNorm(fire=...): the {norm.name!r} normalisation has no fused training "
                "forward; call it without fire and apply LIF to its output."
            )
        layer = functools.partial(bntt_lif, eps=self.eps, **fire)
        return norm.fire(self, x, self.num_steps, self.momentum, layer)


def bntt_lif_reference(
    y: jax.Array,
    gamma_t: jax.Array,
    *,
    eps: float,
    leak: float,
    threshold: float,
    alpha: float,
    width: float = 1.0,
    return_membrane: bool = False,
) -> tuple:
    """A training-mode BNTT layer after its synapses, as XLA composes it: the batch statistics
    of each step (Algorithm 1, lines 1–2), the normalisation of Eq. 9 and the LIF neurons of
    Eq. 4 (soft reset; the surrogate of Eq. 8 backward). Returns ``(spikes, μ, σ²)``, or
    ``((spikes, u), μ, σ²)`` with ``return_membrane`` (as :func:`bntt_lif`)."""
    mean, var = bntt_batch_stats(y)
    current = bntt_normalize(y, gamma_t, mean, var, eps)
    out = lif_scan(
        current,
        leak=leak,
        threshold=threshold,
        alpha=alpha,
        width=width,
        return_membrane=return_membrane,
    )
    out = (out[0], lax.stop_gradient(out[1])) if return_membrane else out
    return out, lax.stop_gradient(mean), lax.stop_gradient(var)


def bntt_lif(
    y: jax.Array,
    gamma_t: jax.Array,
    *,
    eps: float,
    leak: float,
    threshold: float,
    alpha: float,
    width: float = 1.0,
    return_membrane: bool = False,
) -> tuple:
    """A training-mode BNTT layer after its synapses: ``y`` ``[T, B, ..., C]`` normalised with
    each step's batch statistics and ``gamma_t`` ``[T, C]`` (Eq. 9), then the LIF neurons
    (Eq. 4, soft reset; the surrogate of Eq. 8 with scale ``alpha``, half-width ``width``·θ).

    Returns ``(spikes, μ, σ²)`` (the statistics ``[T, C]`` carry no gradient); with
    ``return_membrane``, ``((spikes, u), μ, σ²)`` with the pre-reset membrane ``u`` (no gradient
    either), which :class:`SpikingConv` takes as ``support``. On CPU with the
    compiled code (float32/float64) the normalisation and the neurons run fused, one pass
    forward and one backward (:func:`bntt_jax.cpu.fused.bntt_lif_train`); elsewhere
    :func:`bntt_lif_reference`, which it equals up to summation order.
    """
    options = dict(
        eps=eps,
        leak=leak,
        threshold=threshold,
        alpha=alpha,
        width=width,
        return_membrane=return_membrane,
    )
    reference = functools.partial(bntt_lif_reference, **options)
    if not choice.fused_layers(y):
        return reference(y, gamma_t)
    cpu = functools.partial(bntt_lif_train, **options)
    return lax.platform_dependent(y, gamma_t, cpu=cpu, default=reference)


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons over ``[T, B, ...]`` input currents (Eq. 4/9), no
    parameters: ``u_t = λ·m_{t−1} + I_t``, ``o_t = 1[u_t > θ]``, then a soft (``m = u − θ·o``)
    or hard (``m = u·(1 − o)``) reset; backward, the triangle ``α·max(0, 1 − |u/θ − 1|/w)``
    (Eq. 8 with ``surrogate_scale`` α and ``surrogate_width`` w = 1).

    Returns the spikes ``[T, B, ...]``; with ``return_membrane``, ``(spikes, u)`` with the
    pre-reset membrane potentials.
    """

    leak: float
    threshold: float = 1.0
    reset: str = "soft"
    surrogate_scale: float = SURROGATE_ALPHA
    surrogate_width: float = 1.0
    return_membrane: bool = False

    def __call__(self, currents: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
        return lif_scan(
            currents,
            leak=self.leak,
            threshold=self.threshold,
            alpha=self.surrogate_scale,
            reset=self.reset,
            width=self.surrogate_width,
            return_membrane=self.return_membrane,
        )


class Readout(nn.Module):
    """Non-spiking accumulator ``(1/T)·Σ_t W·o_t`` (Eq. 5 with λ = 1), no bias, no norm.

    Takes ``[T, B, ...]`` spikes (trailing axes flattened) and returns ``(logits, steps)``
    with ``steps`` the per-step terms ``W·o_t`` ``[T, B, classes]``.
    """

    num_classes: int

    @nn.compact
    def __call__(self, spikes: jax.Array) -> tuple[jax.Array, jax.Array]:
        _time_major(spikes, "Readout")
        spikes = spikes.reshape(spikes.shape[:2] + (-1,))
        kernel = self.param(
            "kernel", xavier_uniform_gain2, (spikes.shape[-1], self.num_classes), jnp.float32
        )
        steps = readout_steps(spikes, kernel.astype(spikes.dtype))
        return jnp.mean(steps, axis=0), steps


class PoissonEncoder(nn.Module):
    """Signed Poisson rate coding of a batch ``[B, ...]`` into ``[num_steps, B, ...]`` spikes
    (Appendix B; :func:`bntt_jax.poisson_encode`), drawing from the ``"poisson"`` RNG stream:
    ``model.apply(variables, x, rngs={"poisson": key})``."""

    num_steps: int
    scale: float = POISSON_SCALE

    def __call__(self, x: jax.Array) -> jax.Array:
        return poisson_encode(self.make_rng("poisson"), x, self.num_steps, scale=self.scale)


def avg_pool2(x: jax.Array) -> jax.Array:
    """2×2 average pooling with stride 2 of ``[T, B, H, W, C]``; an odd last row or column is
    dropped (PyTorch's ``AvgPool2d(2)``: 21×21 becomes 10×10)."""
    t, b, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    if h2 == 0 or w2 == 0:
        raise ValueError(f"avg_pool2: needs at least 2×2 pixels, got {h}×{w}.")
    x = x[:, :, : 2 * h2, : 2 * w2]
    return x.reshape(t, b, h2, 2, w2, 2, c).mean(axis=(3, 5))


def global_avg_pool(x: jax.Array) -> jax.Array:
    """Global average pooling ``[T, B, H, W, C] -> [T, B, C]`` (VGG11's adaptive pool)."""
    return x.mean(axis=(2, 3))
