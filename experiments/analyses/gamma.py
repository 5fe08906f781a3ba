"""γᵗ histograms per time step (BNTT paper, Fig. 5; journal version, Fig. 6): for chosen BNTT
layers, the distribution of γᵗ over the channels at every step, each step's frequency
normalised to [0, 1] by its largest bin as the journal does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.plots import pyplot, save_figure

BINS = 30
#: The layers of Fig. 5 in VGG9.
PAPER_LAYERS = ("conv1", "conv4", "conv7")


def not_applicable(subject: Any) -> str | None:
    if subject.kind != "snn":
        return f"the {subject.kind} network has no γᵗ (only BNTT layers have them)."
    config = subject.net.config
    if config.normalization.has_gamma_t:
        return None
    return f"the network has norm={config.norm!r}, so no γᵗ."


def layers_of(config: Any) -> list[str]:
    """Fig. 5's conv1, conv4, conv7 where the network has them; else its first, middle and
    last BNTT layers."""
    names = [spec.name for spec in config.layers]
    if all(name in names for name in PAPER_LAYERS):
        return list(PAPER_LAYERS)
    return list(dict.fromkeys([names[0], names[len(names) // 2], names[-1]]))


def histograms(gamma_t: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Per step ``t`` of ``gamma_t`` ``[T, channels]``: the histogram over the channels on
    bins shared by all steps, normalised so that each step's largest bin is 1."""
    gamma_t = np.asarray(gamma_t, np.float64)
    low, high = float(gamma_t.min()), float(gamma_t.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    counts = np.stack([np.histogram(row, bins=edges)[0] for row in gamma_t]).astype(np.float64)
    frequency = counts / np.maximum(counts.max(axis=1, keepdims=True), 1)
    means = gamma_t.mean(axis=1)
    return {
        "edges": edges.tolist(),
        "frequency": frequency.tolist(),
        "mean": means.tolist(),
        "peak_step": int(np.argmax(means)) + 1,
    }


def compute(subject: Any) -> dict[str, Any]:
    params = subject.net.params
    return {
        "layers": {
            name: histograms(np.asarray(params[f"norm_{name}"]["gamma_t"]))
            for name in layers_of(subject.net.config)
        }
    }


def draw(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    plt = pyplot()
    layers = result["layers"]
    fig, axes = plt.subplots(1, len(layers), figsize=(4.5 * len(layers), 4), squeeze=False)
    for ax, (name, h) in zip(axes[0], layers.items(), strict=True):
        frequency = np.asarray(h["frequency"])
        steps = frequency.shape[0]
        edges = h["edges"]
        ax.imshow(
            frequency,
            aspect="auto",
            origin="lower",
            cmap="viridis",
            extent=(edges[0], edges[-1], 0.5, steps + 0.5),
        )
        ax.plot(h["mean"], np.arange(1, steps + 1), "w-", lw=1.2, label="mean γᵗ")
        ax.set(
            xlabel="γ value",
            ylabel="time step t",
            title=f"{name} (peak of mean: t = {h['peak_step']})",
        )
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(
        "γᵗ histograms per time step, frequency normalised to [0, 1] (Fig. 5)", fontsize=10
    )
    return [save_figure(fig, Path(out_dir) / "gamma_histograms.png")]


def report_lines(result: dict[str, Any]) -> list[str]:
    rows = [
        f"| {name} | {h['peak_step']} | {h['mean'][0]:.3f} | {max(h['mean']):.3f} | "
        f"{h['mean'][-1]:.3f} |"
        for name, h in result["layers"].items()
    ]
    return [
        "| layer | step of the peak mean γᵗ | mean γ¹ | peak | mean γᵀ |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
