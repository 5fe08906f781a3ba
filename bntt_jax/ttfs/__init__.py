"""TTFS: deep spiking networks trained with time-to-first-spike coding (Park & Yoon).

The public API (listed once, in ``_API`` below), from the pure functions up:

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

Spike and energy metrics shared with the BNTT side are in :mod:`bntt_jax.metrics.energy`.
Like :mod:`bntt_jax`, importing this package does not import JAX.
"""

from __future__ import annotations

from bntt_jax import _lazy
from bntt_jax.ttfs.config import (  # noqa: F401  (re-exported: listed in __all__)
    INPUT_CODINGS,
    POOLINGS,
    ROUNDINGS,
    TTFS_ARCHS,
    TTFSConfig,
)

# The public API: name -> the module that defines it, imported (with JAX) on first access.
_API = {
    **dict.fromkeys(
        (
            "EPSILON",
            "NO_SPIKE",
            "decode",
            "encode",
            "encode_decode",
            "kernel",
            "kernel_errors",
            "max_precision_error",
            "quantize",
            "representation_range",
            "spike_times",
            "threshold",
            "threshold_table",
        ),
        "bntt_jax.ttfs.kernel",
    ),
    **dict.fromkeys(
        ("relax", "relaxation_probability", "relaxed_layers"), "bntt_jax.ttfs.relaxation"
    ),
    **dict.fromkeys(
        ("kernel_regularization", "tb_penalty", "tb_probability", "total_loss"),
        "bntt_jax.ttfs.losses",
    ),
    **dict.fromkeys(("TBBatchNorm", "TTFSNetwork", "TemporalKernel"), "bntt_jax.ttfs.models"),
    **dict.fromkeys(
        ("SurrogateOutput", "TTFSParams", "forward", "init"), "bntt_jax.ttfs.functional"
    ),
    **dict.fromkeys(("SpikingOutput", "fold_batch_norm", "simulate"), "bntt_jax.ttfs.simulate"),
    **dict.fromkeys(
        ("TrainState", "eval_step", "make_optimizer", "train_step"), "bntt_jax.ttfs.train"
    ),
}

__all__ = sorted(["INPUT_CODINGS", "POOLINGS", "ROUNDINGS", "TTFSConfig", "TTFS_ARCHS", *_API])
__getattr__, __dir__ = _lazy.install(__name__, _API)
