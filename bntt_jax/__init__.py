"""bntt-jax: spiking neural networks in JAX/Flax trained with Batch Normalization Through Time
(Kim & Panda) or with time-to-first-spike coding (Park & Yoon, :mod:`bntt_jax.ttfs`).

The public API of the BNTT engine, from the pure functions up:

* :func:`spike`, :func:`surrogate_grad` — Heaviside with the triangular surrogate (Eq. 8)
* :func:`lif_step`, :func:`lif_scan` — LIF with soft reset (Eq. 4, 9)
* :func:`bntt_batch_stats`, :func:`bntt_normalize`, :func:`running_stats_update` — BNTT
  (Eq. 9, Algorithm 1)
* :func:`poisson_encode`, :func:`direct_encode` — input encoders (Appendix B)
* :func:`readout` — the non-spiking accumulating output (Eq. 5)
* :class:`NetworkConfig`, :class:`SpikingNetwork` — VGG9, VGG11 and the MLP
* :func:`init`, :func:`simulate`, :class:`NetworkParams`, :class:`SimulateOutput`
* :func:`from_torch`, :func:`to_torch` — the authors' PyTorch checkpoints
* :func:`early_exit_step`, :func:`exit_sweep`, :func:`gamma_means` — temporal early exit
  from γᵗ (Sec. 3.4)
* :mod:`energy` — spike rate, sparsity and neuromorphic energy, shared by both methods
* :mod:`ttfs` — the TTFS surrogate model, its training terms and its spiking network
* :mod:`robustness` — Gaussian noise and SNN-crafted FGSM (Sec. 4.4, Appendix F)
* :mod:`ann`, :mod:`conversion` — the non-spiking ANN of the same topology and its
  conversion to integrate-and-fire neurons (the papers' baselines, Table 3)

``import bntt_jax`` does not import JAX: the configuration (:class:`NetworkConfig` and the
named choices) is plain Python, and every other name is imported on first use. A command line
can therefore check its arguments and fail in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bntt_jax import _lazy, energy, ttfs
from bntt_jax.config import LayerSpec, NetworkConfig, NetworkConfigError
from bntt_jax.constants import ARCHS, NORMS, SURROGATE_ALPHA

__version__ = "0.1.0"

# name -> the module that defines it (imported, with JAX, on first access).
_LAZY = {
    "from_torch": "convert",
    "to_torch": "convert",
    "early_exit_step": "early_exit",
    "exit_sweep": "early_exit",
    "gamma_means": "early_exit",
    "direct_encode": "encoding",
    "poisson_encode": "encoding",
    "sequential_encode": "encoding",
    "lif_scan": "lif",
    "lif_step": "lif",
    "SpikingNetwork": "models",
    "TemporalNorm": "models",
    "bntt_batch_stats": "norm",
    "bntt_normalize": "norm",
    "layer_norm": "norm",
    "running_stats_update": "norm",
    "sequential_running_update": "norm",
    "readout": "readout",
    "readout_steps": "readout",
    "NetworkParams": "simulate",
    "SimulateOutput": "simulate",
    "init": "simulate",
    "simulate": "simulate",
    "spike": "spike",
    "surrogate_grad": "spike",
}

__all__ = [
    "ARCHS",
    "energy",
    "ttfs",
    "LayerSpec",
    "NORMS",
    "NetworkConfig",
    "NetworkConfigError",
    "NetworkParams",
    "SURROGATE_ALPHA",
    "SimulateOutput",
    "SpikingNetwork",
    "TemporalNorm",
    "bntt_batch_stats",
    "bntt_normalize",
    "direct_encode",
    "early_exit_step",
    "exit_sweep",
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


_getattr, _dir = _lazy.install(__name__, _LAZY)
#: Submodules that import JAX, loaded on first access (``bntt_jax.ann``, ...).
_SUBMODULES = ("ann", "conversion", "robustness")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted({*_dir(), *_SUBMODULES})


if TYPE_CHECKING:  # what type checkers and IDEs see
    from bntt_jax.convert import from_torch, to_torch
    from bntt_jax.early_exit import early_exit_step, exit_sweep, gamma_means
    from bntt_jax.encoding import direct_encode, poisson_encode, sequential_encode
    from bntt_jax.lif import lif_scan, lif_step
    from bntt_jax.models import SpikingNetwork, TemporalNorm
    from bntt_jax.norm import (
        bntt_batch_stats,
        bntt_normalize,
        layer_norm,
        running_stats_update,
        sequential_running_update,
    )
    from bntt_jax.readout import readout, readout_steps
    from bntt_jax.simulate import NetworkParams, SimulateOutput, init, simulate
    from bntt_jax.spike import spike, surrogate_grad
