"""Plots and ``report.md`` of an ANN run: the baseline of the BNTT paper's Table 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.config import ExperimentConfig
from experiments.report import plot_curves, write_text


def write_plots(out_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """Training curves."""
    return [plot_curves(out_dir, metrics["history"])]


def write_report(
    out_dir: Path, name: str, config: ExperimentConfig, network: Any, metrics: dict[str, Any]
) -> Path:
    """Accuracy beside the paper's, and FLOPs (Eq. 22) and energy (Eq. 25) per layer."""
    paper = metrics.get("paper", {})
    accuracy = paper.get("accuracy")
    lines = [
        f"# {name}",
        "",
        f"ANN {network.arch.upper()} ({network.norm}, ReLU), {config.dataset}, "
        f"{metrics['epochs_run']} epochs, batch {config.batch_size}, {config.optimizer} lr "
        f"{config.lr}, {metrics['wall_time_s']:.0f} s.",
        "",
        "| metric | ours | paper |",
        "|---|---|---|",
        f"| test accuracy | {100 * metrics['test_accuracy']:.2f}% | "
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
    ]
    return write_text(out_dir / "report.md", "\n".join(lines))
