"""Smoke runs of the benchmark commands (the measurements themselves are not tests)."""

import json

import pytest

from benchmarks import step, workloads

pytestmark = pytest.mark.e2e  # the end-to-end tier


def test_step_command_prints_one_json_line(capsys):
    args = [
        "--arch",
        "vgg9",
        "--T",
        "2",
        "--batch",
        "2",
        "--img-size",
        "8",
        "--mode",
        "train",
        "--steps",
        "1",
        "--json",
    ]
    assert step.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip())
    assert result["impl"] == "jax" and result["seconds_per_step"] > 0
    assert result["image_steps_per_s"] == pytest.approx(4 / result["seconds_per_step"])
    assert result["first_call_s"] > 0 and result["peak_rss_mb"] > 0


def test_flop_count_of_vgg9_is_0_389_gflop_per_image_step():
    assert workloads.forward_gflop_per_image_step(
        workloads.network_config("vgg9", 25, 32)
    ) == pytest.approx(0.389, abs=5e-4)


def test_torch_reference_computes_the_same_logits():
    pytest.importorskip("torch")  # a benchmark extra, never a library dependency
    from benchmarks import equivalence

    for cfg in equivalence.CASES[::2]:  # VGG9 and the MLP
        for train in (False, True):
            diff, same, size = equivalence.compare(cfg, train, batch=4)
            assert size > 0 and same and diff < 1e-9, (cfg.arch, train, diff)


def test_trained_sparsity_fires_at_a_trained_networks_rate(tmp_path, monkeypatch):
    import jax

    from benchmarks import sparsity

    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path))
    cfg = workloads.network_config("vgg9", 4, 8)
    x, _ = workloads.inputs(cfg, sparsity.CALIBRATION_BATCH, seed=7)
    key = jax.random.key(2)  # the calibration's batch and key
    initial = sparsity.activity(sparsity.workload_network(cfg, "init"), x, key, "poisson")
    sparse = sparsity.workload_network(cfg, "trained")
    trained = sparsity.activity(sparse, x, key, "poisson")
    for name, (rate, surrogate) in trained.items():
        assert initial[name][0] > 0.15 and 0.015 < rate < 0.03, (name, rate)
        assert 0 < surrogate < 1
    (cached,) = tmp_path.glob("benchmarks/gamma-factors-*.json")
    factors = json.loads(cached.read_text())
    assert set(factors) == set(trained) and all(0 < f < 1 for f in factors.values())
    again = sparsity.workload_network(cfg, "trained")  # from the cache: the same parameters
    gammas = [again.params[f"norm_{n}"]["gamma_t"] for n in factors]
    for n, g in zip(factors, gammas, strict=True):
        assert (g == sparse.params[f"norm_{n}"]["gamma_t"]).all()


def test_profile_sums_a_traced_step_by_pass_layer_and_kernel():
    from benchmarks import profile

    out = profile.step_profile("vgg9", 2, 2, "init", steps=1)
    kinds = out["kinds"]
    assert out["wall"] > 0 and sum(kinds.values()) > 0
    for kind in (
        "forward: conv (compiled forward)",
        "backward: conv (compiled filter gradient)",
        "backward: conv (compiled input gradient)",
        "forward: norm (XLA)",
        "backward: conv (compiled input gradient on the support)",
    ):
        assert kinds.get(kind, 0) > 0, (kind, sorted(kinds))
    labels = [label for label, _ in out["operations"]]  # each operation names its layer
    # conv2 (32×32, 64 → 64): its backward runs the compiled kernels, named by layer and pass
    # (which operations are the largest is a timing, left to the printed table)
    assert any(label.startswith("conv2: backward: conv (compiled ") for label in labels), labels
    assert any(label.startswith("conv2: forward: conv (compiled ") for label in labels), labels
    assert profile.kind_of("", "jit(f)/transpose(jvp(x))/SpikingNetwork/norm_conv3/mul") == (
        "backward: norm (XLA)"
    )


def test_kernels_command_prints_each_kernels_rate(capfd):
    from benchmarks import kernels

    # the command re-runs itself with the ISA profile's environment: its rows reach the file
    # descriptor, not sys.stdout
    assert kernels.main(["--n", "4", "--repeats", "1", "--rate", "0.3", "--support", "0.4"]) == 0
    rows = [
        ln.strip(" |").split(" | ")
        for ln in capfd.readouterr().out.splitlines()
        if ln.startswith("| ") and "²" in ln
    ]
    assert len(rows) == 10 * len(kernels.LAYERS)  # 3 forward, 2 + 3 gradients, 2 BNTT + LIF
    assert {r[0] for r in rows} == {f"{s}², {c} → {d}" for s, c, d in kernels.LAYERS}
    dense = [r for r in rows if r[1:3] == ["input gradient", "dense"]]
    assert len(dense) == len(kernels.LAYERS) and all(r[5] == "1.00" for r in dense)  # the peak
    assert all(r[6] == "1.00×" for r in rows if r[2] == "XLA")  # each operation's reference
    assert kernels.main(["--support", "0"]) == 2
