"""Plots and ``report.md`` of a BNTT-family run: our numbers beside the paper's, spike rates,
accuracy against T, and the γ-based early exit (Fig. 3, 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.config import ExperimentConfig
from experiments.core.data import facts_line, on_images
from experiments.core.files import write_text
from experiments.core.plots import plot_curves, pyplot, save_figure


def write_plots(out_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """Training curves, spikes per layer and step, γᵗ per layer and step, accuracy vs T."""
    plt = pyplot()
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
        written += _early_exit_plots(out_dir, metrics)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    steps = sorted(metrics["accuracy_vs_T"], key=int)
    ax.plot(steps, [100 * metrics["accuracy_vs_T"][t] for t in steps], marker="o")
    ax.set(xlabel="inference time steps T", ylabel="test accuracy (%)", title="accuracy vs latency")
    written.append(save_figure(fig, out_dir / "accuracy_vs_T.png"))
    return written


def _early_exit_plots(out_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """``gamma.png`` (Fig. 3 / journal Fig. 4): the mean γᵗ of every layer and their maximum
    over layers, with the threshold and the exit region; beside it the same relative to each
    layer's peak (the relative rule). ``exit_sweep.png`` (Fig. 6 / journal Fig. 7): accuracy
    and T_exit against the threshold."""
    plt = pyplot()
    means = {k: np.asarray(v) for k, v in metrics["gamma_means"].items()}
    steps = np.arange(1, len(next(iter(means.values()))) + 1)
    ee = metrics["early_exit"]
    sweep = {
        kind: {r["threshold"]: r["step"] for r in rows}
        for kind, rows in metrics["exit_sweep"].items()
    }
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, kind in zip(axes, ("absolute", "relative"), strict=True):
        curves = {k: v / max(v.max(), 1e-12) if kind == "relative" else v for k, v in means.items()}
        # the maximum (the exit rule reads it) thin and dashed beneath: every layer stays seen
        ax.plot(
            steps,
            np.max(list(curves.values()), axis=0),
            "k--",
            lw=0.8,
            zorder=1,
            label="max over layers",
        )
        for layer, curve in curves.items():
            ax.plot(steps, curve, lw=1.4, alpha=0.85, zorder=2, label=layer)
        if ee["relative"] == (kind == "relative"):  # the run's own rule
            threshold, exit_step = ee["threshold"], ee["step"]
        else:  # the other rule at the paper's 0.1
            threshold, exit_step = 0.1, sweep[kind][0.1]
        ax.axhline(threshold, color="r", ls="--", lw=0.9, label=f"threshold {threshold:g}")
        ax.axvspan(exit_step + 0.5, steps[-1] + 0.5, color="0.85", label=f"exit: T > {exit_step}")
        ylabel = "mean γᵗ / its peak" if kind == "relative" else "mean γᵗ"
        title = f"{kind} threshold" + (" (ours)" if kind == "relative" else " (Fig. 3)")
        ax.set(xlabel="time step t", ylabel=ylabel, xlim=(0.5, steps[-1] + 0.5), title=title)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6, ncol=2)
    written = [save_figure(fig, out_dir / "gamma.png")]

    fig, ax = plt.subplots(figsize=(6.5, 4))
    twin = ax.twinx()
    for i, (kind, rows) in enumerate(metrics["exit_sweep"].items()):
        t = [r["threshold"] for r in rows]
        ax.plot(t, [100 * r["accuracy"] for r in rows], f"C{i}o-", ms=3, label=f"{kind}: accuracy")
        twin.plot(t, [r["step"] for r in rows], f"C{i}s--", ms=3, label=f"{kind}: T_exit")
    ax.set(
        xlabel="threshold",
        ylabel="test accuracy (%)",
        title="early exit against the threshold (Fig. 6)",
    )
    twin.set_ylabel("T_exit")
    ax.legend(fontsize=7, loc="lower left")
    twin.legend(fontsize=7, loc="lower right")
    written.append(save_figure(fig, out_dir / "exit_sweep.png"))
    return written


def _pct(fraction: float) -> str:  # our accuracies are fractions
    return f"{100 * fraction:.2f}%"


def _paper_pct(percent: float | None) -> str:  # the paper's are percentages
    return "–" if percent is None else f"{percent:.2f}%"


def _setup_line(config: ExperimentConfig, metrics: dict) -> str:
    """The run in one line: the network, the data and the schedule (or where it was trained)."""
    network = config.network_config
    plan = f" {','.join(network.plan)}" if network.plan else ""
    if metrics.get("imported"):
        how = (
            f"imported from the checkpoint {metrics['imported']} (trained elsewhere, not here), "
            f"tested in {metrics['wall_time_s']:.0f} s."
        )
    else:
        how = (
            f"{metrics['epochs_run']} epochs, batch {config.batch_size}, {config.optimizer} lr "
            f"{config.lr}, {metrics['wall_time_s']:.0f} s."
        )
    return (
        f"{network.arch.upper()}{plan} ({network.norm}), T = {network.num_steps}, "
        f"leak {network.leak}{', hard reset' if network.reset == 'hard' else ''}, "
        f"{config.dataset_label}, {how}"
    )


def _metric_rows(config: ExperimentConfig, metrics: dict) -> list[str]:
    """Accuracy, the early exit and the spikes beside the paper's."""
    paper, ee = metrics.get("paper", {}), metrics["early_exit"]
    exit_rows = ee and [
        f"| early exit (every layer's mean γᵗ < {ee['threshold']}"
        f"{' × its peak' if ee['relative'] else ''} after T_exit) | "
        f"T_exit = {ee['step']}: {_pct(ee['accuracy'])} | {_paper_exit(paper)} |"
    ]
    return [
        "| metric | ours | paper |",
        "|---|---|---|",
        f"| test accuracy (T = {config.network_config.num_steps}{on_images(metrics)}) | "
        f"{_pct(metrics['test_accuracy'])} | {_paper_pct(paper.get('accuracy'))} |",
        f"| best test accuracy during training | {_pct(metrics['best_test_accuracy'])} | – |",
        *(exit_rows or []),
        f"| spikes per image (all layers, all steps) | {metrics['spikes_per_image']:.0f} | "
        f"{paper.get('spikes_per_image', '–')} |",
        "",
    ]


def write_report(out_dir: Path, name: str, config: ExperimentConfig, metrics: dict) -> Path:
    """``report.md``: our numbers beside the paper's, spike rates, early exit, plots."""
    ee = metrics["early_exit"]  # None for a network without BNTT's γᵗ
    accuracy_vs_t = sorted(metrics["accuracy_vs_T"].items(), key=lambda kv: int(kv[0]))
    lines = [
        f"# {name}",
        "",
        _setup_line(config, metrics),
        "",
        f"Data: {facts_line(config.facts, config.normalize)}.",
        "",
        *_metric_rows(config, metrics),
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
        *[f"| {t} | {_pct(a)} |" for t, a in accuracy_vs_t],
        "",
        *(_flat_gamma_note(metrics) if ee else []),
        *(_exit_table(metrics) if ee else []),
        "![curves](curves.png) ![spikes](spikes_per_step.png)",
        "",
        "![accuracy vs T](accuracy_vs_T.png)"
        + (" ![gamma](gamma.png) ![exit sweep](exit_sweep.png)" if ee else ""),
        "",
    ]
    return write_text(out_dir / "report.md", "\n".join(lines))


#: A layer whose mean γᵗ varies by less than this fraction of its peak over the steps is flat.
FLAT_GAMMA = 0.05


def _flat_gamma_note(metrics: dict[str, Any]) -> list[str]:
    """Say so when training left γᵗ flat over the steps, and which thresholds of the sweep
    table below still exit early (read from that table, so the two always agree)."""
    spread = max((max(m) - min(m)) / max(m) for m in metrics["gamma_means"].values() if max(m) > 0)
    if spread >= FLAT_GAMMA:
        return []
    steps = len(next(iter(metrics["gamma_means"].values())))
    exits = [
        f"{row['threshold']:g}{' × the peak' if kind == 'relative' else ''} (T_exit = "
        f"{row['step']})"
        for kind, rows in metrics["exit_sweep"].items()
        for row in rows
        if row["step"] < steps
    ]
    found = (
        f"only these thresholds of the table below exit early: {', '.join(exits)}"
        if exits
        else "no threshold of the table below, absolute or relative, exits early"
    )
    return [
        f"*Every layer's mean γᵗ varies by less than {100 * spread:.1f}% of its peak over the "
        f"steps: training has barely told the steps apart, and {found}. The rise and fall of "
        "the BNTT paper's Fig. 3 needs a longer schedule or a higher learning rate.*",
        "",
    ]


def _exit_table(metrics: dict[str, Any]) -> list[str]:
    """The threshold sweep of Fig. 6 (the paper's absolute threshold and our relative one)."""
    absolute, relative = metrics["exit_sweep"]["absolute"], metrics["exit_sweep"]["relative"]
    return [
        "## Early exit against the threshold (Fig. 6)",
        "",
        "| threshold | T_exit | accuracy | relative: T_exit | relative: accuracy |",
        "|---|---|---|---|---|",
        *[
            f"| {a['threshold']:g} | {a['step']} | {100 * a['accuracy']:.2f}% | {r['step']} | "
            f"{100 * r['accuracy']:.2f}% |"
            for a, r in zip(absolute, relative, strict=True)
        ],
        "",
    ]


def _paper_exit(paper: dict[str, Any]) -> str:
    if "early_exit_accuracy" not in paper:
        return "–"
    return f"T_exit = {paper.get('early_exit_steps', '?')}: {paper['early_exit_accuracy']:.2f}%"
