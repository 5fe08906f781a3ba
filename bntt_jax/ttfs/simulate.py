"""The spiking network a trained TTFS surrogate stands for, simulated step by step.

Park & Yoon, Eq. 1–3 and Appendix A (Fig. 9): integrate-and-fire neurons with TTFS coding.
Each layer has two phases of ``T + 1`` steps (relative times ``0 … T``; Eq. 3's window):

* **integration**: the membrane starts at the (batch-norm-folded) bias and, at every step
  ``k``, adds ``κ(k)·Σ_i w_i·s_i(k)``: the weighted spikes of the previous layer at that step,
  scaled by the previous layer's kernel (Eq. 1 and 3). No spike is emitted.
* **fire**: at every step ``k`` the neuron compares its membrane with the decaying threshold
  ``θ₀·κ(k)`` (half a step later with ``rounding='round'``), fires the first time it reaches
  it, and is refractory from then on (one spike at most, Eq. 2). The next layer integrates
  during this phase; its last step is the next layer's first fire step.

Batch norm is folded into the weights and biases; 2×2 max pooling passes on the earliest
spike of its inputs (the kernel decreases, so the maximum decoded value is the earliest
spike's), average pooling passes on the average of its inputs' spikes at each step; the
input image is encoded the same way by input neurons whose membrane is the pixel intensity
(``input_coding='ttfs'``), or enters the first layer as an analog current at its first step
(``'analog'``). The output layer only integrates: its membrane at the end is the logits.

Everything runs under ``jit``: one ``lax.scan`` over the time steps of each phase, vectorised
over neurons and batch (the Python loop is over layers). In float64 the spike times equal
the surrogate's (:func:`bntt_jax.ttfs.forward`) exactly and the logits to rounding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from bntt_jax.cpu.convolution import conv3x3, spike_dense
from bntt_jax.ttfs.config import TTFSConfig
from bntt_jax.ttfs.functional import TTFSParams, check_params, network_input
from bntt_jax.ttfs.kernel import NO_SPIKE, kernel, threshold_table
from bntt_jax.ttfs.models import kernel_parameters


class SpikingOutput(NamedTuple):
    """What :func:`simulate` returns.

    Attributes:
      spike_times: ``{layer: int32 [B, ...]}``, each neuron's spike time relative to its fire
        window (``0 … T``), or ``-1`` (no spike); the input layer first (``'input'``, with
        ``input_coding='ttfs'``).
      spike_counts: ``{layer: int32 [B]}``, spikes per sample of each layer.
      logits: ``[B, classes]``, the output layer's membrane after its integration window.
      latency: the time steps from the first input spike to the output, ``(layers + 1)·T``.
    """

    spike_times: dict[str, jax.Array]
    spike_counts: dict[str, jax.Array]
    logits: jax.Array
    latency: int


def fold_batch_norm(net: TTFSParams) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``{layer: (W', b')}`` with each kernel layer's batch norm folded in:
    ``W' = W·s``, ``b' = (b − μ)·s + β``, ``s = γ/√(σ² + ε)`` (running statistics); the output
    layer's ``(W, b)`` as they are."""
    c = net.config
    out = {}
    for spec in c.layers:
        p = net.params[spec.name]
        op = p["conv" if spec.kind == "conv" else "dense"]
        stats = net.batch_stats[spec.name]["bn"]
        scale = p["bn"]["scale"] * jax.lax.rsqrt(stats["var"] + c.bn_eps)
        bias = op.get("bias", jnp.zeros_like(scale))
        out[spec.name] = (op["kernel"] * scale, (bias - stats["mean"]) * scale + p["bn"]["bias"])
    w = net.params["out"]["kernel"]
    out["out"] = (w, net.params["out"].get("bias", jnp.zeros(w.shape[-1], w.dtype)))
    return out


def _compose(f: Callable, g: Callable) -> Callable:
    return lambda s: g(f(s))


def _synapses(kind: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """``W·s``: the 3×3 "same" convolution or the dense layer of the library's speed layer
    (:mod:`bntt_jax.cpu.convolution`: on CPU event-driven over the non-zero inputs, and im2col
    for maps of at most 4 pixels; the library convolution and matmul elsewhere)."""
    if kind == "conv":
        return conv3x3(x, w.astype(x.dtype))
    return spike_dense(x.reshape(x.shape[0], -1), w.astype(x.dtype))


def fire(u: jax.Array, thresholds: jax.Array) -> jax.Array:
    """The fire phase: at steps ``k = 0 … T`` a neuron fires when ``u ≥ θ₀·κ(k)`` for the
    first time and is refractory after (Eq. 2, Fig. 9). ``thresholds``: the layer's
    :func:`~bntt_jax.ttfs.kernel.threshold_table`. Returns int32 spike times (``-1``: none)."""
    window = thresholds.shape[0] - 4

    def step(times: jax.Array, k: jax.Array) -> tuple[jax.Array, None]:
        fires = (times == NO_SPIKE) & (u >= thresholds[k + 1])  # θ₀·κ(k): entry k + 1
        return jnp.where(fires, k, times), None

    times0 = jnp.full(u.shape, NO_SPIKE, jnp.int32)
    return jax.lax.scan(step, times0, jnp.arange(window + 1, dtype=jnp.int32))[0]


#: The most values (input spikes or currents) one batched synaptic call may hold: the steps
#: of a window are folded into the batch in chunks under it (2**24 floats: 64 MiB).
FOLD_BUDGET = 2**24


def integrate(
    times: jax.Array,
    tau: jax.Array,
    t_d: jax.Array,
    synapses: Callable[[jax.Array], jax.Array],
    bias: jax.Array,
    config: TTFSConfig,
    prepare: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """The integration phase: ``u = b + Σ_k κ(k)·W·s(k)`` over steps ``k = 0 … T`` (Eq. 1),
    where ``s(k) = prepare(times == k)`` are the input spikes at step ``k`` (``prepare``:
    average pooling, flattening) and ``synapses`` applies ``W``. Returns the membrane at the
    end of the window.

    Layer-major, as the BNTT engine: the synaptic currents ``W·s(k)`` of several steps are one
    batched conv or matmul (steps folded into the batch, as many as :data:`FOLD_BUDGET`
    allows; on CPU event-driven, so the cost follows the spikes, one per neuron at most), and
    a scan adds them to the membrane one step after the other."""
    dtype = bias.dtype
    prepare = prepare or _identity
    window = config.time_window + 1
    one = jax.eval_shape(lambda s: synapses(prepare(s)), jax.ShapeDtypeStruct(times.shape, dtype))
    chunk = max(1, min(window, FOLD_BUDGET // max(times.size, math.prod(one.shape))))
    chunks = -(-window // chunk)  # steps beyond T carry no spikes: they add exact zeros
    steps = jnp.arange(chunks * chunk, dtype=jnp.int32).reshape(chunks, chunk)

    def add(u: jax.Array, k_current: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        k, current = k_current
        return u + kernel(k.astype(dtype), tau, t_d) * current, None

    def fold(u: jax.Array, ks: jax.Array) -> tuple[jax.Array, None]:
        spikes = (times[None] == ks.reshape(-1, *([1] * times.ndim))).astype(dtype)
        currents = synapses(prepare(spikes.reshape(-1, *times.shape[1:])))
        currents = currents.reshape(chunk, *one.shape)
        return jax.lax.scan(add, u, (ks, currents))[0], None

    return jax.lax.scan(fold, jnp.broadcast_to(bias, one.shape).astype(dtype), steps)[0]


def avg_pool(s: jax.Array) -> jax.Array:
    """2×2 average pooling, stride 2, of ``[B, H, W, C]``."""
    b, h, w, c = s.shape
    return s.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _identity(s: jax.Array) -> jax.Array:
    return s


def _flatten(s: jax.Array) -> jax.Array:
    return s.reshape(s.shape[0], -1)


def earliest_spike_pool(times: jax.Array, window: int) -> jax.Array:
    """2×2 max pooling of spike trains with one spike each: the pooled unit passes on the
    earliest spike of its inputs and is then refractory (``-1`` = no spike)."""
    late = jnp.where(times == NO_SPIKE, window + 1, times)
    b, h, w, c = late.shape
    first = late.reshape(b, h // 2, 2, w // 2, 2, c).min(axis=(2, 4))
    return jnp.where(first > window, NO_SPIKE, first)


def simulate(net: TTFSParams, images: jax.Array) -> SpikingOutput:
    """Run the spiking network of a TTFS surrogate on ``images`` ``[B, ...]``.

    Returns spike times and counts of every spiking layer, the logits (the output layer's
    integrated membrane) and the latency ``(layers + 1)·T`` (544 for VGG-16 with T = 32).
    Use float64 parameters and images (``jax.enable_x64``) for exact agreement with
    :func:`bntt_jax.ttfs.forward`. The firing thresholds are evaluated here, outside the
    compiled simulation, op by op as the surrogate's encoder evaluates them when it is called
    outside ``jit``: then even a neuron exactly on a quantisation boundary fires at the same
    step in both. (Under ``jit`` XLA may round a fused ``exp``'s last bit differently, which
    can move only a neuron within one ulp of a boundary.)
    """
    check_params("ttfs.simulate()", net)
    images = network_input("ttfs.simulate()", net.config, images)
    c = net.config
    dtype = jax.tree.leaves(net.params)[0].dtype
    # The thresholds are evaluated here, op by op, as the surrogate's encoder evaluates them
    # when called outside jit: XLA may round a fused exp's last bit differently.
    thresholds = {
        name: threshold_table(
            jnp.asarray(tau, dtype), jnp.asarray(t_d, dtype), c.time_window, c.theta0, c.rounding
        )
        for name, (tau, t_d) in kernel_parameters(net.params, c).items()
    }
    times, logits = _simulate(net, jnp.asarray(images, dtype), thresholds)
    times = {k: times[k] for k in net.config.kernel_names}  # network order (jit sorts keys)
    counts = {k: (v >= 0).reshape(len(v), -1).sum(-1, dtype=jnp.int32) for k, v in times.items()}
    return SpikingOutput(times, counts, logits, net.config.latency)


@jax.jit
def _simulate(
    net: TTFSParams, images: jax.Array, thresholds: dict[str, jax.Array]
) -> tuple[dict[str, jax.Array], jax.Array]:
    c = net.config
    folded = fold_batch_norm(net)
    kernels = {
        name: (tau.astype(images.dtype), t_d.astype(images.dtype))
        for name, (tau, t_d) in kernel_parameters(net.params, c).items()
    }
    all_times: dict[str, jax.Array] = {}
    if c.input_coding == "ttfs":
        # Input neurons: the membrane is the pixel intensity, fired under the input kernel.
        all_times["input"] = fire(images, thresholds["input"])
        prev_times, prev_kernel = all_times["input"], kernels["input"]
    else:
        prev_times, prev_kernel = None, None
    prepare: Callable[[jax.Array], jax.Array] = _identity
    for spec in c.layers:
        w, b = folded[spec.name]
        synapses = functools.partial(_synapses, spec.kind, w=w)
        if spec.kind == "dense":
            prepare = _compose(prepare, _flatten)
        if prev_times is None:  # analog image: one current at the first step
            u = b + synapses(prepare(images))
        else:
            u = integrate(prev_times, *prev_kernel, synapses, b, c, prepare)
        times = fire(u, thresholds[spec.name])
        all_times[spec.name] = times
        prepare = _identity
        if spec.pool and c.pooling == "max":
            times = earliest_spike_pool(times, c.time_window)
        elif spec.pool:
            prepare = avg_pool
        prev_times, prev_kernel = times, kernels[spec.name]
    w, b = folded["out"]
    synapses = functools.partial(_synapses, "dense", w=w)
    logits = integrate(prev_times, *prev_kernel, synapses, b, c, _compose(prepare, _flatten))
    return all_times, logits


def spike_times_of(out: Any, config: TTFSConfig) -> dict[str, jax.Array]:
    """The surrogate's spike times (:func:`bntt_jax.ttfs.forward`'s ``t``) as int32 with
    ``-1`` for no spike: the format of :attr:`SpikingOutput.spike_times`."""
    window = config.time_window
    return {k: jnp.where(v <= window, v, NO_SPIKE).astype(jnp.int32) for k, v in out.t.items()}
