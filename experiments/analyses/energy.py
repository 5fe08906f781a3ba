"""Energy of a BNTT-family network (BNTT paper, Sec. 4.3, Appendix D–E): FLOPs per layer
(Eq. 22), SNN FLOPs from the measured spike rates (Eq. 24), 45 nm CMOS energy of the network
as an ANN and as this SNN (Eq. 25–26, Table 4) and their ratio ``E_ANN / E_SNN`` (Table 3),
and TrueNorth energy ``S·E_dyn + K·T·E_sta`` (Table S1, K = 2; normalised when the run's
paper values name a reference).

How the first layer is counted. With Poisson input, each ±1 input spike costs one add per
synapse it reaches, like any other spike; the input's rate is its expectation, ``T·E[min(|x|/2,
1)]`` per input value (the encoder fires with probability ``|x|/2``). With direct input the
analog value reaches the first layer at every step, so that layer costs ``T·FLOPS_ANN``
multiply-accumulates (E_MAC), as the other layers cost adds.

The ANN costs ``E_ANN`` (ratio 1; no spikes, no TrueNorth energy). A converted network is
counted as a BNTT one: its IF neurons receive the same Poisson input, over its T."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bntt_jax.encoding import POISSON_SCALE
from bntt_jax.metrics import energy
from experiments.analyses.subject import evaluation
from experiments.core.plots import pyplot, save_figure


def not_applicable(subject: Any) -> str | None:
    if subject.kind == "snn" and subject.config.network.encoder == "sequential":
        return "sequential input (one pixel per step) has no per-layer FLOP count of Eq. 22."
    return None


def input_rate(x: np.ndarray, num_steps: int, encoder: str) -> float:
    """Spikes per input value over all steps: the Poisson encoder's expectation, T for direct
    input (every value at every step), or the non-zero values of the event frames (each a
    multiply-accumulate per synapse: a frame holds event counts)."""
    if encoder == "direct":
        return float(num_steps)
    if encoder == "frames":  # x: [N, T, H, W, C]
        return float(num_steps * np.mean(x != 0))
    return float(num_steps * np.mean(np.minimum(np.abs(x) / POISSON_SCALE, 1.0)))


def reusable(result: dict[str, Any], subject: Any) -> bool:
    """Whether a saved result is of this subject's kind and T."""
    return result.get("kind") == subject.kind and result["num_steps"] == subject.num_steps


def compute(subject: Any) -> dict[str, Any]:
    net, config = subject.net, subject.config
    ann = energy.ann_flops(net.config)
    e_ann = energy.cmos_energy(ann, "mac")
    if subject.kind == "ann":
        return {
            "kind": "ann",
            "num_steps": 1,
            "ann_flops": ann,
            "snn_flops": None,
            "energy_ann_pj": e_ann,
            "energy_snn_pj": e_ann,
            "ratio_ann_to_snn": 1.0,
            "spikes_per_image": None,
            "truenorth": None,
        }
    ev = evaluation(subject)
    steps = subject.num_steps
    encoder = "poisson" if subject.kind == "conversion" else config.network.encoder
    rate_in = input_rate(subject.data.test_x, steps, encoder)
    snn = energy.snn_flops(net.config, ev["spike_rate"], rate_in)
    first = energy.synaptic_layers(net.config)[0].name
    analog = encoder in ("direct", "frames")  # the first layer multiplies its inputs
    ops = {k: "mac" if (k == first and analog) else "ac" for k in snn}
    e_snn = {k: v * energy.CMOS_45NM_PJ[ops[k]] for k, v in snn.items()}
    k = energy.STATIC_STEP_WEIGHT["bntt"]
    spikes = ev["spikes_per_image"]
    reference = subject.paper.get("truenorth_reference")
    return {
        "kind": subject.kind,
        "encoder": encoder,
        "num_steps": steps,
        "input_rate": rate_in,
        "ann_flops": ann,
        "snn_flops": snn,
        "operation": ops,
        "energy_ann_pj": e_ann,
        "energy_snn_pj": sum(e_snn.values()),
        "energy_snn_per_layer_pj": e_snn,
        "ratio_ann_to_snn": e_ann / sum(e_snn.values()),
        "spikes_per_image": spikes,
        "truenorth": {
            "static_step_weight": k,
            "raw": energy.neuromorphic_energy(spikes, steps, "truenorth", k),
            "reference": reference,
            "normalized": (
                energy.normalized_energy(
                    spikes, steps, reference["spikes"], reference["steps"], "truenorth", k
                )
                if reference
                else None
            ),
        },
    }


def draw(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    plt = pyplot()
    layers = list(result["ann_flops"])
    x = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, [result["ann_flops"][k] for k in layers], 0.4, label="ANN (Eq. 22)")
    if result["snn_flops"] is not None:
        ax.bar(x + 0.2, [result["snn_flops"][k] for k in layers], 0.4, label="SNN (Eq. 24)")
    ax.set_xticks(x, layers)
    ax.set(
        yscale="log",
        ylabel="FLOPs per image",
        title=f"FLOPs per layer: E_ANN / E_SNN = {result['ratio_ann_to_snn']:.2f}x (Table 3)",
    )
    ax.legend()
    return [save_figure(fig, Path(out_dir) / "flops.png")]


def report_lines(result: dict[str, Any]) -> list[str]:
    if result.get("kind") == "ann":
        return [
            f"E_ANN = {result['energy_ann_pj'] / 1e6:.4g} µJ per image (Eq. 25, E_MAC = 4.6 pJ).",
            "",
            "| layer | FLOPs (Eq. 22) |",
            "|---|---|",
            *[f"| {k} | {v:,} |" for k, v in result["ann_flops"].items()],
            "",
        ]
    tn = result["truenorth"]
    normalized = (
        ""
        if tn["normalized"] is None
        else (f", {tn['normalized']:.4f} of {tn['reference']['name']}")
    )
    return [
        f"E_ANN = {result['energy_ann_pj'] / 1e6:.4g} µJ, E_SNN = "
        f"{result['energy_snn_pj'] / 1e6:.4g} µJ: **E_ANN / E_SNN = "
        f"{result['ratio_ann_to_snn']:.2f}x** (Table 3; {result['encoder']} input, rate "
        f"{result['input_rate']:.3f} per value over T = {result['num_steps']}).",
        f"TrueNorth: {tn['raw']:,.1f} (S·0.4 + {tn['static_step_weight']:g}·T·0.6, "
        f"S = {result['spikes_per_image']:,.0f} spikes){normalized}.",
        "",
        "| layer | ANN FLOPs (Eq. 22) | SNN FLOPs (Eq. 24) | operation | SNN energy (pJ) |",
        "|---|---|---|---|---|",
        *[
            f"| {k} | {result['ann_flops'][k]:,} | {result['snn_flops'][k]:,.0f} | "
            f"{result['operation'][k].upper()} | {result['energy_snn_per_layer_pj'][k]:,.0f} |"
            for k in result["ann_flops"]
        ],
        "",
    ]


def draw_compare(out_dir: Path, results: dict[str, dict[str, Any]]) -> list[Path]:
    """Table 3 as bars: ``E_ANN / E_method`` of every run."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    runs = list(results)
    ax.bar(range(len(runs)), [results[r]["ratio_ann_to_snn"] for r in runs])
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="the ANN")
    ax.set_xticks(range(len(runs)), runs, fontsize=7)
    ax.set(ylabel="E_ANN / E_method", title="energy efficiency (Table 3)")
    ax.legend(fontsize=7)
    return [save_figure(fig, Path(out_dir) / "energy.png")]


def _spikes(result: dict[str, Any]) -> str:
    spikes = result["spikes_per_image"]
    return "–" if spikes is None else f"{spikes:,.0f}"


def compare_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """Table 3 (``E_ANN / E_method``) and Table S1 (TrueNorth energy, normalised to the
    compared conversion where there is one, as the paper normalises to conversion)."""
    reference = next((r for r in results.values() if r.get("kind") == "conversion"), None)

    def truenorth(r: dict[str, Any]) -> str:
        if r["truenorth"] is None:
            return "– | –"
        raw = r["truenorth"]["raw"]
        if reference is None:
            return f"{raw:,.1f} | –"
        return f"{raw:,.1f} | {raw / reference['truenorth']['raw']:.4f}"

    return [
        "| run | latency | E_ANN / E_method (Table 3) | spikes per image | TrueNorth (raw) | "
        "TrueNorth / conversion (Table S1) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {run} | {r['num_steps']} | {r['ratio_ann_to_snn']:.2f}x | "
            f"{_spikes(r)} | "
            f"{truenorth(r)} |"
            for run, r in results.items()
        ],
        "",
    ]
