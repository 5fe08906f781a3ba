"""Spike activity of a spiking network (BNTT-family or converted) on the test set: the spike
rate of every layer (Eq. 23: spikes over all steps per neuron; Fig. 4a / journal Fig. 5, log
scale) and the spikes of every layer at every step (Fig. 1: (a) conversion, (b) surrogate
gradient, (c) BNTT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.analyses.subject import evaluation
from experiments.core.plots import pyplot, save_figure


def not_applicable(subject: Any) -> str | None:
    if subject.kind == "ann":
        return "the ANN does not spike (one pass of real-valued activations)."
    return None


def reusable(result: dict[str, Any], subject: Any) -> bool:
    """Whether a saved result is of this subject's kind and T."""
    return result.get("kind") == subject.kind and result["num_steps"] == subject.num_steps


def compute(subject: Any) -> dict[str, Any]:
    ev = evaluation(subject)
    return {
        "kind": subject.kind,
        "accuracy": ev["accuracy"],
        "images": ev["count"],
        "num_steps": subject.num_steps,
        "spike_rate": ev["spike_rate"],
        "spikes_per_step": ev["spikes_per_step"],
        "spikes_per_image": ev["spikes_per_image"],
    }


def draw(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    plt = pyplot()
    layers = list(result["spike_rate"])
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.bar(range(len(layers)), [result["spike_rate"][k] for k in layers])
    ax.set_xticks(range(len(layers)), layers)
    ax.set(
        yscale="log",
        ylabel="spike rate (spikes per neuron, all steps)",
        title="layer-wise spike activity (Eq. 23, Fig. 4a)",
    )
    written = [save_figure(fig, Path(out_dir) / "spike_rate.png")]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for layer, per_step in result["spikes_per_step"].items():
        ax.plot(range(1, len(per_step) + 1), per_step, label=layer)
    ax.set(
        xlabel="time step t",
        ylabel="spikes per image",
        xscale="log" if result["num_steps"] > 100 else "linear",
        title="spikes per layer and time step (Fig. 1)",
    )
    ax.legend(fontsize=7, ncol=2)
    written.append(save_figure(fig, Path(out_dir) / "spikes_per_step.png"))
    return written


def report_lines(result: dict[str, Any]) -> list[str]:
    return [
        f"{result['images']} test images, T = {result['num_steps']}: accuracy "
        f"{100 * result['accuracy']:.2f}%, {result['spikes_per_image']:,.0f} spikes per image.",
        "",
        "| layer | spike rate (Eq. 23) | spikes per image |",
        "|---|---|---|",
        *[
            f"| {k} | {v:.4f} | {sum(result['spikes_per_step'][k]):,.1f} |"
            for k, v in result["spike_rate"].items()
        ],
        "",
    ]


def draw_compare(out_dir: Path, results: dict[str, dict[str, Any]]) -> list[Path]:
    """Fig. 4a: the spike rate of every layer, one bar per run (log scale)."""
    plt = pyplot()
    layers = list(dict.fromkeys(k for r in results.values() for k in r["spike_rate"]))
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (run, r) in enumerate(results.items()):
        x = np.arange(len(layers)) + (i - (len(results) - 1) / 2) * width
        ax.bar(
            x,
            [r["spike_rate"].get(k, np.nan) for k in layers],
            width,
            label=f"{run} (T = {r['num_steps']})",
        )
    ax.set_xticks(range(len(layers)), layers)
    ax.set(yscale="log", ylabel="spike rate (Eq. 23)", title="layer-wise spike activity (Fig. 4a)")
    ax.legend(fontsize=7)
    written = [save_figure(fig, Path(out_dir) / "spike_rate.png")]
    # Fig. 1: one panel per run, spikes of every layer at every step, on a shared y axis
    fig, axes = plt.subplots(
        1, len(results), figsize=(4.5 * len(results), 3.8), sharey=True, squeeze=False
    )
    for ax, (run, r) in zip(axes[0], results.items(), strict=True):
        for layer, per_step in r["spikes_per_step"].items():
            ax.plot(np.arange(1, len(per_step) + 1), per_step, label=layer)
        ax.set(xlabel="time step t", title=run, xscale="log" if r["num_steps"] > 100 else "linear")
        ax.title.set_fontsize(8)
    axes[0][0].set_ylabel("spikes per image")
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("average spikes per layer and time step (Fig. 1)", fontsize=10)
    written.append(save_figure(fig, Path(out_dir) / "spikes_per_step.png"))
    return written


def compare_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    return [
        "| run | T | accuracy | spikes per image |",
        "|---|---|---|---|",
        *[
            f"| {run} | {r['num_steps']} | {100 * r['accuracy']:.2f}% | "
            f"{r['spikes_per_image']:,.0f} |"
            for run, r in results.items()
        ],
        "",
    ]
