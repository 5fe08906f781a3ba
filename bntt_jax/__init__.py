"""bntt-jax: Batch Normalization Through Time spiking neural networks in JAX/Flax.

The public API, from the pure functions up:

* :func:`spike`, :func:`surrogate_grad` — Heaviside with the triangular surrogate (Eq. 8)
* :func:`lif_step`, :func:`lif_scan` — LIF with soft reset (Eq. 4, 9)
* :func:`bntt_batch_stats`, :func:`bntt_normalize`, :func:`running_stats_update` — BNTT
  (Eq. 9, Algorithm 1)
* :func:`poisson_encode`, :func:`direct_encode` — input encoders (Appendix B)
* :func:`readout` — the non-spiking accumulating output (Eq. 5)
* :class:`NetworkConfig`, :class:`SpikingNetwork` — VGG9, VGG11 and the MLP
* :func:`init`, :func:`simulate`, :class:`NetworkParams`, :class:`SimulateOutput`
* :func:`from_torch`, :func:`to_torch` — the authors' PyTorch checkpoints
* :func:`early_exit_step`, :func:`gamma_means` — temporal early exit from γᵗ (Sec. 3.4)
"""

from bntt_jax.config import ARCHS, LayerSpec, NetworkConfig
from bntt_jax.convert import from_torch, to_torch
from bntt_jax.early_exit import early_exit_step, gamma_means
from bntt_jax.encoding import direct_encode, poisson_encode, sequential_encode
from bntt_jax.lif import lif_scan, lif_step
from bntt_jax.models import SpikingNetwork, TemporalNorm
from bntt_jax.norm import (
    NORMS,
    bntt_batch_stats,
    bntt_normalize,
    layer_norm,
    running_stats_update,
    sequential_running_update,
)
from bntt_jax.readout import readout, readout_steps
from bntt_jax.simulate import NetworkParams, SimulateOutput, init, simulate
from bntt_jax.spike import SURROGATE_ALPHA, spike, surrogate_grad

__version__ = "0.1.0"

__all__ = [
    "ARCHS",
    "NORMS",
    "SURROGATE_ALPHA",
    "LayerSpec",
    "NetworkConfig",
    "NetworkParams",
    "SimulateOutput",
    "SpikingNetwork",
    "TemporalNorm",
    "bntt_batch_stats",
    "bntt_normalize",
    "direct_encode",
    "early_exit_step",
    "from_torch",
    "gamma_means",
    "init",
    "layer_norm",
    "lif_scan",
    "lif_step",
    "poisson_encode",
    "readout",
    "readout_steps",
    "running_stats_update",
    "sequential_encode",
    "sequential_running_update",
    "simulate",
    "spike",
    "surrogate_grad",
    "to_torch",
]
