"""The BNTT paper's comparison of methods as one sweep (Table 3, Table S1, Fig. 1, Fig. 4):
every member trained and analysed, the table's energy ratios equal to the analyses' own."""

from __future__ import annotations

import json

import pytest

from experiments.bntt import comparison
from experiments.core.config import ExperimentConfig
from experiments.core.data.digits import load_digits
from experiments.run import main

TINY = [
    "epochs=2",
    "max_train_batches=3",
    "num_steps=4",
    "conversion_steps=6,12",
    "analysis_images=60",
    "noise_sigmas=0,0.2,0.4",
    "fgsm_epsilons=0,0.04",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison") / "sweep"
    args = [a for item in TINY for a in ("--set", item)]
    assert main(["bntt_comparison_small", *args, "--out", str(out)]) == 0
    return out


def test_every_method_is_trained_analysed_and_tabled(sweep):
    record = json.loads((sweep / "sweep.json").read_text())
    assert record["complete"] and [m["key"] for m in record["members"]] == [
        "ann",
        "surrogate",
        "bntt",
    ]
    for m in record["members"]:  # each member analysed itself at its end
        assert (sweep / m["folder"] / "analyses" / "report.md").is_file()
    report = (sweep / "report.md").read_text()
    rows = {
        line.split(" | ")[0].strip("| ") + f"@{line.split(' | ')[1]}": line.split(" | ")
        for line in report.splitlines()
        if line.startswith("| ") and " | " in line
    }
    for key in ("ANN@1", "Conversion@12", "Conversion@6", "Surrogate gradient@4", "BNTT@4"):
        assert key in rows, key
    # the longest conversion is Table S1's reference
    assert rows["Conversion@12"][5] == "1.0000"
    comparison_report = (sweep / "comparison" / "report.md").read_text()
    assert "crafted on the ANN" in comparison_report
    for figure in ("spikes_per_step", "spike_rate", "energy", "robustness"):
        assert (sweep / "comparison" / f"{figure}.png").stat().st_size > 0


def test_the_conversion_energy_from_the_runs_spikes_equals_the_analysis(sweep):
    """Table 3's conversion ratio from the spikes the ANN run recorded at its end equals the
    energy analysis, which re-simulates the rebuilt conversion (two independent paths)."""
    folder = sweep / "01_ann"
    metrics = json.loads((folder / "metrics.json").read_text())
    config = ExperimentConfig.from_dict(
        json.loads((folder / "config.json").read_text())["experiment"]
    )
    data = load_digits()
    net_config = config.network_config
    analysed = json.loads(
        (folder / "analyses" / "conversion" / "energy" / "result.json").read_text()
    )
    ratio = comparison.conversion_ratio(net_config, metrics["conversion"], 12, data.test_x)
    assert ratio == pytest.approx(analysed["ratio_ann_to_snn"], rel=1e-6)
    # at a shorter T the conversion is cheaper: fewer spikes, fewer steps of input
    assert comparison.conversion_ratio(net_config, metrics["conversion"], 6, data.test_x) > ratio
