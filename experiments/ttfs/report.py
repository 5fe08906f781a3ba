"""Plots and ``report.md`` of a TTFS run (Park & Yoon): our numbers beside the paper's Table 2
columns, the spiking network's check, and the temporal kernels over training (Fig. 2, 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.core.config import ExperimentConfig
from experiments.core.data import on_images
from experiments.core.files import write_text
from experiments.core.plots import plot_curves, pyplot, save_figure


def warnings(metrics: dict[str, Any]) -> list[str]:
    """What is wrong with a finished TTFS run: a spiking network that disagrees with its
    surrogate (they are the same network and must agree)."""
    snn = metrics["snn"]
    if not snn["images"] or snn["agreement"] == 1.0:
        return []
    differ = round((1 - snn["agreement"]) * snn["images"])
    return [
        f"BUG: the spiking network predicts another class than its surrogate on {differ} of "
        f"{snn['images']} test images (largest logit difference "
        f"{snn['max_logit_difference']:.3g}). They are the same network and must agree; "
        "please report this with the results folder."
    ]


def _series(history: list[dict[str, Any]], prefix: str) -> dict[str, list[float]]:
    """``{layer: [value per epoch]}`` of the history keys ``train_<prefix>/<layer>``."""
    out: dict[str, list[float]] = {}
    for h in history:
        for key, value in h.items():
            if key.startswith(f"train_{prefix}/"):
                out.setdefault(key.split("/", 1)[1], []).append(value)
    return out


def write_plots(out_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """Training curves; test accuracy and spikes per image per epoch (Fig. 3); spikes per
    layer; τ per layer (Fig. 5), the representation range [ẑ_m, ẑ_M] and the kernel error
    (Fig. 2) per epoch."""
    plt = pyplot()
    history = metrics["history"]
    written = [plot_curves(out_dir, history)]
    epochs = [h["epoch"] for h in history]

    tested = [h for h in history if "test_spikes_per_image" in h]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot([h["epoch"] for h in tested], [100 * h["test_accuracy"] for h in tested], "C0")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy and spikes (Fig. 3)")
    twin = ax.twinx()
    twin.plot([h["epoch"] for h in tested], [h["test_spikes_per_image"] for h in tested], "C1")
    twin.set_ylabel("spikes per image", color="C1")
    written.append(save_figure(fig, out_dir / "accuracy_and_spikes.png"))

    fig, ax = plt.subplots(figsize=(7, 3.8))
    layers = list(metrics["spikes_per_layer"])
    ax.bar(range(len(layers)), [metrics["spikes_per_layer"][k] for k in layers])
    ax.set_xticks(range(len(layers)), layers, rotation=60, fontsize=7)
    ax.set(ylabel="spikes per image", title="spikes per layer (test set)")
    written.append(save_figure(fig, out_dir / "spikes_per_layer.png"))

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8))
    for layer, taus in _series(history, "tau").items():
        ax1.plot(epochs, taus, label=layer)
    ax1.set(xlabel="epoch", ylabel="τ", title="temporal kernel τ per layer (Fig. 5)")
    ax1.legend(fontsize=6, ncol=2)
    z_min, z_max = _series(history, "z_min"), _series(history, "z_max")
    for i, layer in enumerate(z_min):
        ax2.plot(epochs, z_max[layer], color=f"C{i % 10}", label=layer)
        ax2.plot(epochs, z_min[layer], color=f"C{i % 10}", ls="--")
    ax2.set(
        xlabel="epoch",
        ylabel="ẑ_M (solid), ẑ_m (dashed)",
        yscale="log",
        title="representation range (Fig. 2b)",
    )
    errors = [_series(history, f"error_{kind}") for kind in ("max", "min", "precision")]
    for layer in errors[0]:
        total = [sum(e[layer][i] for e in errors) for i in range(len(epochs))]
        ax3.plot(epochs, total, label=layer)
    ax3.set(xlabel="epoch", ylabel="mean error (Eq. 10–12)", title="kernel error (Fig. 2a)")
    written.append(save_figure(fig, out_dir / "kernels.png"))
    if metrics.get("distributions"):
        written += _distribution_plots(out_dir, metrics["distributions"])
    return written


def _grid(count: int):
    plt = pyplot()
    cols = min(4, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    return fig, axes.ravel()


def _bars(ax, hist: dict[str, list[float]], **kwargs: Any) -> None:
    edges = hist["edges"]
    ax.stairs(hist["density"], edges, fill=True, alpha=0.5, **kwargs)


def _distribution_plots(out_dir: Path, dist: dict[str, Any]) -> list[Path]:
    """Fig. 7 / 17: pre-activation histograms per layer with β (black), ẑ_m (red) and ẑ_M
    (purple); Fig. 14–15: γ and β of every batch norm."""
    layers = list(dist)
    fig, axes = _grid(len(layers))
    for ax, layer in zip(axes, layers, strict=False):
        d = dist[layer]
        _bars(ax, d["z"])
        ax.axvline(d["beta_mean"], color="k", lw=0.8)
        ax.axvline(d["z_min"], color="r", lw=0.8)
        ax.axvline(d["z_max"], color="purple", lw=0.8)
        ax.set_title(layer, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle("pre-activations z (Fig. 7): mean β black, ẑ_m red, ẑ_M purple", fontsize=9)
    written = [save_figure(fig, out_dir / "preactivations.png")]
    fig, axes = _grid(len(layers))
    for ax, layer in zip(axes, layers, strict=False):
        _bars(ax, dist[layer]["gamma"], label="γ")
        _bars(ax, dist[layer]["beta"], label="β")
        ax.set_title(layer, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=7)
    fig.suptitle("batch norm γ and β per layer (Fig. 14-15, end of training)", fontsize=9)
    written.append(save_figure(fig, out_dir / "batch_norm.png"))
    return written


def _table2_rows(metrics: dict[str, Any], paper: dict[str, Any]) -> list[str]:
    """The paper's Table 2 (``paper['table2']``) with our row added, for context."""
    rows = paper.get("table2")
    if not rows:
        return []

    def cell(value: Any) -> str:
        return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    e = metrics["energy"]
    tn, sn = (e[p]["normalized"] for p in ("truenorth", "spinnaker"))
    ours = [
        "**ours**",
        "direct",
        "TTFS",
        f"{100 * metrics['test_accuracy']:.2f}",
        metrics["latency_steps"],
        f"{metrics['spikes_per_image'] / 1e6:.4f}",
        f"{100 * metrics['spike_rate']:.3f}",
        f"{100 * metrics['sparsity']:.2f}",
        "–" if tn is None else f"{tn:.2f}",
        "–" if sn is None else f"{sn:.2f}",
    ]
    return [
        "## The TTFS paper's Table 2, with our run",
        "",
        "| method | training | coding | accuracy % | time steps | spikes ×10⁶ | spike rate % "
        "| sparsity % | TrueNorth | SpiNNaker |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows],
        "| " + " | ".join(str(v) for v in ours) + " |",
        "",
    ]


def _setup_line(config: ExperimentConfig, metrics: dict) -> str:
    """The run in one line: the network, its kernel's start, the data and the schedule."""
    network, options = config.network_config, config.options
    return (
        f"TTFS {network.arch.upper()}, T = {network.time_window}, τ₀ = {network.tau0}, "
        f"t_d,0 = {network.t_d0}, input {network.input_coding}, rounding {network.rounding}; "
        f"{config.dataset_label}, {metrics['epochs_run']} epochs, batch {config.batch_size}, "
        f"{config.optimizer} lr {config.lr}, e_tar {options.target_epoch}, "
        f"λ_TR {options.lambda_tr:g}, λ_TB {options.lambda_tb:g}; {metrics['wall_time_s']:.0f} s."
    )


def _paper_value(paper: dict, key: str, fmt: str = "{}") -> str:
    return "–" if paper.get(key) is None else fmt.format(paper[key])


def _table2(metrics: dict, paper: dict) -> list[str]:
    """Table 2's metrics beside the paper's, the energies on both platforms last (normalised
    to the reference method where the run has one, else raw and not beside the paper's)."""
    e = metrics["energy"]
    reference = (e["reference"] or {}).get("name")
    energy_rows, theirs = [], []
    for platform, label in (("truenorth", "TrueNorth"), ("spinnaker", "SpiNNaker")):
        raw, normalized = e[platform]["raw"], e[platform]["normalized"]
        formula = f"S·E_dyn + K·L·E_sta, K = {e['static_step_weight']:g}"
        if normalized is not None:
            energy_rows.append(
                f"| energy on {label} ÷ {reference} (raw: {formula}) | {normalized:.2f} "
                f"({raw:.4g}) | {_paper_value(paper, f'energy_{platform}')} |"
            )
            continue
        energy_rows.append(f"| energy on {label}, raw ({formula}) | {raw:.4g} | – |")
        if paper.get(f"energy_{platform}") is not None:
            theirs.append(f"{label} {paper[f'energy_{platform}']}")
    energy_note = (
        [
            f"*The paper's energies ({', '.join(theirs)}) are normalised to TSC's on its own "
            "network and dataset (Table 2). This run has no TSC reference at its scale, so "
            "its raw energies are not comparable with them and are not placed beside them.*",
            "",
        ]
        if theirs
        else []
    )
    m = metrics
    return [
        "| metric (TTFS paper, Table 2) | ours | paper |",
        "|---|---|---|",
        f"| test accuracy{on_images(m, ' (', ')')} | {100 * m['test_accuracy']:.2f}% | "
        f"{_paper_value(paper, 'accuracy', '{:.2f}%')} |",
        f"| best test accuracy during training | {100 * m['best_test_accuracy']:.2f}% | – |",
        f"| time steps (latency) | {m['latency_steps']} | {_paper_value(paper, 'latency')} |",
        f"| spikes per image | {m['spikes_per_image']:,.0f} | "
        f"{_paper_value(paper, 'spikes_millions', '{:g}·10⁶')} |",
        f"| spike rate S/(N·H) | {100 * m['spike_rate']:.3f}% | "
        f"{_paper_value(paper, 'spike_rate', '{}%')} |",
        f"| sparsity S/N | {100 * m['sparsity']:.2f}% | {_paper_value(paper, 'sparsity', '{}%')} |",
        f"| neurons N (input included) | {m['neurons']:,} | – |",
        *energy_rows,
        "",
        *energy_note,
    ]


def _snn_and_layers(metrics: dict) -> list[str]:
    """The spiking network's agreement with the surrogate, and each layer's spikes and
    kernel."""
    snn = metrics["snn"]
    return [
        "## The spiking network",
        "",
        f"{snn['images']} test images through the integrate-and-fire network (the surrogate's "
        f"parameters, batch norm folded in): accuracy {100 * snn['accuracy']:.2f}%, the same "
        f"prediction as the surrogate for {100 * snn['agreement']:.2f}% of them, largest logit "
        f"difference {snn['max_logit_difference']:.2e}, {snn['spikes_per_image']:.1f} spikes per "
        "image.",
        "",
        "## Layers",
        "",
        "| layer | neurons | spikes per image | τ | t_d | ẑ_m | ẑ_M |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {layer} | {metrics['neurons_per_layer'][layer]:,} | "
            f"{metrics['spikes_per_layer'][layer]:.1f} | {k['tau']:.3f} | {k['t_d']:.3f} | "
            f"{k['z_min']:.4f} | {k['z_max']:.4f} |"
            for layer, k in metrics["kernels"].items()
        ],
        "",
    ]


def write_report(out_dir: Path, name: str, config: ExperimentConfig, metrics: dict) -> Path:
    """``report.md``: accuracy, spikes, spike rate, sparsity, latency and energy beside the
    paper's, the spiking network's agreement with the surrogate, and the kernels per layer.

    The paper's values come from the experiment's ``paper`` dict: ``accuracy`` (%),
    ``latency``, ``spikes_millions``, ``spike_rate`` and ``sparsity`` (%), and for energy
    normalised as in Table 2 ``energy_reference`` (``{"name", "spikes", "steps"}`` of the
    reference method) with ``energy_truenorth`` and ``energy_spinnaker``.
    """
    paper = metrics.get("paper", {})
    problems = [f"> **{w}**" for w in warnings(metrics)]
    note = [f"*{paper['note']}.*", ""] if paper.get("note") else []
    lines = [
        f"# {name}",
        "",
        *problems,
        *([""] if problems else []),
        *note,
        _setup_line(config, metrics),
        "",
        *_table2(metrics, paper),
        *_table2_rows(metrics, paper),
        *_snn_and_layers(metrics),
        "![curves](curves.png) ![accuracy and spikes](accuracy_and_spikes.png)",
        "",
        "![spikes per layer](spikes_per_layer.png)",
        "",
        "![kernels](kernels.png)",
        "",
        *(
            ["![pre-activations](preactivations.png) ![batch norm](batch_norm.png)", ""]
            if metrics.get("distributions")
            else []
        ),
    ]
    return write_text(out_dir / "report.md", "\n".join(lines))
