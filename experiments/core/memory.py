"""The training step's peak memory, estimated from the network, T and the batch before any
work starts, and checked against the memory there is (no JAX).

Backpropagation through time keeps every layer's state at every step for the backward
pass, so a training step's memory grows as ``T × batch × (neurons + inputs)``:

    bytes ≈ ACTIVATION_FACTOR · steps · batch_per_device · (Σ neurons + inputs) · 4 + OVERHEAD

``steps`` is T for a method that unrolls the network over time (BNTT) and 1 otherwise (the
TTFS surrogate DNN, the ANN). ``ACTIVATION_FACTOR`` bounds what XLA's own memory analysis
of the compiled step gives (``tests/experiments/test_preflight.py`` compares them): 5.5 for
the BNTT MLP and 4.8–5.0 for VGG9, 3.2 without normalisation, 4.7 for TTFS, 1.4 for the ANN.
``python -m benchmarks.memory`` compares the estimate with the measured peak: VGG9 T = 25 on
an H200, 5.07 GB estimated for batch 32 (4.64 GB peak) and 38.65 GB for batch 256 (36.21 GB
peak); on this project's CPU, 5.07 GB against a 4.58 GB peak RSS for batch 32.
"""

from __future__ import annotations

import math
from typing import Any

from bntt_jax.checks import host_available_bytes
from experiments.core.keys import ConfigError

#: Bytes kept per neuron (or input), sample and unrolled step, float32 included (above).
ACTIVATION_FACTOR = 6.0
#: Parameters, optimiser state, the runtime's own buffers.
OVERHEAD = 256 * 2**20


def _per_sample_step(config: Any) -> int:
    network = config.network_config
    return sum(network.neurons_per_layer().values()) + math.prod(network.input_shape)


def unrolled_steps(config: Any) -> int:
    """The steps the training step unrolls the network over: T (BNTT), 1 otherwise."""
    return config.network.num_steps if config.spec.unrolled else 1


def estimate_bytes(config: Any, devices: int = 1) -> int:
    """The estimated peak memory of one device's training step (module docstring)."""
    per_device = -(-config.batch_size // devices)
    units = unrolled_steps(config) * per_device * _per_sample_step(config)
    return int(ACTIVATION_FACTOR * units * 4 + OVERHEAD)


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def check_memory(config: Any, devices: int, available: int | None, where: str) -> None:
    """Raise :class:`ConfigError` on the batch size (or T) if the estimated training step does
    not fit in ``available`` bytes (``None``: this machine's,
    :func:`bntt_jax.checks.host_available_bytes`), with the largest T and batch that fit.
    ``where`` names the memory (``"this machine"``)."""
    available = host_available_bytes() if available is None else available
    need = estimate_bytes(config, devices)
    if available is None or need <= available:
        return
    steps = unrolled_steps(config)
    per_device = -(-config.batch_size // devices)
    per_unit = ACTIVATION_FACTOR * 4 * _per_sample_step(config)
    room = max(available - OVERHEAD, 0) / per_unit  # steps × samples per device that fit
    largest_batch = int(room // steps) * devices
    fits = [f"batch_size={largest_batch}" if largest_batch >= 2 else None]
    if config.spec.unrolled:
        largest_t = int(room // per_device)
        fits.insert(0, f"num_steps={largest_t}" if largest_t >= 1 else None)
    advice = " or ".join(f for f in fits if f) or "a smaller network, or a machine with more"
    raise ConfigError(
        "num_steps" if config.spec.unrolled else "batch_size",
        steps if config.spec.unrolled else config.batch_size,
        f"the training step needs about {gb(need)} (T = {steps}, batch {per_device} per "
        f"device), but {where} has {gb(available)} available (estimated before training).",
        f"--set {advice} (the largest that fit).",
    )
