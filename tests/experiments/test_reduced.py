"""The reduced-scale comparison on real digits (``mnist5k_comparison``): its members, its
ANN of the spiking network's plan, and its report's statistics from hand-made metrics."""

from __future__ import annotations

import math

import pytest

from experiments.bntt import reduced
from experiments.core import registry, sweeps
from experiments.core.config import ConfigError
from experiments.core.data.dataset import DatasetFacts, facts_line

PLAN = ("c16", "c16", "p", "c32", "c32", "p", "f128")


@pytest.fixture(scope="module")
def record():
    return sweeps.resolve_new(registry.lookup("mnist5k_comparison"), [])


def test_the_members_differ_from_the_bntt_run_only_where_the_papers_rows_do(record):
    bntt = registry.get("mnist5k_bntt").config.flat()
    rows = {}
    for m in record["members"]:
        keys = sweeps.member_keys(m)
        assert (keys["dataset"], keys["plan"]) == ("mnist5k", PLAN)  # one network throughout
        changed = {k for k, v in keys.items() if k in bntt and bntt[k] != v}
        if keys["method"] == "ann":
            assert keys["norm"] == "bn" and keys["conversion_steps"] == (100, 500, 1000)
            continue
        assert changed <= {"norm", "num_steps", "seed", "analyses"}, m["key"]
        rows.setdefault((keys["norm"], keys["num_steps"]), []).append(keys["seed"])
    # BNTT and no normalisation at T = 25 over three seeds; the rest one seed each
    assert rows == {
        ("bntt", 25): [0, 1, 2],
        ("none", 25): [0, 1, 2],
        ("none", 100): [0],
        ("bn", 25): [0],
        ("tdbn", 25): [0],
        ("layernorm", 25): [0],
    }
    # the three networks Table 3 compares are analysed for robustness, the rest are not
    robust = {
        m["key"] for m in record["members"] if "robustness" in sweeps.member_keys(m)["analyses"]
    }
    assert robust == {"ann", "surrogate", "bntt"}
    assert sweeps.member_keys(record["members"][1])["num_steps"] == 100  # the surrogate baseline


def test_the_ann_takes_the_spiking_networks_plan():
    ann = registry.get("mnist5k_ann").config
    net = ann.network_config
    assert (net.arch, net.plan, net.norm, net.img_size, net.in_channels) == (
        "custom",
        PLAN,
        "bn",
        28,
        1,
    )
    snn = registry.get("mnist5k_bntt").config.network_config
    assert [(s.name, s.kind, s.features, s.pool) for s in net.layers] == [
        (s.name, s.kind, s.features, s.pool) for s in snn.layers
    ]
    dense = ann.replace(plan=("f32", "f16")).network_config  # the ANN flattens the images
    assert dense.in_features == 28 * 28 and not dense.takes_images
    with pytest.raises(ConfigError, match="plan applies to arch=custom only"):
        ann.replace(arch="vgg9")
    with pytest.raises(ConfigError, match=r"plan=c8,x3: word 2 \('x3'\).*unknown word"):
        ann.replace(plan=("c8", "x3"))


def test_facts_line_names_the_samples_the_shape_the_classes_and_the_source():
    facts = DatasetFacts("toy", (28, 28, 1), 10, 4000, 1000, "a package, split 4:1")
    assert facts_line(facts) == (
        "4,000 training / 1,000 test samples of 28×28×1, 10 classes; a package, split 4:1"
    )
    assert (
        facts_line(DatasetFacts("toy", (64,), 3, 9, 3)) == "9 training / 3 test samples of "
        "64, 3 classes"
    )
    assert facts_line(facts, normalize=True).endswith(
        "split 4:1; standardised with the training set's statistics"
    )


def _metrics(accuracy, spikes, seconds, steps=25, gamma=None, exit_step=None):
    """Hand-made final metrics of a BNTT-family run (accuracy read out at every step: linear
    from 10 % at t = 1 to ``accuracy`` at t = T; JSON keys, as read back)."""
    at = {str(t): 0.1 + (accuracy - 0.1) * (t - 1) / (steps - 1) for t in range(1, steps + 1)}
    out = {
        "test_accuracy": accuracy,
        "spikes_per_image": spikes,
        "wall_time_s": seconds,
        "accuracy_vs_T": at,
        "spike_rate": {"conv1": spikes / 1e5, "fc1": spikes / 2e5},
        "early_exit": None,
        "gamma_means": {},
        "exit_sweep": None,
    }
    if gamma is not None:
        out["gamma_means"] = gamma
        out["early_exit"] = {
            "threshold": 0.1,
            "relative": False,
            "step": exit_step,
            "accuracy": at[str(exit_step)],
        }
        out["exit_sweep"] = {
            kind: [
                {"threshold": th, "step": exit_step, "accuracy": at[str(exit_step)]}
                for th in (0.1, 0.2)
            ]
            for kind in ("absolute", "relative")
        }
    return out


def _hand_made(record):
    gamma = {"conv1": [1.0] * 20 + [0.5] * 5, "fc1": [0.2] * 10 + [0.05] * 15}
    made = {
        "bntt": _metrics(0.97, 2.0e5, 100, gamma=gamma, exit_step=20),
        "bntt_seed1": _metrics(0.95, 2.2e5, 110, gamma=gamma, exit_step=22),
        "bntt_seed2": _metrics(0.96, 2.4e5, 120, gamma=gamma, exit_step=24),
        "none": _metrics(0.90, 1.0e5, 90),
        "none_seed1": _metrics(0.92, 1.0e5, 90),
        "none_seed2": _metrics(0.94, 1.0e5, 90),
        "surrogate": _metrics(0.93, 9.0e5, 400, steps=100),
    }
    return [(m, made[m["key"]]) for m in record["members"] if m["key"] in made]


def test_a_row_is_one_network_over_its_seeds_as_mean_and_sample_deviation(record):
    members = _hand_made(record)
    groups = reduced.networks(members)
    assert list(groups) == [("bntt", 25), ("none", 25), ("none", 100)]  # BNTT first
    lines = reduced.normalisation_lines(groups, record["paper"])
    rows = {
        tuple(line.split(" | ")[:2]): line.split(" | ")
        for line in lines
        if line.startswith("| ") and line[2].isalpha() and "network" not in line
    }
    bntt = rows[("| BNTT", "25")]
    # 97, 95, 96: mean 96, sample sd 1 (n - 1 = 2); spikes 2.0, 2.2, 2.4e5: sd 2e4
    assert bntt[2:6] == ["3", "96.00 ± 1.00%", "220,000 ± 20,000", "110 ± 10 s"]
    # read out at t = 1 every run is at 10 %; at t = 25 at its accuracy
    assert bntt[6] == "10.00 ± 0.00%" and bntt[10] == "96.00 ± 1.00%"
    assert bntt[-1] == "90.5% |"  # the paper's CIFAR-10 value, as context
    assert rows[("| No normalisation", "100")][2:4] == ["1", "93.00%"]
    # BNTT 96 ± 1 against 92 ± 2: +4 points, over sqrt(1/3 + 4/3) standard errors
    (difference,) = [line for line in lines if line.startswith("BNTT against")]
    assert "+4.00 points" in difference
    assert f"{4 / math.sqrt(1 / 3 + 4 / 3):.1f} standard errors" in difference


def test_the_early_exit_section_gives_every_seed_and_where_each_layers_gamma_falls(record):
    members = _hand_made(record)
    folders = {m["key"]: m["folder"] for m in record["members"]}
    lines = reduced.early_exit_lines(reduced.networks(members), folders)
    text = "\n".join(lines)
    assert "| mean ± sd | 22.0 ± 2.0 |" in text  # exits at 20, 22, 24
    # conv1's γ stays 1 for 20 steps then 0.5: peak 1 at t = 1, 0.5 at T, above 0.1 to the end
    assert "| conv1 | 1.000 (t = 1) | 0.500 | 0.50 | 25 |" in text
    # fc1's falls below the threshold after step 10
    assert "| fc1 | 0.200 (t = 1) | 0.050 | 0.25 | 10 |" in text
    assert f"![gamma]({folders['bntt']}/gamma.png)" in text
