"""Plots and ``report.md`` for a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bntt_jax as bj
from experiments.config import ExperimentConfig


def write_plots(out_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """Training curves, spikes per layer and step, γᵗ per layer and step, accuracy vs T."""
    import matplotlib.pyplot as plt

    written = [plot_curves(out_dir, metrics["history"])]

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for layer, per_step in metrics["spikes_per_step"].items():
        ax.plot(range(1, len(per_step) + 1), per_step, label=layer)
    ax.set(
        xlabel="time step t", ylabel="spikes per image", title="spikes per layer and step (Fig. 1c)"
    )
    ax.legend(fontsize=7, ncol=2)
    written.append(save_figure(fig, out_dir / "spikes_per_step.png"))

    if metrics["gamma_means"]:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for layer, means in metrics["gamma_means"].items():
            ax.plot(range(1, len(means) + 1), means, label=layer)
        ee = metrics["early_exit"]
        ax.axhline(
            ee["threshold"], color="k", ls="--", lw=0.8, label=f"threshold {ee['threshold']}"
        )
        ax.axvline(ee["step"], color="gray", ls=":", lw=0.8, label=f"early exit T={ee['step']}")
        ax.set(xlabel="time step t", ylabel="mean γᵗ", title="BNTT γᵗ per layer (Fig. 3)")
        ax.legend(fontsize=7, ncol=2)
        written.append(save_figure(fig, out_dir / "gamma.png"))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps = sorted(metrics["accuracy_vs_T"], key=int)
    ax.plot(steps, [100 * metrics["accuracy_vs_T"][t] for t in steps], marker="o")
    ax.set(xlabel="inference time steps T", ylabel="test accuracy (%)", title="accuracy vs latency")
    written.append(save_figure(fig, out_dir / "accuracy_vs_T.png"))
    return written


def plot_curves(out_dir: Path, history: list[dict[str, Any]]) -> Path:
    """``curves.png``: train and test loss and accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    tested = [h for h in history if "test_accuracy" in h]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if tested:
        ax1.plot([h["epoch"] for h in tested], [h["test_loss"] for h in tested], label="test loss")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    ax2.plot(epochs, [100 * h["train_accuracy"] for h in history], label="train")
    if tested:
        ax2.plot(
            [h["epoch"] for h in tested], [100 * h["test_accuracy"] for h in tested], label="test"
        )
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax2.legend()
    return save_figure(fig, out_dir / "curves.png")


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary file, then a rename) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_report(
    out_dir: Path,
    name: str,
    config: ExperimentConfig,
    network: bj.NetworkConfig,
    metrics: dict[str, Any],
) -> Path:
    """``report.md``: our numbers beside the paper's, spike rates, early exit, plots."""
    paper = metrics.get("paper", {})
    ee = metrics["early_exit"]

    def pct(fraction: float) -> str:  # our accuracies are fractions
        return f"{100 * fraction:.2f}%"

    def paper_pct(percent: float | None) -> str:  # the paper's are percentages
        return "–" if percent is None else f"{percent:.2f}%"

    lines = [
        f"# {name}",
        "",
        f"{network.arch.upper()} ({network.norm}), T = {network.num_steps}, leak {network.leak}, "
        f"{config.dataset}, {metrics['epochs_run']} epochs, batch {config.batch_size}, "
        f"{config.optimizer} lr {config.lr}, {metrics['wall_time_s']:.0f} s.",
        "",
        "| metric | ours | paper |",
        "|---|---|---|",
        f"| test accuracy (T = {network.num_steps}) | {pct(metrics['test_accuracy'])} | "
        f"{paper_pct(paper.get('accuracy'))} |",
        f"| best test accuracy during training | {pct(metrics['best_test_accuracy'])} | – |",
        f"| early exit (mean γᵗ < {ee['threshold']} after T_exit) | T_exit = {ee['step']}: "
        f"{pct(ee['accuracy'])} | {_paper_exit(paper)} |",
        f"| spikes per image (all layers, all steps) | {metrics['spikes_per_image']:.0f} | "
        f"{paper.get('spikes_per_image', '–')} |",
        "",
        "## Spike rate per layer (Eq. 23: spikes over all steps per neuron)",
        "",
        "| layer | spike rate |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in metrics["spike_rate"].items()],
        "",
        "## Accuracy against inference time steps",
        "",
        "| T | accuracy |",
        "|---|---|",
        *[
            f"| {t} | {pct(a)} |"
            for t, a in sorted(metrics["accuracy_vs_T"].items(), key=lambda kv: int(kv[0]))
        ],
        "",
        "![curves](curves.png) ![spikes](spikes_per_step.png)",
        "",
        "![accuracy vs T](accuracy_vs_T.png)"
        + (" ![gamma](gamma.png)" if metrics["gamma_means"] else ""),
        "",
    ]
    return write_text(out_dir / "report.md", "\n".join(lines))


def _paper_exit(paper: dict[str, Any]) -> str:
    if "early_exit_accuracy" not in paper:
        return "–"
    return f"T_exit = {paper.get('early_exit_steps', '?')}: {paper['early_exit_accuracy']:.2f}%"
