"""The registered experiments of the TTFS paper (Park & Yoon): Tables 1 and 2.

Every entry has the paper's settings (Table 3, :data:`experiments.ttfs.config.TTFS_TABLE3`) and
values, and a reduced-scale twin ``<name>_small`` on scikit-learn's digits (a TTFS MLP
64-128-128-10, T = 32, 30 epochs, SR's target epoch 10, inputs in [0, 1]) that runs in about
ten seconds on a 2-core CPU and shows the row's effect qualitatively; its report still sets
the paper's CIFAR values beside ours, for reference only.
"""

from __future__ import annotations

import math
from typing import Any

from experiments.core.config import ExperimentConfig
from experiments.core.registry import Member, Sweep, register, register_sweep
from experiments.ttfs import figures
from experiments.ttfs.config import TTFS_TABLE3

#: The reference of the paper's normalised energy (Table 2): TSC (Han & Roy, ECCV 2020).
TSC = {
    "cifar10": {"name": "TSC", "spikes": 0.193e6, "steps": 512},
    "cifar100": {"name": "TSC", "spikes": 0.170e6, "steps": 512},
}

#: Table 2's published rows: (method, training, coding, accuracy %, time steps, spikes ×10⁶,
#: spike rate %, sparsity %, TrueNorth, SpiNNaker), shown beside ours for context.
TABLE2 = {
    "cifar10": [
        [
            "Han et al. 2020 (RMP)",
            "conversion",
            "rate",
            93.39,
            512,
            2.612,
            1.82,
            930.91,
            6.01,
            9.01,
        ],
        ["Kim et al. 2018", "conversion", "phase", 91.21, 1500, 35.196, 8.36, 12544, 75, 118],
        ["Park et al. 2019", "conversion", "burst", 91.41, 1125, 6.920, 2.19, 2466, 16, 24],
        ["Han & Roy 2020", "conversion", "TSC", 93.57, 512, 0.193, 0.13, 68.86, 1.00, 1.00],
        [
            "Park et al. 2020 (T2FSNN)",
            "conversion",
            "TTFS",
            91.43,
            680,
            0.069,
            0.04,
            24.59,
            0.94,
            0.71,
        ],
        ["Zhou et al. 2021", "direct", "TTFS", 92.68, None, None, None, 62.00, None, None],
        ["This work (λ_TB = 1e-5)", "direct", "TTFS", 91.90, 544, 0.067, 0.04, 23.88, 0.78, 0.60],
        ["This work (λ_TB = 1e-4)", "direct", "TTFS", 91.49, 544, 0.049, 0.03, 17.46, 0.74, 0.54],
    ],
    "cifar100": [
        [
            "Han et al. 2020 (RMP)",
            "conversion",
            "rate",
            69.40,
            512,
            2.048,
            1.43,
            729.77,
            5.42,
            8.07,
        ],
        ["Kim et al. 2018", "conversion", "phase", 68.66, 8950, 258, 10.29, 92095, 619, 979],
        ["Park et al. 2019", "conversion", "burst", 68.77, 3100, 25, 2.88, 8936, 63, 97],
        ["Han & Roy 2020", "conversion", "TSC", 70.87, 512, 0.170, 0.12, 60.57, 1.00, 1.00],
        [
            "Park et al. 2020 (T2FSNN)",
            "conversion",
            "TTFS",
            68.79,
            680,
            0.084,
            0.04,
            29.94,
            0.99,
            0.79,
        ],
        ["This work", "direct", "TTFS", 65.98, 544, 0.078, 0.05, 27.80, 0.82, 0.68],
    ],
}

#: The reduced scale: the digits as intensities, a TTFS MLP, the digits' epochs and batch.
SMALL = dict(
    dataset="digits",
    arch="mlp",
    hidden=(128, 128),
    channels=None,
    epochs=30,
    batch_size=32,
    eval_batch_size=360,
    eval_every=5,
    snn_images=None,
)
#: SR's target epoch at the reduced scale (a third of its 30 epochs).
SMALL_TARGET_EPOCH = 10


def register_ttfs(
    name: str, table: str, row: str, result: str, changes: dict[str, Any], paper: dict[str, Any]
) -> None:
    """Register ``name`` (Table 3 with ``changes``) and its digits twin ``<name>_small``."""
    full = ExperimentConfig.from_flat({**TTFS_TABLE3, **changes})
    data = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}[full.dataset]
    register(name, f"{table}: {row}, VGG-16 {data} (paper {result})", full, paper)
    small = {**TTFS_TABLE3, **changes, **SMALL}
    if small.get("target_epoch") is not None:
        small["target_epoch"] = SMALL_TARGET_EPOCH
    note = (
        f"reduced scale (a TTFS MLP on the digits): the paper's values are for VGG-16 on {data}, "
        "shown for reference only"
    )
    register(
        f"{name}_small",
        f"{table}: {row}, reduced scale: TTFS MLP on the digits",
        ExperimentConfig.from_flat(small),
        # no energy reference: normalising a digits MLP to TSC's CIFAR network means nothing
        {**{k: v for k, v in paper.items() if k != "energy_reference"}, "note": note},
    )


def _table1(accuracy: float, spikes_1e4: float, row: str) -> dict[str, Any]:
    return {
        "source": f"TTFS paper, Table 1 (CIFAR-10, {row})",
        "accuracy": accuracy,
        "spikes_millions": spikes_1e4 / 100,
        "latency": 544,
        "energy_reference": TSC["cifar10"],
        "table2": TABLE2["cifar10"],
    }


def _table2(dataset: str, row: int, source: str, **extra: Any) -> dict[str, Any]:
    _, _, _, accuracy, steps, spikes, rate, sparsity, tn, sn = TABLE2[dataset][row]
    return {
        "source": source,
        "accuracy": accuracy,
        "latency": steps,
        "spikes_millions": spikes,
        "spike_rate": rate,
        "sparsity": sparsity,
        "energy_truenorth": tn,
        "energy_spinnaker": sn,
        "energy_reference": TSC[dataset],
        "table2": TABLE2[dataset],
        **extra,
    }


# Table 1, the CIFAR-10 ablation (time steps 544 throughout).
NO_SR_TR_TB = dict(target_epoch=None, lambda_tr=0.0, lambda_tb=0.0)
register_ttfs(
    "cifar10_ttfs_sm",
    "Table 1",
    "surrogate model alone, ẑ_M,0 = 2 (t_d,0 = τ₀·ln 2)",
    "87.43%",
    {**NO_SR_TR_TB, "t_d0": 10.0 * math.log(2.0)},
    _table1(87.43, 7.23, "SM, ẑ_M,0 = 2"),
)
register_ttfs(
    "cifar10_ttfs_sm_sr",
    "Table 1",
    "SM + stochastic relaxation, ẑ_M,0 = 1",
    "91.05%",
    {"lambda_tr": 0.0, "lambda_tb": 0.0},
    _table1(91.05, 7.31, "SM+SR"),
)
register_ttfs(
    "cifar10_ttfs_sm_sr_tr",
    "Table 1",
    "SM + SR + kernel regularisation",
    "91.83%",
    {"lambda_tb": 0.0},
    _table1(91.83, 7.31, "SM+SR+TR"),
)
# Table 1's last two rows are Table 2's "this work" rows on CIFAR-10.
register_ttfs(
    "cifar10_ttfs",
    "Tables 1-2",
    "SM + SR + TR + TB, λ_TB = 1e-5",
    "91.90%, 0.067e6 spikes",
    {},
    _table2(
        "cifar10",
        6,
        "TTFS paper, Tables 1 and 2 (CIFAR-10, λ_TB = 1e-5)",
        table1_spikes_millions=0.0674,
    ),
)
register_ttfs(
    "cifar10_ttfs_tb_1e-4",
    "Tables 1-2",
    "SM + SR + TR + TB, λ_TB = 1e-4",
    "91.49%, 0.049e6 spikes",
    {"lambda_tb": 1e-4},
    _table2(
        "cifar10",
        7,
        "TTFS paper, Tables 1 and 2 (CIFAR-10, λ_TB = 1e-4)",
        table1_spikes_millions=0.0490,
    ),
)
# Table 2, CIFAR-100: 3-5,000 epochs with SR's target epoch 500-1,000 (Table 3): we take the
# lower ends.
register_ttfs(
    "cifar100_ttfs",
    "Table 2",
    "SM + SR + TR + TB",
    "65.98%, 0.078e6 spikes",
    {"dataset": "cifar100", "epochs": 3000, "target_epoch": 500},
    _table2("cifar100", 5, "TTFS paper, Table 2 (CIFAR-100)"),
)

# The TTFS embedded default, as the TTFS page's command: the SM + SR + TR + TB network of
# Table 2 at the digits' scale (the same as cifar10_ttfs_small, without the paper's values).
register(
    "digits_ttfs",
    "TTFS MLP on scikit-learn's 8x8 digits, T=32 (embedded default of the TTFS method)",
    ExperimentConfig.from_flat({**TTFS_TABLE3, **SMALL, "target_epoch": SMALL_TARGET_EPOCH}),
)


# ------------------------------------------------------------------------------ the sweeps
def _t_d0(z_max0: float, tau0: float = 10.0) -> float:
    """t_d,0 that gives the initial maximum representation ẑ_M,0 = exp(t_d,0/τ₀) (Sec. 4)."""
    return tau0 * math.log(z_max0)


#: Fig. 3: (a) SM at ẑ_M,0 = 1, 2, 3, 4 with τ₀ = 10; (b) SM+SR at ẑ_M,0 = 1 with τ₀ = 5, 10,
#: 20, 40. The paper does not print its grids; these are ours.
FIG3_Z_MAX0 = (1.0, 2.0, 3.0, 4.0)
FIG3_TAU0 = (5.0, 10.0, 20.0, 40.0)
#: Fig. 8: λ_TR (SM+SR+TR, no TB) and λ_TB (with λ_TR = 1e-5), each from 0 to 1e-1.
FIG8_LAMBDAS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def _fig3_members(small: str) -> tuple[Member, ...]:
    a, b = "(a) ẑ_M,0: SM, τ₀ = 10", "(b) τ₀: SM+SR, ẑ_M,0 = 1"
    return (
        *[
            Member(f"z{z:g}", f"SM ({z:g})", f"cifar10_ttfs_sm{small}", {"t_d0": _t_d0(z)}, a, z)
            for z in FIG3_Z_MAX0
        ],
        *[
            Member(
                f"tau{t:g}",
                f"SM+SR (1), τ₀ = {t:g}",
                f"cifar10_ttfs_sm_sr{small}",
                {"tau0": t},
                b,
                t,
            )
            for t in FIG3_TAU0
        ],
    )


def _fig8_members(small: str) -> tuple[Member, ...]:
    tr, tb = "λ_TR (SM+SR+TR, λ_TB = 0)", "λ_TB (SM+SR+TR+TB, λ_TR = 1e-5)"
    return (
        *[
            Member(
                f"tr{v:g}",
                f"λ_TR = {v:g}",
                f"cifar10_ttfs_sm_sr_tr{small}",
                {"lambda_tr": v},
                tr,
                v,
            )
            for v in FIG8_LAMBDAS
        ],
        *[
            Member(f"tb{v:g}", f"λ_TB = {v:g}", f"cifar10_ttfs{small}", {"lambda_tb": v}, tb, v)
            for v in FIG8_LAMBDAS
        ],
    )


def _ablation_members(small: str) -> tuple[Member, ...]:
    return (
        Member("sm1", "SM (1)", f"cifar10_ttfs_sm{small}", {"t_d0": 0.0}),
        Member("sm2", "SM (2)", f"cifar10_ttfs_sm{small}"),
        Member("sm3", "SM (3)", f"cifar10_ttfs_sm{small}", {"t_d0": _t_d0(3.0)}),
        Member("sm_sr", "SM+SR (1)", f"cifar10_ttfs_sm_sr{small}"),
        Member("sm_sr_tr", "SM+SR+TR (1)", f"cifar10_ttfs_sm_sr_tr{small}"),
        Member("tb1e-5", "SM+SR+TR+TB (1e-5)", f"cifar10_ttfs{small}"),
        Member("tb1e-4", "SM+SR+TR+TB (1e-4)", f"cifar10_ttfs_tb_1e-4{small}"),
    )


#: Table 1's points in Fig. 8's axes (spikes per image, accuracy %).
TABLE1_POINTS = [
    {"label": "SM+SR+TR", "spikes": 73100, "accuracy": 91.83},
    {"label": "TB 1e-5", "spikes": 67400, "accuracy": 91.90},
    {"label": "TB 1e-4", "spikes": 49000, "accuracy": 91.49},
]


def register_sweeps(
    name: str, summary: str, figure: str, members: Any, paper: dict[str, Any]
) -> None:
    """Register the sweep ``name`` over the CIFAR-10 entries and ``<name>_small`` over their
    digits twins."""
    register_sweep(
        Sweep(name, f"{summary}, VGG-16 CIFAR-10", members(""), figure, figures.write_sweep, paper)
    )
    note = (
        "Reduced scale (TTFS MLPs on the digits); the paper's values are for VGG-16 on "
        "CIFAR-10, shown for reference only."
    )
    small_paper = {k: v for k, v in paper.items() if k != "points"} | {"note": note}
    register_sweep(
        Sweep(
            f"{name}_small",
            f"{summary}, reduced scale: TTFS MLPs on the digits",
            members("_small"),
            figure,
            figures.write_sweep,
            small_paper,
        )
    )


register_sweeps(
    "fig3_ttfs",
    "Fig. 3: accuracy and spikes against ẑ_M,0 (SM) and τ₀ (SM+SR), 8 runs",
    "fig3",
    _fig3_members,
    {"source": "TTFS paper, Fig. 3 (plotted only)"},
)
register_sweeps(
    "fig8_ttfs",
    "Fig. 8: accuracy against spikes over λ_TR and λ_TB, 12 runs",
    "fig8",
    _fig8_members,
    {"source": "TTFS paper, Fig. 8 (plotted only) and Table 1", "points": TABLE1_POINTS},
)
register_sweeps(
    "fig2_ttfs",
    "Figs. 2, 5, 7, 11-17 (kernel errors, τ, t_d, γ, β, pre-activations, losses) over the "
    "Table 1 family, 7 runs",
    "ablation",
    _ablation_members,
    {"source": "TTFS paper, Table 1 and Figs. 2, 5, 7, 11-17"},
)
