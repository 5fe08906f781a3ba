"""The TTFS paper's figures over a family of runs (a sweep, :mod:`experiments.core.sweeps`).

* ``fig3``: test accuracy and spikes per image during training, against ẑ_M,0 (Fig. 3a) and
  against τ₀ (Fig. 3b).
* ``fig8``: test accuracy against spikes per image over λ_TR and λ_TB (Fig. 8), with how far
  τ drifted from τ₀.
* ``ablation``: the Table 1 family and the figures drawn from its training histories: the
  kernel error and the representation range (Fig. 2, with each error and bound apart in
  Fig. 11–13), the distribution of τ (Fig. 5) and of τ, t_d, γ, β (Fig. 14–15) during
  training, the pre-activations per layer at the end (Fig. 7 / 17), and the losses (Fig. 16).

Each writes its figures and a ``report.md`` with a table of the members beside the paper's
values where the paper prints them (Table 1; Fig. 3 and 8 are plots only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.core.files import write_text
from experiments.core.plots import pyplot, save_figure
from experiments.core.sweeps import member_keys

Members = list[tuple[dict[str, Any], dict[str, Any]]]


# ------------------------------------------------------------------ reading a member's run
def layer_series(history: list[dict[str, Any]], prefix: str) -> dict[str, np.ndarray]:
    """``{layer: values per epoch}`` of the history keys ``train_<prefix>/<layer>``."""
    out: dict[str, list[float]] = {}
    for h in history:
        for key, value in h.items():
            if key.startswith(f"train_{prefix}/"):
                out.setdefault(key.split("/", 1)[1], []).append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def layer_stack(history: list[dict[str, Any]], prefix: str) -> np.ndarray:
    """The per-layer series as one array ``[epoch, layer]``."""
    return np.stack(list(layer_series(history, prefix).values()), axis=1)


def tau_drift(member: dict[str, Any], metrics: dict[str, Any]) -> float:
    """The largest |τ − τ₀| over the layers at the end of training."""
    tau0 = member_keys(member)["tau0"]
    return max(abs(k["tau"] - tau0) for k in metrics["kernels"].values())


def _tested(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = [h for h in history if key in h]
    return [h["epoch"] for h in rows], [h[key] for h in rows]


def _epochs(history: list[dict[str, Any]]) -> np.ndarray:
    return np.asarray([h["epoch"] for h in history])


# ------------------------------------------------------------------------------ the figures
def fig3(out_dir: Path, members: Members) -> list[Path]:
    """Fig. 3: test accuracy and spikes per image per epoch, and both at the end against the
    swept value; one row of panels per series."""
    plt = pyplot()
    series = list(dict.fromkeys(m["series"] for m, _ in members))
    fig, axes = plt.subplots(len(series), 3, figsize=(16, 3.8 * len(series)), squeeze=False)
    for row, name in zip(axes, series, strict=True):
        chosen = [(m, r) for m, r in members if m["series"] == name]
        for i, (m, metrics) in enumerate(chosen):
            epochs, accuracy = _tested(metrics["history"], "test_accuracy")
            row[0].plot(epochs, 100 * np.asarray(accuracy), f"C{i}o-", ms=3, label=m["label"])
            epochs, spikes = _tested(metrics["history"], "test_spikes_per_image")
            row[1].plot(epochs, spikes, f"C{i}o-", ms=3, label=m["label"])
        row[0].set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{name}: accuracy")
        row[1].set(xlabel="epoch", ylabel="spikes per image", title=f"{name}: spikes")
        row[0].legend(fontsize=7)
        values = [m["value"] for m, _ in chosen]
        row[2].plot(values, [100 * r["test_accuracy"] for _, r in chosen], "C0o-")
        row[2].set(
            xlabel=name.split(":")[0],
            ylabel="test accuracy (%)",
            xticks=values,
            title="at the end of training",
        )
        twin = row[2].twinx()
        twin.plot(values, [r["spikes_per_image"] for _, r in chosen], "C1s--")
        twin.set_ylabel("spikes per image", color="C1")
    fig.suptitle("training results against the kernel's initialisation (Fig. 3)", fontsize=10)
    return [save_figure(fig, out_dir / "fig3.png")]


def _lambda_text(value: float | None) -> str:
    return "–" if value is None else "0" if value == 0 else f"{value:.0e}"


def fig8(out_dir: Path, members: Members, paper: dict[str, Any]) -> list[Path]:
    """Fig. 8: test accuracy against spikes per image, one panel per swept λ (each point
    labelled with its λ); last, the largest |τ − τ₀| at the end against λ."""
    plt = pyplot()
    series = list(dict.fromkeys(m["series"] for m, _ in members))
    fig, axes = plt.subplots(1, len(series) + 1, figsize=(5.5 * (len(series) + 1), 4.2))
    drift = axes[-1]
    for i, (ax, name) in enumerate(zip(axes, series, strict=False)):
        chosen = [(m, r) for m, r in members if m["series"] == name]
        spikes = [r["spikes_per_image"] for _, r in chosen]
        accuracy = [100 * r["test_accuracy"] for _, r in chosen]
        ax.plot(spikes, accuracy, f"C{i}o-", label="ours")
        for (m, _), x, y in zip(chosen, spikes, accuracy, strict=True):
            ax.annotate(
                _lambda_text(m["value"]),
                (x, y),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        for point in paper.get("points", []):
            ax.plot(point["spikes"], point["accuracy"], "kx")
            ax.annotate(
                f"paper: {point['label']}",
                (point["spikes"], point["accuracy"]),
                fontsize=7,
                xytext=(3, -9),
                textcoords="offset points",
            )
        ax.set(xlabel="spikes per image", ylabel="test accuracy (%)", title=f"{name} (Fig. 8)")
        # λ = 0 sits one decade below the smallest λ on the log axis
        values = [m["value"] for m, _ in chosen]
        positive = [v for v in values if v]
        floor = min(positive) / 10 if positive else 1.0
        xs = [v if v else floor for v in values]
        drift.plot(xs, [tau_drift(m, r) for m, r in chosen], f"C{i}o-", label=name)
    drift.set(
        xscale="log",
        xlabel="λ (0 drawn a decade below the smallest)",
        ylabel="max |τ − τ₀| over layers",
        title="kernel drift at the end of training",
    )
    drift.legend(fontsize=7)
    return [save_figure(fig, out_dir / "fig8.png")]


def _kernel_bounds(history: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per epoch, averaged over layers: the three errors (Eq. 10–12), ẑ_M, ẑ_m and the
    maximum precision error (Eq. 13) from τ and t_d."""
    tau, t_d = layer_stack(history, "tau"), layer_stack(history, "t_d")
    out = {
        kind: layer_stack(history, f"error_{kind}").mean(axis=1)
        for kind in ("max", "min", "precision")
    }
    out["z_max"] = layer_stack(history, "z_max").mean(axis=1)
    out["z_min"] = layer_stack(history, "z_min").mean(axis=1)
    out["max_precision_error"] = (np.exp(t_d / tau) - np.exp((t_d - 1.0) / tau)).mean(axis=1)
    return out


def fig2_and_11_13(out_dir: Path, members: Members) -> list[Path]:
    """Fig. 2: the total kernel error and the representation range during training; Fig.
    11–13: each error with its bound (max error and ẑ_M, min error and ẑ_m, precision error
    and the maximum precision error of Eq. 13). Means over the layers."""
    plt = pyplot()
    bounds = [(m, _epochs(r["history"]), _kernel_bounds(r["history"])) for m, r in members]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for i, (m, epochs, b) in enumerate(bounds):
        ax1.plot(epochs, b["max"] + b["min"] + b["precision"], f"C{i}", label=m["label"])
        ax2.plot(epochs, b["z_max"], f"C{i}", label=m["label"])
        ax2.plot(epochs, b["z_min"], f"C{i}--")
    ax1.set(
        xlabel="epoch",
        ylabel="mean kernel error (Eq. 10 + 11 + 12)",
        title="(a) error of the temporal kernel (Fig. 2a)",
    )
    ax2.set(
        xlabel="epoch",
        ylabel="ẑ_M (solid), ẑ_m (dashed)",
        yscale="log",
        title="(b) representation range (Fig. 2b)",
    )
    ax1.legend(fontsize=7)
    written = [save_figure(fig, out_dir / "fig2.png")]

    panels = (
        ("max", "z_max", "Fig. 11: maximum-representation error", "ẑ_M"),
        ("min", "z_min", "Fig. 12: minimum-representation error", "ẑ_m"),
        (
            "precision",
            "max_precision_error",
            "Fig. 13: precision error",
            "maximum precision error (Eq. 13)",
        ),
    )
    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    for col, (error, bound, title, bound_label) in enumerate(panels):
        for i, (m, epochs, b) in enumerate(bounds):
            axes[0, col].plot(epochs, b[error], f"C{i}", label=m["label"])
            axes[1, col].plot(epochs, b[bound], f"C{i}", label=m["label"])
        axes[0, col].set(xlabel="epoch", ylabel="mean error", title=f"(a) {title}")
        axes[1, col].set(xlabel="epoch", ylabel=bound_label, title=f"(b) {bound_label}")
    axes[0, 0].legend(fontsize=7)
    written.append(save_figure(fig, out_dir / "fig11_13.png"))
    return written


def _band(ax, epochs, low, mid, high, color: str, label: str) -> None:
    ax.fill_between(epochs, low, high, color=color, alpha=0.2, lw=0)
    ax.plot(epochs, mid, color=color, label=label)


def fig5_14_15(out_dir: Path, members: Members) -> list[Path]:
    """Fig. 5: τ of every layer during training, one panel per member; Fig. 14–15: τ, t_d
    (over layers) and γ, β (5th to 95th percentile over every batch-norm channel) during
    training."""
    plt = pyplot()
    cols = min(4, len(members))
    rows = -(-len(members) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False, sharey=True
    )
    for ax in axes.ravel()[len(members) :]:
        ax.axis("off")
    for ax, (m, r) in zip(axes.ravel(), members, strict=False):
        for layer, tau in layer_series(r["history"], "tau").items():
            ax.plot(_epochs(r["history"]), tau, lw=0.9, label=layer)
        ax.set_title(m["label"], fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("τ per layer")
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.suptitle("temporal kernel τ of every layer during training (Fig. 5)", fontsize=10)
    written = [save_figure(fig, out_dir / "fig5.png")]

    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    for i, (m, r) in enumerate(members):
        history, epochs = r["history"], _epochs(r["history"])
        for ax, name in zip(axes[:2], ("tau", "t_d"), strict=True):
            v = layer_stack(history, name)
            _band(ax, epochs, v.min(1), np.median(v, 1), v.max(1), f"C{i}", m["label"])
        for ax, name in zip(axes[2:], ("gamma", "beta"), strict=True):
            p = {q: np.asarray([h[f"bn_{name}/p{q}"] for h in history]) for q in (5, 50, 95)}
            _band(ax, epochs, p[5], p[50], p[95], f"C{i}", m["label"])
    for ax, title in zip(
        axes,
        (
            "τ (over layers)",
            "t_d (over layers)",
            "γ (5-50-95th percentile)",
            "β (5-50-95th percentile)",
        ),
        strict=True,
    ):
        ax.set(xlabel="epoch", title=title)
    axes[0].legend(fontsize=7)
    fig.suptitle("kernel and batch-norm parameters during training (Fig. 14–15)", fontsize=10)
    written.append(save_figure(fig, out_dir / "fig14_15.png"))
    return written


#: The layers of Fig. 7 (the rest are in Fig. 17); a network without them shows its own.
FIG7_LAYERS = ("conv4_1", "fc1")


def fig7_17(out_dir: Path, members: Members) -> list[Path]:
    """Fig. 7 / 17: pre-activation histograms at the end of training, one column per member
    and one row per layer, with β (black), ẑ_m (red) and ẑ_M (purple) marked."""
    plt = pyplot()
    layers = list(members[0][1]["distributions"])
    shown = [k for k in FIG7_LAYERS if k in layers] or layers[:3]
    written = []
    for name, chosen in (("fig7.png", shown), ("fig17.png", layers)):
        fig, axes = plt.subplots(
            len(chosen),
            len(members),
            squeeze=False,
            figsize=(2.4 * len(members), 1.9 * len(chosen) + 0.6),
        )
        for column, (m, r) in zip(axes.T, members, strict=True):
            for ax, layer in zip(column, chosen, strict=True):
                d = r["distributions"][layer]
                ax.stairs(d["z"]["density"], d["z"]["edges"], fill=True, alpha=0.5)
                ax.axvline(d["beta_mean"], color="k", lw=0.8)
                ax.axvline(d["z_min"], color="r", lw=0.8)
                ax.axvline(d["z_max"], color="purple", lw=0.8)
                ax.tick_params(labelsize=6)
                ax.set_title(f"{m['label']}: {layer}", fontsize=7)
        fig.suptitle(
            "pre-activations z (Fig. 7 / 17): mean β black, ẑ_m red, ẑ_M purple", fontsize=9
        )
        written.append(save_figure(fig, out_dir / name))
        if chosen == layers:
            break  # the network has no more layers than Fig. 7 shows
    return written


def fig16(out_dir: Path, members: Members) -> list[Path]:
    """Fig. 16: training and test loss per epoch."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for i, (m, r) in enumerate(members):
        ax1.plot(
            _epochs(r["history"]),
            [h["train_loss"] for h in r["history"]],
            f"C{i}",
            label=m["label"],
        )
        ax2.plot(*_tested(r["history"], "test_loss"), f"C{i}", label=m["label"])
    ax1.set(xlabel="epoch", ylabel="training loss (Eq. 9)", yscale="log", title="training loss")
    ax2.set(xlabel="epoch", ylabel="test loss (cross-entropy)", title="validation loss")
    ax1.legend(fontsize=7)
    fig.suptitle("losses (Fig. 16)", fontsize=10)
    return [save_figure(fig, out_dir / "fig16.png")]


# ---------------------------------------------------------------------------- the report
def _changes(member: dict[str, Any]) -> str:
    return (
        ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in member["changes"].items()
        )
        or "–"
    )


def _paper_cells(paper: dict[str, Any]) -> tuple[str, str]:
    accuracy = "–" if paper.get("accuracy") is None else f"{paper['accuracy']:.2f}%"
    spikes = paper.get("table1_spikes_millions", paper.get("spikes_millions"))
    return accuracy, "–" if spikes is None else f"{1e6 * spikes:,.0f}"


def members_table(members: Members) -> list[str]:
    """Our numbers per member beside the paper's (its Table 1 or 2 row, where it has one)."""
    lines = [
        "| member | changes | test accuracy | spikes / image | max \\|τ − τ₀\\| | SNN agrees "
        "| epochs | paper accuracy | paper spikes / image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, r in members:
        accuracy, spikes = _paper_cells(m["paper"])
        lines.append(
            f"| {m['label']} | {_changes(m)} | {100 * r['test_accuracy']:.2f}% | "
            f"{r['spikes_per_image']:,.1f} | {tau_drift(m, r):.3f} | "
            f"{100 * r['snn_agreement']:.1f}% | {r['epochs_run']} | {accuracy} | {spikes} |"
        )
    return lines


def write_sweep(out_dir: Path, record: dict[str, Any], members: Members) -> list[Path]:
    """Draw the sweep's figure (``record['figure']``) and write its ``report.md``."""
    figure = record["figure"]
    if figure == "fig3":
        written = fig3(out_dir, members)
    elif figure == "fig8":
        written = fig8(out_dir, members, record["paper"])
    elif figure == "ablation":
        written = [
            *fig2_and_11_13(out_dir, members),
            *fig5_14_15(out_dir, members),
            *fig7_17(out_dir, members),
            *fig16(out_dir, members),
        ]
    else:
        raise ValueError(f"unknown TTFS sweep figure {figure!r}")
    first = member_keys(members[0][0])
    bugs = [
        f"> **BUG: the spiking network of {m['label']} predicts another class than its "
        f"surrogate on {100 * (1 - r['snn_agreement']):.1f}% of the test images checked.**"
        for m, r in members
        if r["snn"]["images"] and r["snn_agreement"] != 1.0
    ]
    note = record["paper"].get("note")
    lines = [
        f"# {record['name']}",
        "",
        *bugs,
        *([""] if bugs else []),
        record["summary"] + ".",
        "",
        *([f"*{note}*", ""] if note else []),
        f"Every member: {first['dataset']}, {first['arch']}, T = {first['num_steps']}, "
        f"{first['epochs']} epochs, batch {first['batch_size']}, {first['optimizer']} lr "
        f"{first['lr']}"
        + (f"; overrides {' '.join(record['overrides'])}" if record["overrides"] else "")
        + ".",
        "",
        *members_table(members),
        "",
        *[f"![{p.stem}]({p.name})" for p in written],
        "",
    ]
    written.append(write_text(out_dir / "report.md", "\n".join(lines)))
    return written
