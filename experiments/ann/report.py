"""Plots and ``report.md`` of an ANN run: the baseline of the BNTT paper's Table 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.config import ExperimentConfig
from experiments.core.data import facts_line, on_images
from experiments.core.files import write_text
from experiments.core.plots import plot_curves, pyplot, save_figure


def write_plots(out_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """Training curves and, for a converted ANN, its accuracy against T (Table 3) and its
    spikes per layer and step (Fig. 1a)."""
    written = [plot_curves(out_dir, metrics["history"])]
    conversion = metrics.get("conversion")
    if conversion:
        written.append(plot_conversion(out_dir, metrics))
    return written


def _paper_conversion(metrics: dict[str, Any]) -> dict[int, float]:
    return {int(t): v for t, v in metrics.get("paper", {}).get("conversion", {}).items()}


def plot_conversion(out_dir: Path, metrics: dict[str, Any]) -> Path:
    """``conversion.png``: accuracy against T (Table 3) and spikes per layer and step
    (Fig. 1a) of the converted network."""
    plt = pyplot()
    conversion = metrics["conversion"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    curve = 100 * np.asarray(conversion["accuracy_by_step"])
    ax1.plot(np.arange(1, len(curve) + 1), curve, label="converted SNN (ours)")
    ax1.axhline(100 * metrics["test_accuracy"], color="k", ls="--", lw=0.8, label="the ANN")
    paper = _paper_conversion(metrics)
    if paper:
        ax1.plot(list(paper), list(paper.values()), "rs", label="paper (Table 3)")
    ax1.set(
        xscale="log",
        xlabel="time steps T",
        ylabel="test accuracy (%)",
        title="ANN-to-SNN conversion: accuracy against T (Table 3)",
    )
    ax1.legend(fontsize=7)
    for layer, per_step in conversion["spikes_per_step"].items():
        ax2.plot(np.arange(1, len(per_step) + 1), per_step, label=layer)
    ax2.set(
        xscale="log",
        xlabel="time step t",
        ylabel="spikes per image",
        title="spikes per layer and step, conversion (Fig. 1a)",
    )
    ax2.legend(fontsize=7, ncol=2)
    return save_figure(fig, Path(out_dir) / "conversion.png")


def write_report(out_dir: Path, name: str, config: ExperimentConfig, metrics: dict) -> Path:
    """Accuracy beside the paper's, and FLOPs (Eq. 22) and energy (Eq. 25) per layer."""
    network = config.network_config
    paper = metrics.get("paper", {})
    accuracy = paper.get("accuracy")
    plan = f" {','.join(network.plan)}" if network.plan else ""
    lines = [
        f"# {name}",
        "",
        f"ANN {network.arch.upper()}{plan} ({network.norm}, ReLU), {config.dataset_label}, "
        f"{metrics['epochs_run']} epochs, batch {config.batch_size}, {config.optimizer} lr "
        f"{config.lr}, {metrics['wall_time_s']:.0f} s.",
        "",
        f"Data: {facts_line(config.facts, config.normalize)}.",
        "",
        "| metric | ours | paper |",
        "|---|---|---|",
        f"| test accuracy{on_images(metrics, ' (', ')')} | {100 * metrics['test_accuracy']:.2f}% | "
        f"{'–' if accuracy is None else f'{accuracy:.2f}%'} |",
        f"| best test accuracy during training | {100 * metrics['best_test_accuracy']:.2f}% | – |",
        f"| energy per image, 45 nm CMOS (Eq. 25, E_MAC = 4.6 pJ) | "
        f"{metrics['energy_pj'] / 1e6:.4g} µJ | – |",
        "",
        "| layer | FLOPs (Eq. 22) |",
        "|---|---|",
        *[f"| {k} | {v:,} |" for k, v in metrics["flops_per_layer"].items()],
        "",
        "![curves](curves.png)",
        "",
        *_conversion_lines(metrics),
    ]
    return write_text(out_dir / "report.md", "\n".join(lines))


def _conversion_lines(metrics: dict[str, Any]) -> list[str]:
    conversion = metrics.get("conversion")
    if not conversion:
        return ["The ANN was not converted (conversion_steps=none).", ""]
    paper = _paper_conversion(metrics)
    thresholds = ", ".join(f"{k} {v:.3g}" for k, v in conversion["thresholds"].items())
    return [
        "## ANN-to-SNN conversion (Sengupta et al. 2019; Table 3's Conversion rows)",
        "",
        f"Integrate-and-fire neurons, reset by {conversion['reset']}, thresholds from the "
        f"{conversion['percentile']:g}th percentile of the input currents on "
        f"{conversion['threshold_images']} training images over {conversion['num_steps']} "
        f"steps ({thresholds}); the same Poisson input as BNTT. One simulation of "
        f"{conversion['num_steps']} steps on {conversion['count']} test images, read at each T.",
        "",
        "| T | accuracy | paper | spikes per image |",
        "|---|---|---|---|",
        *[
            f"| {t} | {100 * a:.2f}% | "
            f"{f'{paper[int(t)]:.1f}%' if int(t) in paper else '–'} | "
            f"{conversion['spikes_per_image_at'][t]:,.0f} |"
            for t, a in conversion["accuracy_at"].items()
        ],
        "",
        "| layer | spike rate at T = " + f"{conversion['num_steps']} (Eq. 23) |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in conversion["spike_rate"].items()],
        "",
        "![conversion](conversion.png)",
        "",
    ]
