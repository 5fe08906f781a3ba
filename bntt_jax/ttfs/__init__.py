"""TTFS: deep spiking networks trained with time-to-first-spike coding (Park & Yoon).

The public API, from the pure functions up:

* :func:`kernel`, :func:`representation_range`, :func:`threshold` — the temporal kernel
  (Eq. 3, Sec. 4)
* :func:`encode`, :func:`decode`, :func:`encode_decode`, :func:`quantize` — the surrogate
  model's encoder and decoder with a straight-through quantiser (Eq. 4–5)
* :func:`kernel_errors`, :func:`max_precision_error` — kernel errors (Eq. 10–13)
* :func:`relaxation_probability`, :func:`relaxed_layers` — stochastic relaxation (Sec. 4)
* :func:`kernel_regularization`, :func:`tb_probability`, :func:`tb_penalty`,
  :func:`total_loss` — TR, TB and the loss of Eq. 9
* :class:`TTFSConfig`, :class:`TTFSNetwork`, :class:`TemporalKernel`, :class:`TBBatchNorm`,
  :func:`init`, :func:`forward` — VGG-16 and the MLP surrogate networks
* :func:`simulate` — the spiking network itself, step by step (Eq. 1–3, Appendix A)
* :func:`train_step`, :func:`eval_step`, :class:`TrainState` — training (Table 3)

Spike and energy metrics shared with the BNTT side are in :mod:`bntt_jax.energy`.
Like :mod:`bntt_jax`, importing this package does not import JAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bntt_jax import _lazy
from bntt_jax.ttfs.config import INPUT_CODINGS, POOLINGS, ROUNDINGS, TTFS_ARCHS, TTFSConfig

_LAZY = {
    "EPSILON": "kernel",
    "NO_SPIKE": "kernel",
    "decode": "kernel",
    "encode": "kernel",
    "encode_decode": "kernel",
    "kernel": "kernel",
    "kernel_errors": "kernel",
    "max_precision_error": "kernel",
    "quantize": "kernel",
    "representation_range": "kernel",
    "spike_times": "kernel",
    "threshold": "kernel",
    "threshold_table": "kernel",
    "relax": "relaxation",
    "relaxation_probability": "relaxation",
    "relaxed_layers": "relaxation",
    "kernel_regularization": "losses",
    "tb_penalty": "losses",
    "tb_probability": "losses",
    "total_loss": "losses",
    "TBBatchNorm": "models",
    "TTFSNetwork": "models",
    "TemporalKernel": "models",
    "SurrogateOutput": "network",
    "TTFSParams": "network",
    "forward": "network",
    "init": "network",
    "SpikingOutput": "simulate",
    "fold_batch_norm": "simulate",
    "simulate": "simulate",
    "TrainState": "train",
    "eval_step": "train",
    "make_optimizer": "train",
    "train_step": "train",
}

__all__ = [
    "EPSILON",
    "INPUT_CODINGS",
    "NO_SPIKE",
    "POOLINGS",
    "ROUNDINGS",
    "SpikingOutput",
    "SurrogateOutput",
    "TBBatchNorm",
    "TTFSConfig",
    "TTFSNetwork",
    "TTFSParams",
    "TTFS_ARCHS",
    "TemporalKernel",
    "TrainState",
    "decode",
    "encode",
    "encode_decode",
    "eval_step",
    "fold_batch_norm",
    "forward",
    "init",
    "kernel",
    "kernel_errors",
    "kernel_regularization",
    "make_optimizer",
    "max_precision_error",
    "quantize",
    "relax",
    "relaxation_probability",
    "relaxed_layers",
    "representation_range",
    "simulate",
    "spike_times",
    "tb_penalty",
    "tb_probability",
    "threshold",
    "threshold_table",
    "total_loss",
    "train_step",
]

__getattr__, __dir__ = _lazy.install(__name__, _LAZY)

if TYPE_CHECKING:  # what type checkers and IDEs see
    from bntt_jax.ttfs.kernel import (
        EPSILON,
        NO_SPIKE,
        decode,
        encode,
        encode_decode,
        kernel,
        kernel_errors,
        max_precision_error,
        quantize,
        representation_range,
        spike_times,
        threshold,
        threshold_table,
    )
    from bntt_jax.ttfs.losses import kernel_regularization, tb_penalty, tb_probability, total_loss
    from bntt_jax.ttfs.models import TBBatchNorm, TemporalKernel, TTFSNetwork
    from bntt_jax.ttfs.network import SurrogateOutput, TTFSParams, forward, init
    from bntt_jax.ttfs.relaxation import relax, relaxation_probability, relaxed_layers
    from bntt_jax.ttfs.simulate import SpikingOutput, fold_batch_norm, simulate
    from bntt_jax.ttfs.train import TrainState, eval_step, make_optimizer, train_step
