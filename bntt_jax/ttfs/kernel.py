"""The temporal kernel of TTFS coding and the surrogate model's encoder and decoder.

Park & Yoon, *Training energy-efficient deep spiking neural networks with time-to-first-spike
coding*: Eq. 3 (kernel κ), Eq. 4–5 (encoder f and decoder g), Sec. 4 (representation range),
Eq. 6 (kernel-parameter gradients), Eq. 10–13 (kernel errors).

Spike times are relative to a layer's reference time t_r (so t_r = 0 here) and are integers
``0 … T``: a time ``t > T`` falls outside the window and the activation is pruned. Each layer
has one scalar ``tau`` (τ) and ``t_d`` (t_d), shared by its encoder and the next layer's decoder.

**Quantiser.** Eq. 4 rounds the spike time up (``ceil``): an integrate-and-fire neuron under
the decaying threshold θ₀·κ(t) fires at the first integer step where its membrane reaches the
threshold, which is exactly ``⌈t_d − τ·ln(z/θ₀)⌉``. The authors' code trains with ``round``
instead and shifts the spiking network's threshold by half a step, θ₀·exp(−(t + ½ − t_d)/τ),
so that it fires at ``⌈x − ½⌉`` (round half down). Both pairs are here (``rounding='ceil'``,
the paper's and the default, or ``'round'``), and in both the encoder computes the first
integer step whose threshold the pre-activation reaches, with the same floating-point
thresholds the spiking network compares against (:func:`threshold_table`): the closed form gives the
step, and one comparison either side corrects a last-bit error of ``ln``. So a neuron exactly
on a quantisation boundary fires at the same step in the surrogate and in the spiking network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bntt_jax.ttfs.config import ROUNDINGS

#: ε of Eq. 5 (and of the authors' code): keeps ``ln(ReLU(z) + ε)`` finite.
EPSILON = 1e-30
#: The spike time a neuron that does not fire gets from :func:`spike_times`.
NO_SPIKE = -1


def _shift(rounding: str) -> float:
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; choose one of {ROUNDINGS}.")
    return 0.0 if rounding == "ceil" else 0.5


def kernel(t: jax.Array, tau: jax.Array, t_d: jax.Array) -> jax.Array:
    """The temporal kernel inside its window, Eq. 3 with t_r = 0: ``exp(−(t − t_d)/τ)``.

    The window's Heaviside factors are applied by :func:`decode` (``0 ≤ t ≤ T``)."""
    return jnp.exp(-(t - t_d) / tau)


def representation_range(
    tau: jax.Array, t_d: jax.Array, window: int
) -> tuple[jax.Array, jax.Array]:
    """``(ẑ_m, ẑ_M) = (exp(−T/τ), 1)·exp(t_d/τ)`` (Sec. 4): the smallest and largest values
    the kernel represents, κ(T) and κ(0)."""
    z_max = jnp.exp(t_d / tau)
    return jnp.exp(-window / tau) * z_max, z_max


def threshold(
    t: jax.Array,
    tau: jax.Array,
    t_d: jax.Array,
    theta0: float | jax.Array = 1.0,
    rounding: str = "ceil",
) -> jax.Array:
    """The decaying firing threshold θ(t) = θ₀·κ(t) (Sec. 2.1), shifted by half a step with
    ``rounding='round'`` (the authors' code): ``θ₀·exp(−(t + s − t_d)/τ)``, s ∈ {0, ½}."""
    return theta0 * jnp.exp(-(t + _shift(rounding) - t_d) / tau)


def threshold_table(
    tau: jax.Array,
    t_d: jax.Array,
    window: int,
    theta0: float | jax.Array = 1.0,
    rounding: str = "ceil",
) -> jax.Array:
    """:func:`threshold` at the steps ``t = −1, 0, …, T + 2`` (entry ``t + 1``).

    The encoder and the spiking network both compare against these numbers. The table is
    computed as one vector behind an optimisation barrier, so that XLA cannot fuse ``exp``
    into its consumers: a vectorised and a scalar ``exp`` can differ in the last bit, and the
    two would then disagree about a neuron exactly on a quantisation boundary.
    """
    dtype = jnp.result_type(tau, t_d, float)
    steps = jnp.arange(-1, window + 3, dtype=dtype)
    return jax.lax.optimization_barrier(threshold(steps, tau, t_d, theta0, rounding))


@jax.custom_vjp
def quantize(x: jax.Array) -> jax.Array:
    """Q of Eq. 4–5: ``⌈x⌉``, with a straight-through gradient (Hubara et al.): ∂Q/∂x = 1."""
    return jnp.ceil(x)


def _quantize_fwd(x: jax.Array) -> tuple[jax.Array, None]:
    return jnp.ceil(x), None


def _quantize_bwd(_: None, g: jax.Array) -> tuple[jax.Array]:
    return (g,)


quantize.defvjp(_quantize_fwd, _quantize_bwd)


def encode(
    z: jax.Array,
    tau: jax.Array,
    t_d: jax.Array,
    window: int,
    theta0: float | jax.Array = 1.0,
    rounding: str = "ceil",
) -> jax.Array:
    """The encoder f of Eq. 5: ``t = ReLU(Q[t_d − τ·ln(ReLU(z)/θ₀ + ε)])`` (t_r = 0).

    Returns float spike times, integer-valued; a neuron that does not fire in the window
    (``t > T``, or ``z ≤ 0``: its membrane never reaches a positive threshold) gets ``T + 1``.
    Q is :func:`quantize` (``rounding='round'``: ``⌈x − ½⌉``), corrected to the first step
    whose threshold (:func:`threshold_table`) ``z`` reaches. Gradients: straight through Q to
    ``z`` (zero where clipped at ``t = 0`` or pruned); none to ``tau`` and ``t_d``, whose
    gradients Eq. 6 takes through the decoder alone — through the encoder too, the
    straight-through estimator would cancel them down to the quantisation residual
    ``ẑ·(t − x)/τ²``.
    """
    shift = _shift(rounding)
    tau_e, t_d_e = jax.lax.stop_gradient(tau), jax.lax.stop_gradient(t_d)
    x = t_d_e - tau_e * jnp.log(jax.nn.relu(z) / theta0 + EPSILON)
    q = quantize(x - shift)
    # One step either way where ln's last bit put q off the first step z reaches.
    zc, qc = jax.lax.stop_gradient(z), jax.lax.stop_gradient(q)
    table = threshold_table(tau_e, t_d_e, window, theta0, rounding)
    step = jnp.clip(qc, 0, window + 2).astype(jnp.int32)  # entry of t = step - 1
    earlier = zc >= table[step]
    later = zc < table[step + 1]
    q = q + jnp.where(earlier, -1.0, jnp.where(later, 1.0, 0.0))
    t = jax.nn.relu(q)
    return jnp.where((t > window) | (z <= 0), jnp.asarray(window + 1, t.dtype), t)


def decode(t: jax.Array, tau: jax.Array, t_d: jax.Array, window: int) -> jax.Array:
    """The decoder g of Eq. 5: ``ẑ = κ(t)`` (Eq. 3) for ``0 ≤ t ≤ T``, else 0 (pruned)."""
    return jnp.where(t <= window, kernel(t, tau, t_d), jnp.zeros((), t.dtype))


def encode_decode(
    z: jax.Array,
    tau: jax.Array,
    t_d: jax.Array,
    window: int,
    theta0: float | jax.Array = 1.0,
    rounding: str = "ceil",
) -> jax.Array:
    """``g(f(z))``: the surrogate model's activation (Fig. 1(b)): 0 below ẑ_m (pruned), ẑ_M
    above it (clipped), and the kernel value of the quantised spike time between."""
    return decode(encode(z, tau, t_d, window, theta0, rounding), tau, t_d, window)


def spike_times(t: jax.Array, window: int) -> jax.Array:
    """Integer spike times from :func:`encode`'s output: ``t``, or :data:`NO_SPIKE`."""
    return jnp.where(t <= window, t, NO_SPIKE).astype(jnp.int32)


def kernel_errors(
    z: jax.Array,
    tau: jax.Array,
    t_d: jax.Array,
    window: int,
    theta0: float | jax.Array = 1.0,
    rounding: str = "ceil",
) -> dict[str, jax.Array]:
    """The three kernel errors of Eq. 10–12, elementwise, each zero outside its own case:

    * ``max``: ``z − ẑ_M`` where ``z > ẑ_M`` (clipping, Eq. 10);
    * ``min``: ``ẑ_m − z`` where ``0 < z < ẑ_m`` (pruning, Eq. 11);
    * ``precision``: ``z − ẑ`` where ``ẑ_m ≤ z ≤ ẑ_M`` (quantisation, Eq. 12).

    The kernel stands in for a ReLU, so a ``z ≤ 0``, which both map to 0, counts as no error
    (Eq. 11 read literally would count ``ẑ_m − z`` for it, growing without bound with ``|z|``).
    """
    z_min, z_max = representation_range(tau, t_d, window)
    z_hat = encode_decode(z, tau, t_d, window, theta0, rounding)
    above, below = z > z_max, z < z_min
    zero = jnp.zeros_like(z)
    return {
        "max": jnp.where(above, z - z_max, zero),
        "min": jnp.where(below & (z > 0), z_min - z, zero),
        "precision": jnp.where(above | below, zero, z - z_hat),
    }


def max_precision_error(tau: jax.Array, t_d: jax.Array) -> jax.Array:
    """The largest quantisation step of the kernel, Eq. 13: ``exp(t_d/τ) − exp((t_d − 1)/τ)``
    (between spike times 0 and 1)."""
    return jnp.exp(t_d / tau) - jnp.exp((t_d - 1.0) / tau)
