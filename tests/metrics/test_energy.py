"""Spike and energy metrics against the published tables: the TTFS paper's Table 2 (spike
rate, sparsity, TrueNorth and SpiNNaker energy), the BNTT paper's Table S1, and its FLOP and
45 nm CMOS energy arithmetic (Eq. 22-26, Tables 3-4) against hand counts."""

import pytest

from bntt_jax.config import NetworkConfig
from bntt_jax.metrics.energy import (
    CMOS_45NM_PJ,
    STATIC_STEP_WEIGHT,
    ann_flops,
    cmos_energy,
    energy_ratio,
    neuromorphic_energy,
    normalized_energy,
    snn_flops,
    sparsity,
    spike_rate,
)
from bntt_jax.ttfs.config import TTFSConfig

# TTFS paper, Table 2: (method, time steps L, spikes S·10⁶, spike rate %, sparsity %, TN, SN).
TABLE2_CIFAR10 = [
    ("Rate [24]", 512, 2.612, 1.82, 930.91, 6.01, 9.01),
    ("Phase [26]", 1500, 35.196, 8.36, 12544, 75, 118),
    ("Burst [27]", 1125, 6.920, 2.19, 2466, 16, 24),
    ("TSC [28]", 512, 0.193, 0.13, 68.86, 1.00, 1.00),
    ("TTFS [17]", 680, 0.069, 0.04, 24.59, 0.94, 0.71),
    ("This work E-5", 544, 0.067, 0.04, 23.88, 0.78, 0.60),
    ("This work E-4", 544, 0.049, 0.03, 17.46, 0.74, 0.54),
]
TABLE2_CIFAR100 = [
    ("Rate [24]", 512, 2.048, 1.43, 729.77, 5.42, 8.07),
    ("Phase [26]", 8950, 258, 10.29, 92095, 619, 979),
    ("Burst [27]", 3100, 25, 2.88, 8936, 63, 97),
    ("TSC [28]", 512, 0.170, 0.12, 60.57, 1.00, 1.00),
    ("TTFS [17]", 680, 0.084, 0.04, 29.94, 0.99, 0.79),
    ("This work", 544, 0.078, 0.05, 27.80, 0.82, 0.68),
]


def test_vgg16_neuron_count_includes_the_input():
    # 3,072 + 131,072 + 65,536 + 49,152 + 24,576 + 6,144 + 1,024
    assert TTFSConfig(arch="vgg16").num_neurons() == 280_576
    assert TTFSConfig(arch="vgg16", input_coding="analog").num_neurons() == 280_576 - 3072


@pytest.mark.parametrize("table", [TABLE2_CIFAR10, TABLE2_CIFAR100], ids=["cifar10", "cifar100"])
def test_table2_energy_recomputed_from_spikes_and_steps(table):
    k = STATIC_STEP_WEIGHT["ttfs"]
    ref = next(row for row in table if row[0] == "TSC [28]")
    worst = 0.0
    for _, steps, spikes, _, _, tn, sn in table:
        for platform, paper in (("truenorth", tn), ("spinnaker", sn)):
            ours = normalized_energy(spikes * 1e6, steps, ref[2] * 1e6, ref[1], platform, k)
            worst = max(worst, abs(ours / paper - 1))
    assert worst < 0.04


def test_table2_spike_rate_and_sparsity():
    n = TTFSConfig(arch="vgg16").num_neurons()
    for table in (TABLE2_CIFAR10, TABLE2_CIFAR100):
        for _, steps, spikes, rate, sparse, _, _ in table:
            # percentages, the rate to two decimals, from S printed to 3-4 digits
            assert 100 * sparsity(spikes * 1e6, n) == pytest.approx(sparse, rel=0.012)
            rate_ours = 100 * spike_rate(spikes * 1e6, n, steps)
            assert abs(rate_ours - rate) < max(0.006, 0.004 * rate)


def test_bntt_table_s1_with_its_static_weight():
    # BNTT Table S1 (TrueNorth, normalised to conversion: 419.30·10⁴ spikes, 1000 steps).
    k = STATIC_STEP_WEIGHT["bntt"]
    surrogate = normalized_energy(141.96e4, 100, 419.30e4, 1000, "truenorth", k)
    bntt = normalized_energy(13.106e4, 25, 419.30e4, 1000, "truenorth", k)
    assert surrogate == pytest.approx(0.3384, abs=5e-5)
    assert bntt == pytest.approx(0.0312, abs=6e-5)  # 0.03125, printed as 0.0312


def test_energy_by_hand_and_errors():
    assert neuromorphic_energy(100.0, 10, "truenorth", 2.0) == pytest.approx(40 + 12)
    assert neuromorphic_energy(100.0, 10, "spinnaker", 1.0) == pytest.approx(64 + 3.6)
    with pytest.raises(ValueError, match="truenorth, spinnaker"):
        neuromorphic_energy(1.0, 1, "loihi")


# VGG9 on 32×32×3 by hand (Eq. 22): k²·O²·C_in·C_out per conv, C_in·C_out per linear layer;
# 2×2 average pooling after conv2, conv4 and conv7, so fc1 sees 256·4·4 = 4096 values.
VGG9_FLOPS = {
    "conv1": 3 * 3 * 32 * 32 * 3 * 64,
    "conv2": 3 * 3 * 32 * 32 * 64 * 64,
    "conv3": 3 * 3 * 16 * 16 * 64 * 128,
    "conv4": 3 * 3 * 16 * 16 * 128 * 128,
    "conv5": 3 * 3 * 8 * 8 * 128 * 256,
    "conv6": 3 * 3 * 8 * 8 * 256 * 256,
    "conv7": 3 * 3 * 8 * 8 * 256 * 256,
    "fc1": 4096 * 1024,
    "fc2": 1024 * 10,
}


def test_flops_of_vgg9_vgg11_and_an_mlp_by_hand():
    vgg9 = NetworkConfig(arch="vgg9", img_size=32, in_channels=3, num_classes=10)
    assert ann_flops(vgg9) == VGG9_FLOPS
    assert ann_flops(vgg9)["conv1"] == 1_769_472
    # VGG11: 64,P,128,P,256,256,P,512,512,P,512,512, global average pool, fc 512→4096→classes
    vgg11 = NetworkConfig(arch="vgg11", img_size=32, in_channels=3, num_classes=100)
    f = ann_flops(vgg11)
    assert f["conv2"] == 9 * 16 * 16 * 64 * 128 and f["conv8"] == 9 * 2 * 2 * 512 * 512
    assert f["fc1"] == 512 * 4096 and f["fc2"] == 4096 * 100
    mlp = NetworkConfig(arch="mlp", in_features=64, hidden=(256, 128), num_classes=10)
    assert ann_flops(mlp) == {"fc1": 64 * 256, "fc2": 256 * 128, "fc3": 128 * 10}


def test_snn_flops_and_cmos_energy_ratio_table3_arithmetic():
    vgg9 = NetworkConfig(arch="vgg9", img_size=32, in_channels=3, num_classes=10)
    # Eq. 24 takes the rate of the spikes each layer receives: the input's for conv1, conv1's
    # for conv2, ..., fc1's for the readout
    rates = {name: 0.1 * (i + 1) for i, name in enumerate(VGG9_FLOPS)}
    flops = snn_flops(vgg9, rates, input_rate=2.0)
    names = list(VGG9_FLOPS)
    assert flops["conv1"] == pytest.approx(2.0 * VGG9_FLOPS["conv1"])
    for previous, name in zip(names, names[1:], strict=False):
        assert flops[name] == pytest.approx(rates[previous] * VGG9_FLOPS[name])
    # Eq. 25-26 with Table 4 (E_MAC = E_MULT + E_ADD = 4.6 pJ, E_AC = 0.9 pJ)
    assert CMOS_45NM_PJ["mac"] == pytest.approx(CMOS_45NM_PJ["mult"] + CMOS_45NM_PJ["add"])
    total = sum(VGG9_FLOPS.values())
    assert cmos_energy(ann_flops(vgg9), "mac") == pytest.approx(4.6 * total)
    assert cmos_energy(flops, "ac") == pytest.approx(0.9 * sum(flops.values()))
    # Table 3's ratio: with every rate r, E_ANN / E_SNN = 4.6 / (0.9 r); BNTT's 9.14x is then a
    # mean of 0.559 spikes per neuron over its 25 steps, conversion's 0.32x at 1000 steps 16.0
    for ratio in (9.14, 2.71, 1.05, 0.55, 0.32):
        r = 4.6 / (0.9 * ratio)
        uniform = dict.fromkeys(VGG9_FLOPS, r)
        assert energy_ratio(vgg9, uniform, input_rate=r) == pytest.approx(ratio)
    with pytest.raises(ValueError, match="no rate for conv7"):
        snn_flops(vgg9, {k: v for k, v in rates.items() if k != "conv7"}, 1.0)
    with pytest.raises(ValueError, match="mac, ac"):
        cmos_energy(flops, "fma")
