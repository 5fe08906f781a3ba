"""The BNTT papers' comparisons at a reduced scale on real images (``mnist5k_comparison``):
the normalisations of Table 1 and journal Tables 1, 4 and 5 (BNTT, none, standard BN, tdBN,
layer norm), BNTT against no normalisation over several seeds, the γ-based early exit of
Fig. 3, 5 and 6 over the same seeds, and Table 3 / Table S1 with Fig. 1, 4a, 4b and App. F
(:mod:`.comparison`, members ``ann``, ``surrogate`` and ``bntt``).

A member's row is its network (``norm`` and ``num_steps``): members that differ only in
``seed`` are one row, reported as mean ± sample standard deviation over the seeds. Every
number comes from the members' ``metrics.json`` (and, for Table 3, their analyses);
``report.md`` also says what the paper reports for VGG9 on CIFAR-10, as context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments.bntt import comparison
from experiments.core.config import ExperimentConfig
from experiments.core.data import facts_line
from experiments.core.files import write_text
from experiments.core.plots import pyplot, save_figure
from experiments.core.sweeps import member_keys

#: How the report names a normalisation (``norm``).
NORM_LABELS = {
    "bntt": "BNTT",
    "none": "No normalisation",
    "bn": "Standard BN",
    "tdbn": "tdBN",
    "layernorm": "Layer norm",
}
#: The steps at which the report gives every network's accuracy (an exit without retraining).
REPORTED_STEPS = (1, 2, 5, 10, 25)


def accuracy_at(metrics: dict[str, Any], step: int) -> float:
    """The accuracy read out after ``step`` steps (keys are ints in a run's own metrics,
    strings once read back from JSON)."""
    at = metrics["accuracy_vs_T"]
    return at[step] if step in at else at[str(step)]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _cell(values: list[float], scale: float = 1.0, fmt: str = ".2f", unit: str = "") -> str:
    mean, std = mean_std([scale * v for v in values])
    if len(values) == 1:
        return f"{mean:{fmt}}{unit}"
    return f"{mean:{fmt}} ± {std:{fmt}}{unit}"


def networks(members: Any) -> dict[tuple[str, int], list[tuple[dict, dict]]]:
    """The spiking members grouped by network ``(norm, num_steps)``, BNTT first (then
    :data:`NORM_LABELS`' order, shorter T first);
    each group's ``(member record, metrics)`` pairs differ only in their seed."""
    groups: dict[tuple[str, int], list[tuple[dict, dict]]] = {}
    for m, metrics in members:
        keys = member_keys(m)
        if keys["method"] != "bntt":
            continue
        groups.setdefault((keys["norm"], keys["num_steps"]), []).append((m, metrics))
    order = list(NORM_LABELS)
    return dict(
        sorted(
            groups.items(),
            key=lambda kv: (order.index(kv[0][0]) if kv[0][0] in order else len(order), kv[0][1]),
        )
    )


def normalisation_lines(groups: dict, paper: dict[str, Any]) -> list[str]:
    """Table 1 / journal Tables 1, 4, 5: accuracy, spikes per image and wall time per network,
    and the accuracy of an exit at a few steps (the same networks read out earlier)."""
    context = paper.get("cifar10", {})
    steps = [t for t in REPORTED_STEPS if any(t <= k[1] for k in groups)]
    rows = []
    for (norm, t), runs in groups.items():
        metrics = [r for _, r in runs]
        at = [
            _cell([accuracy_at(r, s) for r in metrics], 100, unit="%") if s <= t else "–"
            for s in steps
        ]
        rows.append(
            f"| {NORM_LABELS.get(norm, norm)} | {t} | {len(runs)} | "
            f"{_cell([r['test_accuracy'] for r in metrics], 100, unit='%')} | "
            f"{_cell([r['spikes_per_image'] for r in metrics], fmt=',.0f')} | "
            f"{_cell([r['wall_time_s'] for r in metrics], fmt='.0f', unit=' s')} | "
            + " | ".join(at)
            + f" | {context.get(f'{norm}@{t}', '–')} |"
        )
    return [
        "## Normalisations (Table 1; journal Tables 1, 4, 5)",
        "",
        "Test accuracy at T, spikes per test image (all layers, all steps), training wall time "
        "(compilation and tests included, analyses not); then the accuracy of the same network "
        "read out after t < T steps. Several seeds: mean ± sample standard deviation.",
        "",
        "| network | T | seeds | accuracy | spikes per image | wall time | "
        + " | ".join(f"accuracy at t = {s}" for s in steps)
        + " | paper, VGG9 CIFAR-10 |",
        "|---" * (7 + len(steps)) + "|",
        *rows,
        "",
        *_difference_lines(groups),
    ]


def _difference_lines(groups: dict) -> list[str]:
    """BNTT against no normalisation at BNTT's T, over their seeds."""
    bntt = next(((k, v) for k, v in groups.items() if k[0] == "bntt"), None)
    if bntt is None or ("none", bntt[0][1]) not in groups:
        return []
    ours = [r["test_accuracy"] * 100 for _, r in bntt[1]]
    base = [r["test_accuracy"] * 100 for _, r in groups[("none", bntt[0][1])]]
    (m1, s1), (m2, s2) = mean_std(ours), mean_std(base)
    error = np.sqrt(s1**2 / len(ours) + s2**2 / len(base))  # of the difference of means
    ratio = "" if error == 0 else f", {abs(m1 - m2) / error:.1f} standard errors"
    return [
        f"BNTT against no normalisation at T = {bntt[0][1]}: {m1:.2f} ± {s1:.2f}% against "
        f"{m2:.2f} ± {s2:.2f}% ({len(ours)} and {len(base)} seeds), a difference of "
        f"{m1 - m2:+.2f} points{ratio}.",
        "",
    ]


def early_exit_lines(groups: dict, folders: dict[str, str]) -> list[str]:
    """The γ-based early exit (Sec. 3.4, Fig. 3) of every BNTT run, its threshold sweep
    (Fig. 6) and where each layer's mean γᵗ falls (Fig. 3, 5), from the first seed."""
    runs = next((v for k, v in groups.items() if k[0] == "bntt"), None)
    if not runs:
        return []
    exits = [r["early_exit"] for _, r in runs]
    t = len(next(iter(runs[0][1]["gamma_means"].values())))
    first, metrics = runs[0]
    rows = [
        f"| {member_keys(m)['seed']} | {r['early_exit']['step']} | "
        f"{100 * r['early_exit']['accuracy']:.2f}% | {100 * r['test_accuracy']:.2f}% |"
        for m, r in runs
    ]
    threshold = exits[0]["threshold"]
    rule = " × its peak" if exits[0]["relative"] else ""
    gamma_rows = [
        _gamma_row(layer, np.asarray(c), threshold) for layer, c in metrics["gamma_means"].items()
    ]
    folder = folders[first["key"]]
    return [
        "## Early exit (Sec. 3.4; Fig. 3, 5, 6)",
        "",
        f"The exit step T_exit: the first step after which every layer's mean γᵗ stays below "
        f"{threshold:g}{rule} (the paper's rule and threshold); T = {t}.",
        "",
        "| seed | T_exit | accuracy at T_exit | accuracy at T |",
        "|---|---|---|---|",
        *rows,
        f"| mean ± sd | {_cell([e['step'] for e in exits], fmt='.1f')} | "
        f"{_cell([e['accuracy'] for e in exits], 100, unit='%')} | "
        f"{_cell([r['test_accuracy'] for _, r in runs], 100, unit='%')} |",
        "",
        f"Mean γᵗ per layer (seed {member_keys(first)['seed']}): its peak, its value at t = {t}, "
        f"their ratio, and the last step where it is at least {threshold:g}.",
        "",
        "| layer | peak mean γᵗ | at t = T | at T / peak | last step ≥ threshold |",
        "|---|---|---|---|---|",
        *gamma_rows,
        "",
        "Threshold sweep (Fig. 6): T_exit and its accuracy against the threshold.",
        "",
        "| threshold | T_exit (absolute) | accuracy | T_exit (relative) | accuracy |",
        "|---|---|---|---|---|",
        *_sweep_rows(metrics["exit_sweep"]),
        "",
        f"![gamma]({folder}/gamma.png) ![exit sweep]({folder}/exit_sweep.png)",
        "",
    ]


def _gamma_row(layer: str, curve: np.ndarray, threshold: float) -> str:
    """A layer's mean γᵗ: its peak, its last value, their ratio, its last step ≥ threshold."""
    above = np.nonzero(curve >= threshold)[0]
    last = int(above[-1]) + 1 if len(above) else "–"
    return (
        f"| {layer} | {curve.max():.3f} (t = {int(curve.argmax()) + 1}) | {curve[-1]:.3f} | "
        f"{curve[-1] / max(curve.max(), 1e-12):.2f} | {last} |"
    )


def _sweep_rows(exit_sweep: dict) -> list[str]:
    """The threshold sweep's rows: T_exit and its accuracy by the absolute and relative rules."""
    sweep = {kind: {row["threshold"]: row for row in rows} for kind, rows in exit_sweep.items()}
    return [
        f"| {th:g} | {a['step']} | {100 * a['accuracy']:.2f}% | "
        f"{sweep['relative'][th]['step']} | {100 * sweep['relative'][th]['accuracy']:.2f}% |"
        for th, a in sweep["absolute"].items()
    ]


def spike_lines(groups: dict, folders: dict[str, str]) -> list[str]:
    """Fig. 4a: the spike rate of every layer (Eq. 23) per network (its first seed)."""
    layers = list(next(iter(groups.values()))[0][1]["spike_rate"])
    rows = [
        f"| {NORM_LABELS.get(norm, norm)} | {t} | "
        + " | ".join(f"{runs[0][1]['spike_rate'][k]:.3f}" for k in layers)
        + f" | [{folders[runs[0][0]['key']]}]({folders[runs[0][0]['key']]}/spikes_per_step.png) |"
        for (norm, t), runs in groups.items()
    ]
    return [
        "## Spikes (Fig. 1, Fig. 4a)",
        "",
        "Spike rate per layer: spikes over all steps per neuron (Eq. 23), first seed; spikes "
        "per layer and step in each member's spikes_per_step.png.",
        "",
        "| network | T | " + " | ".join(layers) + " | per step |",
        "|---" * (3 + len(layers)) + "|",
        *rows,
        "",
    ]


def plot_accuracy_vs_steps(out_dir: Path, groups: dict) -> Path:
    """``accuracy_vs_T.png``: each network's accuracy read out after t steps (mean over its
    seeds, the band ± one standard deviation), BNTT's at low t beside the others (Table 1)."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4))
    for (norm, t), runs in groups.items():
        steps = np.arange(1, t + 1)
        acc = 100 * np.array([[accuracy_at(r, s) for s in steps] for _, r in runs])
        mean = acc.mean(axis=0)
        (line,) = ax.plot(
            steps,
            mean,
            lw=1.4,
            label=f"{NORM_LABELS.get(norm, norm)}, T = {t} "
            f"({len(runs)} seed{'s' if len(runs) > 1 else ''})",
        )
        if len(runs) > 1:
            std = acc.std(axis=0, ddof=1)
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set(
        xscale="log",
        xlabel="time steps read out t",
        ylabel="test accuracy (%)",
        title="accuracy against latency (Table 1)",
    )
    ax.legend(fontsize=7)
    return save_figure(fig, Path(out_dir) / "accuracy_vs_T.png")


def write_sweep(out_dir: Path, record: dict[str, Any], members: Any) -> list[Path]:
    """``report.md`` and ``accuracy_vs_T.png`` of the reduced-scale comparison, with Table 3's
    side-by-side analyses in ``comparison/``."""
    out_dir = Path(out_dir)
    deferred = comparison.defer_to_one_process(out_dir, record)
    if deferred:
        return deferred
    written, table3 = comparison.compare(out_dir, record, members)
    groups = networks(members)
    folders = {m["key"]: m["folder"] for m in record["members"]}
    first = ExperimentConfig.from_dict(record["members"][0]["experiment"])
    bntt = next(
        ExperimentConfig.from_dict(v[0][0]["experiment"])
        for k, v in groups.items()
        if k[0] == "bntt"
    )
    net = bntt.network
    written.append(plot_accuracy_vs_steps(out_dir, groups))
    lines = [
        f"# {record['name']}",
        "",
        record["summary"] + ".",
        "",
        f"Data: {first.dataset_label}, {facts_line(first.facts, first.normalize)}.",
        "",
        f"Network: {','.join(net.plan)} and a non-spiking readout; LIF leak {net.leak}, Poisson "
        f"inputs; {bntt.optimizer} lr {bntt.lr}, batch {bntt.batch_size}, {bntt.epochs} "
        "epochs; the ANN the same layers with ReLU and batch norm.",
        "",
        *normalisation_lines(groups, record.get("paper", {})),
        "![accuracy against T](accuracy_vs_T.png)",
        "",
        *early_exit_lines(groups, folders),
        *spike_lines(groups, folders),
        "## Methods, energy and robustness (Table 3, Table S1, Fig. 4b, App. F)",
        "",
        *table3[4:],  # its title and summary are this report's
    ]
    written.append(write_text(out_dir / "report.md", "\n".join(lines)))
    return written
