"""Spike and energy accounting shared by both papers (plain Python and numpy, no JAX).

* spike rate ``S/(N·H)`` and sparsity ``S/N`` (TTFS paper, Sec. 6.2): S spikes per sample,
  N neurons, H time steps;
* neuromorphic energy ``E = S·E_dyn + L·E_sta`` (TTFS paper Sec. 6.2 after T2FSNN; BNTT
  journal version Appendix E / Table S1), with (E_dyn, E_sta) = (0.4, 0.6) on TrueNorth and
  (0.64, 0.36) on SpiNNaker, normalised to a reference method.

The papers do not state the unit of the static term. With S in spikes and L in time steps,
one weight K per time step, ``E = E_dyn·S + E_sta·K·L``, reproduces the published tables:
K = 352 every TrueNorth and SpiNNaker cell of the TTFS paper's Table 2 (both datasets, to
within 4 %), and K = 2 the BNTT paper's Table S1 (0.3384 and 0.0312). The defaults per paper
are in :data:`STATIC_STEP_WEIGHT`.
"""

from __future__ import annotations

from typing import Any

#: (E_dyn, E_sta) per neuromorphic platform.
PLATFORMS: dict[str, tuple[float, float]] = {
    "truenorth": (0.4, 0.6),
    "spinnaker": (0.64, 0.36),
}
#: K, the static term's weight per time step that reproduces each paper's energy table.
STATIC_STEP_WEIGHT: dict[str, float] = {"ttfs": 352.0, "bntt": 2.0}


def spike_rate(spikes: Any, neurons: Any, steps: Any) -> Any:
    """``S/(N·H)``: the fraction of neurons that fire per time step, on average (Sec. 6.2)."""
    return spikes / (neurons * steps)


def sparsity(spikes: Any, neurons: Any) -> Any:
    """``S/N``: spikes per neuron over the whole inference (Sec. 6.2)."""
    return spikes / neurons


def _platform(platform: str) -> tuple[float, float]:
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}.")
    return PLATFORMS[platform]


def neuromorphic_energy(
    spikes: Any, steps: Any, platform: str = "truenorth", static_weight: float = 352.0
) -> Any:
    """``E = S·E_dyn + K·L·E_sta`` for ``spikes`` S per sample and latency ``steps`` L."""
    e_dyn, e_sta = _platform(platform)
    return spikes * e_dyn + static_weight * steps * e_sta


def normalized_energy(
    spikes: Any,
    steps: Any,
    reference_spikes: Any,
    reference_steps: Any,
    platform: str = "truenorth",
    static_weight: float = 352.0,
) -> Any:
    """:func:`neuromorphic_energy` relative to a reference method's (TTFS Table 2: TSC;
    BNTT Table S1: conversion)."""
    ours = neuromorphic_energy(spikes, steps, platform, static_weight)
    return ours / neuromorphic_energy(reference_spikes, reference_steps, platform, static_weight)
