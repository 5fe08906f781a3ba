"""ANN-to-SNN conversion (Sengupta et al. 2019), the BNTT papers' "Conversion" rows (Table 3:
VGG9 at T = 100, 500, 1000).

A trained :mod:`bntt_jax.baselines.ann` network becomes integrate-and-fire neurons (no leak)
driven by the same signed Poisson input as the BNTT network:

* batch norm is folded into each layer: ``W' = W·γ/√(σ² + ε)`` per output channel and a bias
  ``b' = β − γ·μ/√(σ² + ε)`` (none without batch norm);
* the thresholds are set layer by layer on training images ("spike-norm"): with the earlier
  layers already converted, ``θ_l`` is the largest input current layer ``l`` receives over the
  images, its neurons and the steps (or, with ``percentile < 100``, the largest over the steps
  of each step's percentile over the images and neurons);
* a neuron integrates ``u += W'·s + b'/c`` and fires when ``u ≥ θ``, then resets by
  subtraction (``u −= θ``, the default) or to zero. ``c`` keeps the bias on the scale of the
  spike rates: the input's rate is ``x/2`` (the encoder fires with probability ``|x|/2``), so
  ``c_0 = 2``, and a layer with threshold ``θ_l`` fires at ``1/θ_l`` of its input current, so
  ``c_l = c_{l−1}·θ_l``: layer ``l`` fires at rate ``ReLU(z_l)/c_l`` for the ANN's ``z_l``;
* the readout accumulates ``W'·s + b'/c`` over the steps without firing; its argmax is the
  prediction.

It runs step by step (``lax.scan`` over time, every layer per step), so memory does not grow
with T: T = 1000 costs a thousand steps, not a thousand times the activations. Evaluation only.
On CPU each layer's synaptic input is the event-driven convolution of the BNTT engine, which
visits only the spikes (``benchmarks/conversion.py``).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bntt_jax.baselines.ann import BN_EPS, ANNParams
from bntt_jax.config import NetworkConfig
from bntt_jax.cpu.convolution import conv3x3, spike_dense
from bntt_jax.encoding import POISSON_SCALE, poisson_encode

RESETS = ("subtract", "zero")


@flax.struct.dataclass
class ConvertedNetwork:
    """An ANN converted to integrate-and-fire neurons (``config`` and ``reset`` static)."""

    weights: dict[str, jax.Array]
    biases: dict[str, jax.Array]
    thresholds: dict[str, jax.Array]  # one scalar per spiking layer
    config: NetworkConfig = flax.struct.field(pytree_node=False)
    reset: str = flax.struct.field(pytree_node=False, default="subtract")


def fold_batch_norm(ann: ANNParams) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """``(weights, biases)`` of every layer with its batch norm folded in (biases 0 without)."""
    c, p = ann.config, ann.params
    weights, biases = {}, {}
    for spec in c.layers:
        w = jnp.asarray(p[spec.name]["kernel"])
        if c.norm == "bn":
            norm, stats = p[f"norm_{spec.name}"], ann.batch_stats[f"norm_{spec.name}"]
            scale = norm["scale"] / jnp.sqrt(stats["var"] + BN_EPS)
            weights[spec.name] = w * scale
            biases[spec.name] = norm["bias"] - stats["mean"] * scale
        else:
            weights[spec.name] = w
            biases[spec.name] = jnp.zeros(w.shape[-1], w.dtype)
    w = jnp.asarray(p[c.readout_name]["kernel"])
    weights[c.readout_name], biases[c.readout_name] = w, jnp.zeros(w.shape[-1], w.dtype)
    return weights, biases


def _synapses(kind: str, w: jax.Array, x: jax.Array) -> jax.Array:
    """``W·x`` of a layer: event-driven on CPU (:mod:`bntt_jax.cpu.convolution`: only the non-zero
    inputs, i.e. the spikes, are visited), the library convolution / matmul elsewhere."""
    if kind == "conv":
        return conv3x3(x, w)
    return spike_dense(x.reshape(x.shape[0], -1), w)


def _pool(pool: str | None, s: jax.Array) -> jax.Array:
    if pool == "avg2":
        b, h, w, c = s.shape
        return s.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    if pool == "global":
        return s.mean(axis=(1, 2))
    return s


def bias_scales(config: NetworkConfig, thresholds: dict[str, Any]) -> dict[str, Any]:
    """``1/c_{l−1}`` for every layer and the readout (module docstring)."""
    scales, c = {}, POISSON_SCALE
    for spec in config.layers:
        scales[spec.name] = 1.0 / c
        if spec.name not in thresholds:
            break
        c = c * thresholds[spec.name]
    else:
        scales[config.readout_name] = 1.0 / c
    return scales


@functools.partial(jax.jit, static_argnames=("config", "reset", "steps", "probe", "percentile"))
def _run(
    weights, biases, thresholds, images, key, *, config, reset, steps, probe=None, percentile=100.0
):
    """Simulate ``steps`` steps. With ``probe`` (a layer), stop there and return the largest
    over the steps of its input current's ``percentile``; else ``(accumulated readout, (spikes
    per layer per step summed over the images, prediction of every image after every step))``."""
    names = [spec.name for spec in config.layers]
    layers = config.layers if probe is None else config.layers[: names.index(probe) + 1]
    scales = bias_scales(config, thresholds)
    batch = images.shape[0]

    def zeros_of(spec, x):
        return jnp.zeros(_synapses(spec.kind, weights[spec.name], x).shape, images.dtype)

    # membranes: shapes from one dry pass of the synapses
    x = images
    membranes = {}
    for spec in layers:
        membranes[spec.name] = zeros_of(spec, x)
        x = _pool(spec.pool, membranes[spec.name])
    readout = jnp.zeros((batch, config.num_classes), images.dtype)

    def step(carry, t):
        membranes, readout, probed = carry
        x = poisson_encode(jax.random.fold_in(key, t), images, 1)[0]
        new, counts = {}, {}
        for spec in layers:
            current = (
                _synapses(spec.kind, weights[spec.name], x) + biases[spec.name] * scales[spec.name]
            )
            if spec.name == probe:
                value = (
                    jnp.max(current) if percentile >= 100 else jnp.percentile(current, percentile)
                )
                # the earlier layers integrate on: only the probed layer is not simulated
                return ({**membranes, **new}, readout, jnp.maximum(probed, value)), {}
            u = membranes[spec.name] + current
            theta = thresholds[spec.name]
            spikes = (u >= theta).astype(u.dtype)
            new[spec.name] = u - theta * spikes if reset == "subtract" else u * (1 - spikes)
            counts[spec.name] = spikes.sum()
            x = _pool(spec.pool, spikes)
        name = config.readout_name
        readout = readout + _synapses("fc", weights[name], x) + biases[name] * scales[name]
        return (new, readout, probed), (counts, jnp.argmax(readout, axis=-1))

    init = (membranes, readout, jnp.asarray(-jnp.inf, images.dtype))
    (_, readout, probed), trace = jax.lax.scan(step, init, jnp.arange(steps))
    return probed if probe is not None else (readout, trace)


def convert(
    ann: ANNParams,
    images: Any,
    key: jax.Array | int = 0,
    *,
    steps: int = 100,
    percentile: float = 100.0,
    reset: str = "subtract",
) -> ConvertedNetwork:
    """Convert ``ann``, setting each threshold on ``images`` (standardised training inputs)
    over ``steps`` steps (module docstring)."""
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}.")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}.")
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    key = jax.random.key(key) if isinstance(key, int) else key
    weights, biases = fold_batch_norm(ann)
    images = jnp.asarray(images, jnp.float32)
    thresholds: dict[str, jax.Array] = {}
    for spec in ann.config.layers:
        largest = _run(
            weights,
            biases,
            thresholds,
            images,
            key,
            config=ann.config,
            reset=reset,
            steps=int(steps),
            probe=spec.name,
            percentile=float(percentile),
        )
        # a layer that never receives a positive current keeps threshold 1 (it never fires)
        thresholds[spec.name] = jnp.where(largest > 0, largest, 1.0)
    return ConvertedNetwork(weights, biases, thresholds, ann.config, reset)


def _simulate(net: ConvertedNetwork, images: Any, key: jax.Array | int, steps: int) -> Any:
    """:func:`_run` of ``net`` for ``steps`` steps (checked), without a probe."""
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    key = jax.random.key(key) if isinstance(key, int) else key
    return _run(
        net.weights,
        net.biases,
        net.thresholds,
        jnp.asarray(images, jnp.float32),
        key,
        config=net.config,
        reset=net.reset,
        steps=int(steps),
    )


def simulate_converted(
    net: ConvertedNetwork, images: Any, key: jax.Array | int, steps: int
) -> tuple[jax.Array, dict[str, np.ndarray]]:
    """``(readout [B, classes], {layer: spikes per step [steps], summed over the images})``
    of ``steps`` steps of the converted network on standardised ``images``."""
    readout, (counts, _) = _simulate(net, images, key, steps)
    return readout, {k: np.asarray(v) for k, v in counts.items()}


def evaluate_converted(
    net: ConvertedNetwork, images: Any, labels: Any, key: jax.Array | int, steps: int
) -> dict[str, np.ndarray]:
    """One simulation of ``steps`` steps read at every step: ``correct`` ``[steps]`` (images
    whose accumulated readout after ``t`` steps names their label, for every ``t``; the same
    Poisson draws serve every ``t``, as a run stopped after ``t`` steps would see) and
    ``spikes/<layer>`` ``[steps]`` (spikes per step summed over the images)."""
    _, (counts, predictions) = _simulate(net, images, key, steps)
    correct = (np.asarray(predictions) == np.asarray(labels)[None, :]).sum(axis=1)
    return {"correct": correct, **{f"spikes/{k}": np.asarray(v) for k, v in counts.items()}}
