"""Spike, FLOP and energy accounting shared by both papers (plain Python, no JAX).

* spike rate ``S/(N·H)`` and sparsity ``S/N`` (TTFS paper, Sec. 6.2): S spikes per sample,
  N neurons, H time steps;
* FLOPs per layer (BNTT paper, Eq. 22), SNN FLOPs from spike rates (Eq. 24) and their energy
  on 45 nm CMOS (Eq. 25–26, Table 4: E_MAC = 4.6 pJ, E_AC = 0.9 pJ), whose ratio
  ``E_ANN / E_SNN`` is the BNTT paper's Table 3;
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

import dataclasses
from typing import Any

from bntt_jax.config import NetworkConfig

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


# ------------------------------------------------------------ FLOPs and CMOS energy (BNTT)
#: Energy of one 32-bit floating-point operation on 45 nm CMOS, in pJ (BNTT paper, Table 4):
#: a multiply-accumulate (an ANN's synaptic operation) costs MULT + ADD, an accumulate (a
#: spike's) one ADD.
CMOS_45NM_PJ: dict[str, float] = {"mult": 3.7, "add": 0.9, "mac": 4.6, "ac": 0.9}


@dataclasses.dataclass(frozen=True)
class SynapticLayer:
    """A weight layer of a BNTT network, as Eq. 22 counts it.

    ``source`` is what feeds it: ``"input"`` (the encoded image) or the spiking layer whose
    spikes it receives (pooled first, if that layer pools)."""

    name: str
    kind: str  # 'conv' (k×k, stride 1, 'same' padding) or 'fc'
    c_in: int
    c_out: int
    out_size: int = 1  # O, the output feature map's side (conv)
    kernel: int = 3  # k (1 for a linear layer)
    source: str = "input"


def synaptic_layers(config: NetworkConfig) -> tuple[SynapticLayer, ...]:
    """Every weight layer of ``config`` in order, the readout last."""
    out: list[SynapticLayer] = []
    source, side = "input", config.img_size if config.takes_images else 1
    channels = config.in_channels if config.takes_images else config.in_features
    for spec in config.layers:
        if spec.kind == "conv":
            out.append(
                SynapticLayer(spec.name, "conv", channels, spec.features, spec.size, 3, source)
            )
            side = {None: spec.size, "avg2": spec.size // 2, "global": 1}[spec.pool]
            channels = spec.features
        else:
            c_in = channels * side * side
            out.append(SynapticLayer(spec.name, "fc", c_in, spec.features, kernel=1, source=source))
            side, channels = 1, spec.features
        source = spec.name
    out.append(
        SynapticLayer(
            config.readout_name,
            "fc",
            channels * side * side,
            config.num_classes,
            kernel=1,
            source=source,
        )
    )
    return tuple(out)


def layer_flops(layer: SynapticLayer) -> int:
    """Eq. 22: ``k²·O²·C_in·C_out`` for a conv, ``C_in·C_out`` for a linear layer."""
    if layer.kind == "conv":
        return layer.kernel**2 * layer.out_size**2 * layer.c_in * layer.c_out
    return layer.c_in * layer.c_out


def layer_table(config: NetworkConfig) -> list[dict[str, Any]]:
    """The resolved network, one row per weight layer: its kind, output shape (one sample, one
    step, before pooling), pooling, spiking neurons (Eq. 23's N; 0 for the readout) and FLOPs
    as an ANN (Eq. 22)."""
    neurons = config.neurons_per_layer()
    specs = {spec.name: spec for spec in config.layers}
    rows = []
    for layer in synaptic_layers(config):
        spec = specs.get(layer.name)
        side = [layer.out_size] * 2 if layer.kind == "conv" else []
        rows.append(
            {
                "layer": layer.name,
                "kind": layer.kind if spec else "readout",
                "output": [*side, layer.c_out],
                "pool": spec.pool if spec else None,
                "neurons": neurons.get(layer.name, 0),
                "flops": layer_flops(layer),
            }
        )
    return rows


def ann_flops(config: NetworkConfig) -> dict[str, int]:
    """FLOPs of every layer of the network as an ANN, one inference (Eq. 22)."""
    return {layer.name: layer_flops(layer) for layer in synaptic_layers(config)}


def snn_flops(
    config: NetworkConfig, spike_rates: dict[str, float], input_rate: float
) -> dict[str, float]:
    """Eq. 24: ``FLOPS_SNN(l) = FLOPS_ANN(l)·R_s``, one inference over all its time steps.

    ``R_s`` is the rate (Eq. 23: spikes over all steps per neuron) of the spikes layer ``l``
    *receives*, since each incoming spike costs one accumulate per synapse it reaches:
    ``spike_rates[source]`` for a layer fed by a spiking layer, and ``input_rate`` for the
    first layer. With the signed Poisson input, each ±1 spike is one accumulate (an add or a
    subtract), so ``input_rate`` is the mean of ``|s|`` per input value summed over the steps
    (``Σ_t |x|`` on average for intensities ``|x| ≤ 1``). Average pooling leaves a rate
    unchanged (the mean of the pooled spikes is the mean of the spikes)."""
    sources = {layer.source for layer in synaptic_layers(config)}
    missing = sorted(sources - {"input"} - set(spike_rates))
    if missing:
        raise ValueError(f"spike_rates has no rate for {', '.join(missing)}.")
    return {
        layer.name: layer_flops(layer)
        * (input_rate if layer.source == "input" else spike_rates[layer.source])
        for layer in synaptic_layers(config)
    }


def cmos_energy(flops: dict[str, float], operation: str) -> float:
    """Eq. 25 (``operation="mac"``, an ANN) or Eq. 26 (``"ac"``, an SNN): ``Σ_l FLOPS(l)·E``
    in pJ, with E from :data:`CMOS_45NM_PJ`."""
    if operation not in CMOS_45NM_PJ:
        raise ValueError(
            f"unknown operation {operation!r}; choose one of {', '.join(CMOS_45NM_PJ)}."
        )
    return sum(flops.values()) * CMOS_45NM_PJ[operation]


def energy_ratio(config: NetworkConfig, spike_rates: dict[str, float], input_rate: float) -> float:
    """``E_ANN / E_SNN`` of the BNTT paper's Table 3: the same network as an ANN (MACs) over
    it as an SNN with these spike rates (accumulates)."""
    e_ann = cmos_energy(ann_flops(config), "mac")
    return e_ann / cmos_energy(snn_flops(config, spike_rates, input_rate), "ac")
