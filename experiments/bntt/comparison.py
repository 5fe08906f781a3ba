"""The BNTT paper's comparison of methods as one sweep: the ANN (converted at its end), the
surrogate-gradient baseline without BNTT and BNTT, trained on the same data, then analysed
side by side (Table 3, Table S1, Fig. 1, Fig. 4a, Fig. 4b, Appendix F).

Each member is a normal run that analyses itself at its end (``RUN/analyses``). Once all have
finished, :func:`write_sweep` draws every network beside the others into ``DIR/comparison``,
reusing those results (recomputing any a member lacks) and adding FGSM crafted on the ANN and
transferred to the spiking networks. It writes ``DIR/report.md``: one table with accuracy,
latency, spikes per image, the energy ratio ``E_ANN / E_method`` (Eq. 22–26) of every method
and of the conversion at each of its T, the TrueNorth energy normalised to the longest
conversion (Table S1), BNTT's early exit and the accuracy at two noise levels and one FGSM ε;
the paper's values beside ours where it prints them.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bntt_jax.metrics import energy
from experiments import analyses
from experiments.analyses.energy import input_rate
from experiments.analyses.folders import subjects_of, with_transfer
from experiments.core import run_folder
from experiments.core.config import ExperimentConfig
from experiments.core.data import data_source, load_dataset
from experiments.core.files import write_text
from experiments.core.sweeps import member_keys

#: The members' keys (the sweep's members must have exactly these).
ANN, SURROGATE, BNTT = "ann", "surrogate", "bntt"
#: The method names of Table 3.
LABELS = {ANN: "ANN", SURROGATE: "Surrogate gradient", BNTT: "BNTT"}
#: The noise levels and FGSM ε the table shows (the figures show the whole grids).
TABLE_SIGMAS = (0.2, 0.4)
TABLE_EPSILON = 0.04


def _subjects(
    path: Path, record: dict[str, Any]
) -> tuple[dict[str, analyses.Subject], dict[str, Path]]:
    """Every network of the sweep, by Table 3 label, loaded from its member's final
    checkpoint (the conversion rebuilt from the ANN's), and the folder of its own analyses."""
    out: dict[str, analyses.Subject] = {}
    saved: dict[str, Path] = {}
    loaded: dict[tuple[Any, ...], Any] = {}
    for m in record["members"]:
        folder = run_folder.inspect(path / m["folder"])
        config = ExperimentConfig.from_dict(folder.config["experiment"])
        source = data_source(config)
        if source not in loaded:
            loaded[source] = load_dataset(*source)
        run_folder.check_same_data(folder, loaded[source].fingerprint, config.data_dir)
        for s in subjects_of(
            folder.path, m["label"], config, folder.config.get("paper", {}), loaded[source]
        ):
            label = "Conversion" if s.kind == "conversion" else LABELS.get(m["key"], m["label"])
            key = f"{label} (T = {s.num_steps})"
            out[key] = dataclasses.replace(s, name=label)
            own = folder.path / "analyses"
            saved[key] = own / "conversion" if s.kind == "conversion" else own
    ordered = with_transfer(list(out.values()))
    return dict(zip(out, ordered, strict=True)), saved


def write_sweep(out_dir: Path, record: dict[str, Any], members: Any) -> list[Path]:
    """Analyse every network beside the others and write the comparison table."""
    deferred = defer_to_one_process(Path(out_dir), record)
    if deferred:
        return deferred
    written, lines = compare(Path(out_dir), record, members)
    written.append(write_text(Path(out_dir) / "report.md", "\n".join(lines)))
    return written


def defer_to_one_process(out_dir: Path, record: dict[str, Any]) -> list[Path]:
    """With several processes, the side-by-side analyses (which would need every process)
    are left to ``experiments.redraw``: ``report.md`` says so. Nothing with one process."""
    if jax.process_count() == 1:
        return []
    line = (
        f"The members are trained; the side-by-side analyses run in one process: "
        f"python -m experiments.redraw {out_dir}"
    )
    print(line, file=sys.stderr)
    return [write_text(out_dir / "report.md", f"# {record['name']}\n\n{line}\n")]


def compare(out_dir: Path, record: dict[str, Any], members: Any) -> tuple[list[Path], list[str]]:
    """The members ``ann``, ``surrogate`` and ``bntt`` (any others are left out) analysed
    side by side into ``out_dir/comparison``, and the lines of their table (``report.md``)."""
    keys = {m["key"] for m, _ in members}
    if not {ANN, SURROGATE, BNTT} <= keys:
        raise ValueError(f"a comparison sweep needs members {ANN}, {SURROGATE} and {BNTT}")
    chosen = [m for m in record["members"] if m["key"] in LABELS]
    record = {**record, "members": chosen}
    subjects, saved = _subjects(out_dir, record)
    # each member analysed itself at its end: reuse that, add FGSM transferred from the ANN
    by_run = {label: analyses.analyze_reusing(s, saved[label]) for label, s in subjects.items()}
    written = analyses.write_comparison(out_dir / "comparison", by_run)
    metrics = {m["key"]: r for m, r in members}
    return written, table_lines(record, metrics, by_run, subjects)


def conversion_ratio(config: Any, conversion: dict[str, Any], steps: int, test_x: Any) -> float:
    """``E_ANN / E_conversion`` at ``steps`` (Eq. 22–26) from the spikes per layer and step
    of one conversion simulation (its first ``steps`` steps)."""
    neurons = config.neurons_per_layer()
    rates = {
        k: float(np.sum(v[:steps])) / neurons[k] for k, v in conversion["spikes_per_step"].items()
    }
    snn = energy.snn_flops(config, rates, input_rate(test_x, steps, "poisson"))
    return energy.cmos_energy(energy.ann_flops(config), "mac") / energy.cmos_energy(snn, "ac")


def _noise(result: dict[str, Any], sigma: float) -> str:
    rows = {round(r["sigma"], 6): r for r in result.get("noise", [])}
    row = rows.get(round(sigma, 6))
    return "–" if row is None else f"{100 * row['accuracy']:.2f}%"


def _fgsm(result: dict[str, Any], epsilon: float) -> str:
    rows = {round(r["epsilon"], 6): r for r in result.get("fgsm", [])}
    row = rows.get(round(epsilon, 6))
    return "–" if row is None else f"{100 * row['accuracy']:.2f}%"


def _paper_values(record: dict[str, Any]) -> dict[str, Any]:
    """The paper's values the table shows: none but a note where the sweep's members run
    another dataset or architecture than the paper's (its ``scale``)."""
    paper = dict(record.get("paper", {}))
    scale = paper.pop("scale", None)  # the dataset and arch the paper's values are for
    changed = scale and any(
        [member_keys(m)["dataset"], member_keys(m)["arch"]] != list(scale)
        for m in record["members"]
    )
    if changed:
        paper = {
            "note": f"The paper's values are for {scale[1].upper()} on {scale[0]}; these "
            "runs differ, so they are not shown."
        }
    return paper


class _Rows:
    """The rows of the Table 3 / Table S1 comparison, one network (or conversion T) a row."""

    def __init__(
        self,
        paper: dict[str, Any],
        metrics: dict[str, dict[str, Any]],
        by_run: dict[str, dict[str, Any]],
        subjects: dict[str, analyses.Subject],
    ) -> None:
        self.table3 = {tuple(k.split("@")): v for k, v in paper.get("table3", {}).items()}
        self.metrics, self.by_run = metrics, by_run
        self.conversion = next(k for k, s in subjects.items() if s.kind == "conversion")
        self.reference = by_run[self.conversion]["energy"]["truenorth"]["raw"]
        self.lines: list[str] = []

    def paper(self, method: str, steps: int) -> str:
        row = self.table3.get((method, str(steps)))
        if row is None:
            return "– | –"
        return f"{row[0]:.1f}% | " + ("–" if row[1] is None else f"{row[1]:g}x")

    def robustness(self, label: str) -> str:
        r = self.by_run[label]["robustness"]
        if "skipped" in r:
            return "– | – | –"
        return " | ".join([*(_noise(r, s) for s in TABLE_SIGMAS), _fgsm(r, TABLE_EPSILON)])

    def ann(self, label: str, s: analyses.Subject) -> None:
        """The ANN's row, then its conversion's at every T, longest first."""
        m = self.metrics[ANN]
        self.lines.append(
            f"| ANN | 1 | {100 * m['test_accuracy']:.2f}% | – | 1.00x | – | "
            f"{self.paper('ANN', 1)} | {self.robustness(label)} |"
        )
        conversion = m["conversion"]
        longest = conversion["num_steps"]
        # keys are ints in a run's own metrics, strings once read back from JSON
        accuracy_at = {int(t): a for t, a in conversion["accuracy_at"].items()}
        spikes_at = {int(t): v for t, v in conversion["spikes_per_image_at"].items()}
        for t in sorted(accuracy_at, reverse=True):
            accuracy, spikes = accuracy_at[t], spikes_at[t]
            ratio = conversion_ratio(s.net.config, conversion, t, s.data.test_x)
            k = energy.STATIC_STEP_WEIGHT["bntt"]  # as the energy analysis counts it
            tn = energy.neuromorphic_energy(spikes, t, "truenorth", k) / self.reference
            cells = self.robustness(self.conversion) if t == longest else "– | – | –"
            self.lines.append(
                f"| Conversion | {t} | {100 * accuracy:.2f}% | {spikes:,.0f} | "
                f"{ratio:.2f}x | {tn:.4f} | {self.paper('Conversion', t)} | "
                f"{cells} |"
            )

    def snn(self, label: str, s: analyses.Subject) -> None:
        """A spiking network's row, and BNTT's early exit's."""
        e = self.by_run[label]["energy"]
        key = SURROGATE if s.name == LABELS[SURROGATE] else BNTT
        m = self.metrics[key]
        tn = e["truenorth"]["raw"] / self.reference
        self.lines.append(
            f"| {s.name} | {s.num_steps} | {100 * m['test_accuracy']:.2f}% | "
            f"{m['spikes_per_image']:,.0f} | {e['ratio_ann_to_snn']:.2f}x | {tn:.4f} | "
            f"{self.paper(s.name, s.num_steps)} | {self.robustness(label)} |"
        )
        ee = m.get("early_exit")
        if key == BNTT and ee:
            self.lines.append(
                f"| BNTT + early exit (γ threshold {ee['threshold']:g}) | {ee['step']} | "
                f"{100 * ee['accuracy']:.2f}% | – | – | – | "
                f"{self.paper('BNTT early exit', ee['step'])} | – | – | – |"
            )


def table_lines(
    record: dict[str, Any],
    metrics: dict[str, dict[str, Any]],
    by_run: dict[str, dict[str, Any]],
    subjects: dict[str, analyses.Subject],
) -> list[str]:
    paper = _paper_values(record)
    rows = _Rows(paper, metrics, by_run, subjects)
    for label, subject in subjects.items():
        if subject.kind == "ann":
            rows.ann(label, subject)
        elif subject.kind != "conversion":  # a conversion's rows follow its ANN's
            rows.snn(label, subject)
    rows = rows.lines
    sigmas = " | ".join(f"σ = {s:g}" for s in TABLE_SIGMAS)
    note = paper.get("note")
    table_s1 = paper.get("table_s1", {})
    s1 = (
        ""
        if not table_s1
        else "Paper, Table S1 (TrueNorth, normalised to conversion): "
        + ", ".join(f"{k} {v:g}" for k, v in table_s1.items())
        + "."
    )
    return [
        f"# {record['name']}",
        "",
        record["summary"] + ".",
        "",
        *([f"*{note}*", ""] if note else []),
        f"| method | T | accuracy | spikes per image | E_ANN / E_method (Table 3) | TrueNorth / "
        f"conversion (Table S1) | paper accuracy | paper E_ANN / E | {sigmas} | FGSM ε = "
        f"{TABLE_EPSILON:g} |",
        "|---" * 11 + "|",
        *rows,
        "",
        "E_ANN / E_method: 45 nm CMOS, E_MAC = 4.6 pJ, E_AC = 0.9 pJ, SNN FLOPs from the "
        "measured spike rates with the signed Poisson input counted as spikes (Eq. 22–26). "
        "TrueNorth: S·0.4 + 2·T·0.6, over the longest conversion. FGSM: each network crafted "
        "on itself (the conversion on its ANN); the comparison also transfers the ANN's.",
        *([s1] if s1 else []),
        "",
        "Figures: [comparison](comparison/report.md) (Fig. 1, Fig. 4a, Fig. 4b, App. F, "
        "Table 3 bars); each member's own analyses are in its folder's analyses/ "
        "(BNTT: γ histograms of Fig. 5, early exit of Fig. 3 and Fig. 6 in its report).",
        "",
    ]
