"""bntt-jax: spiking neural networks in JAX/Flax trained with Batch Normalization Through Time
(Kim & Panda) or with time-to-first-spike coding (Park & Yoon, :mod:`bntt_jax.ttfs`).

The package is laid out in wings:

* the neuron model and the BNTT network, at the top: :mod:`~bntt_jax.spike`,
  :mod:`~bntt_jax.lif`, :mod:`~bntt_jax.norms`, :mod:`~bntt_jax.encoding`,
  :mod:`~bntt_jax.readout`, :mod:`~bntt_jax.layers` (Linen layers for networks of your own),
  :mod:`~bntt_jax.config`, :mod:`~bntt_jax.models`,
  :mod:`~bntt_jax.functional` (``init``, ``simulate``), :mod:`~bntt_jax.train`,
  :mod:`~bntt_jax.early_exit`, :mod:`~bntt_jax.parallel`;
* :mod:`bntt_jax.ttfs`: the TTFS method;
* :mod:`bntt_jax.cpu`: the CPU speed layer (compiled FFI code, event-driven convolution,
  fused evaluation layer, huge pages), which imports nothing of the model;
* :mod:`bntt_jax.baselines`: the ANN of the same topology and its ANN-to-SNN conversion;
* :mod:`bntt_jax.metrics`: spikes and energy (both papers), robustness;
* :mod:`bntt_jax.interop`: the authors' PyTorch checkpoints.

The public API, listed once in ``_API`` below: the spike and its surrogate (Eq. 8), LIF
(Eq. 4, 9), BNTT (Eq. 9, Algorithm 1) and the other normalisations, the encoders
(Appendix B), the readout (Eq. 5), Linen layers of all of these for networks of your own
(``SpikingConv``, ``SpikingDense``, ``TemporalNorm``, ``LIF``, ``Readout``,
``PoissonEncoder``), the networks (``init``, ``simulate``), their training
(``TrainState``, ``make_optimizer``, ``train_step``, ``eval_step``: BPTT, Eq. 6; ``fit``,
their loop on your own arrays), a trained network in one checksummed file (``save``,
``load``), the authors' checkpoints
(``from_torch``, ``to_torch``), NIR export (``to_nir``), the γ-based early exit (Sec. 3.4),
and the submodules ``energy``, ``robustness``, ``ann``, ``conversion``, ``plot`` (rasters,
membrane traces, spikes per step, TTFS first-spike times) and ``ttfs``.

``import bntt_jax`` does not import JAX: the configuration (:class:`NetworkConfig` and the
named choices) is plain Python, and every other name is imported on first use. A command line
can therefore check its arguments and fail in a fraction of a second.
"""

from __future__ import annotations

# The JAX-free part of the API, imported now (re-exported: listed in __all__).
from bntt_jax import _lazy, ttfs  # noqa: F401
from bntt_jax.config import LayerSpec, NetworkConfig, NetworkConfigError  # noqa: F401
from bntt_jax.constants import ARCHS, SURROGATE_ALPHA  # noqa: F401
from bntt_jax.norms import NORMS  # noqa: F401

__version__ = "0.1.0"

# The public API: name -> the module that defines it, imported (with JAX) on first access;
# ":module" marks a submodule itself.
_API = {
    **dict.fromkeys(("spike", "surrogate_grad"), "bntt_jax.spike"),
    **dict.fromkeys(("lif_step", "lif_scan"), "bntt_jax.lif"),
    **dict.fromkeys(
        (
            "bntt_batch_stats",
            "bntt_normalize",
            "running_stats_update",
            "sequential_running_update",
            "layer_norm",
        ),
        "bntt_jax.norms",
    ),
    **dict.fromkeys(
        ("poisson_encode", "direct_encode", "sequential_encode", "frames_encode"),
        "bntt_jax.encoding",
    ),
    **dict.fromkeys(("readout", "readout_steps"), "bntt_jax.readout"),
    **dict.fromkeys(
        (
            "LIF",
            "PoissonEncoder",
            "Readout",
            "SpikingConv",
            "SpikingDense",
            "TemporalNorm",
            "avg_pool2",
            "global_avg_pool",
        ),
        "bntt_jax.layers",
    ),
    "SpikingNetwork": "bntt_jax.models",
    **dict.fromkeys(
        ("init", "simulate", "NetworkParams", "SimulateOutput", "RecordedOutput"),
        "bntt_jax.functional",
    ),
    **dict.fromkeys(
        ("TrainState", "make_optimizer", "train_step", "eval_step", "cross_entropy", "lr_schedule"),
        "bntt_jax.train",
    ),
    **dict.fromkeys(("from_torch", "to_torch"), "bntt_jax.interop.pytorch"),
    **dict.fromkeys(("save", "load"), "bntt_jax.saving"),
    "fit": "bntt_jax.fit",
    "to_nir": "bntt_jax.interop.nir_export",
    **dict.fromkeys(("early_exit_step", "exit_sweep", "gamma_means"), "bntt_jax.early_exit"),
    "plot": "bntt_jax.plot:module",
    "energy": "bntt_jax.metrics.energy:module",
    "robustness": "bntt_jax.metrics.robustness:module",
    "ann": "bntt_jax.baselines.ann:module",
    "conversion": "bntt_jax.baselines.conversion:module",
}

__all__ = sorted(
    [
        "ARCHS",
        "LayerSpec",
        "NORMS",
        "NetworkConfig",
        "NetworkConfigError",
        "SURROGATE_ALPHA",
        "ttfs",
        *_API,
    ]
)
__getattr__, __dir__ = _lazy.install(__name__, _API)
