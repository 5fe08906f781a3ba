"""The registered experiments of the BNTT papers (Kim & Panda): Table 1's CIFAR-10 rows, the
embedded digits default, and the comparison of Table 3, Table S1, Fig. 1 and Fig. 4 as a
sweep (its ANN members are :mod:`experiments.ann.entries`', by name)."""

from pathlib import Path
from typing import Any

from experiments.bntt.config import CIFAR10_VGG9, MNIST5K
from experiments.core.config import ExperimentConfig
from experiments.core.registry import Member, Sweep, get, register, register_sweep

# The embedded default: scikit-learn's digits ship inside the package, so it runs anywhere.
# A BNTT MLP (64 -> 256 -> 256 -> 10) with Poisson spikes, T = 25 as the paper's CIFAR-10 run.
register(
    "digits_bntt",
    "BNTT MLP on scikit-learn's 8x8 digits, T=25 (embedded default)",
    ExperimentConfig.from_flat(
        dict(
            dataset="digits",
            arch="mlp",
            norm="bntt",
            num_steps=25,
            leak=0.95,
            hidden=(256, 256),
            optimizer="sgd",
            lr=0.1,
            epochs=30,
            batch_size=32,
            eval_batch_size=360,
            eval_every=5,
        )
    ),
)

# The reduced-scale run on real images (experiments.bntt.config.MNIST5K: its size and epochs).
register(
    "mnist5k_bntt",
    "BNTT VGG-style net (c16,c16,p,c32,c32,p,f128) on 5,000 real MNIST digits, T=25",
    MNIST5K,
)

# Table 1 of the BNTT paper, CIFAR-10 rows, with the authors' released settings.
register(
    "cifar10_bntt",
    "Table 1: BNTT VGG9 on CIFAR-10, T=25 (paper 90.5%; early exit T=20: 90.3%)",
    CIFAR10_VGG9,
    paper={
        "source": "BNTT paper, Table 1 (CIFAR-10, BNTT and BNTT + Early Exit rows)",
        "accuracy": 90.5,
        "early_exit_accuracy": 90.3,
        "early_exit_steps": 20,
        "spikes_per_image": "13.1e4 (Table S1)",
    },
)
register(
    "cifar10_no_bntt",
    "Table 1: the same VGG9 without BNTT (surrogate-gradient baseline), T=100 (paper 88.7%)",
    CIFAR10_VGG9.replace(norm="none", num_steps=100),
    paper={
        "source": "BNTT paper, Table 1 (CIFAR-10, w.o. BNTT row: surrogate gradient, T = 100)",
        "accuracy": 88.7,
        "spikes_per_image": "141.96e4 (Table S1, Surrogate)",
    },
)
# The surrogate-gradient baseline without BNTT on the digits, at the paper's T = 100 for it.
register(
    "digits_no_bntt",
    "The digits MLP without BNTT (surrogate-gradient baseline), T=100",
    get("digits_bntt").config.replace(norm="none", num_steps=100),
)

# Table 1 of the BNTT paper, CIFAR-100 and Tiny-ImageNet rows: VGG11 (leak 0.99, batch 128 as
# the authors' VGG11 runs), SGD lr 0.3 ÷10 at 50/70/90 %, 240 and 90 epochs (paper, Sec. 4.1).
# "w.o. BNTT" is n/a in the paper (it did not converge): ours at the BNTT row's T, so that only
# the normalisation differs; "Baseline + standard BN" (journal Table 1; Fang et al. 2020 and
# Ledinauskas et al. 2020 in journal Table 4) is norm=bn, tdBN (journal Table 4) norm=tdbn.
CIFAR100_VGG11 = CIFAR10_VGG9.replace(
    dataset="cifar100", arch="vgg11", leak=0.99, num_steps=50, epochs=240, batch_size=128
)
TINY_VGG11 = CIFAR100_VGG11.replace(dataset="tiny_imagenet", num_steps=30, epochs=90)
_TABLE1 = "BNTT paper, Table 1"
for _prefix, _config, _label, _paper in (
    (
        "cifar100",
        CIFAR100_VGG11,
        "CIFAR-100",
        {"accuracy": 66.6, "early_exit_accuracy": 65.8, "early_exit_steps": 30},
    ),
    (
        "tiny_imagenet",
        TINY_VGG11,
        "Tiny-ImageNet",
        {"accuracy": 57.8, "early_exit_accuracy": 56.8, "early_exit_steps": 25},
    ),
):
    _t = _config.network.num_steps
    register(
        f"{_prefix}_bntt",
        f"Table 1: BNTT VGG11 on {_label}, T={_t} (paper {_paper['accuracy']}%; early exit "
        f"T={_paper['early_exit_steps']}: {_paper['early_exit_accuracy']}%)",
        _config,
        paper={"source": f"{_TABLE1} ({_label}, BNTT and BNTT + Early Exit rows)", **_paper},
    )
    register(
        f"{_prefix}_no_bntt",
        f"Table 1: the same VGG11 without BNTT, T={_t} (paper: did not converge, n/a)",
        _config.replace(norm="none"),
        paper={"source": f"{_TABLE1} ({_label}, w.o. BNTT row: n/a, it did not converge)"},
    )
    register(
        f"{_prefix}_bn",
        f"Journal Table 1: Baseline + standard BN, VGG11 on {_label}, T={_t}",
        _config.replace(norm="bn"),
        paper={
            "source": f"BNTT journal paper, Table 1 ({_label}, Baseline + standard BN; "
            "values in a figure our text does not hold)"
        },
    )
    register(
        f"{_prefix}_tdbn",
        f"Journal Table 4: tdBN (Zheng et al. 2020) in place of BNTT, VGG11 on {_label}, T={_t}",
        _config.replace(norm="tdbn"),
        paper={
            "source": f"BNTT journal paper, Table 4 ({_label}; values in a figure our text "
            "does not hold)"
        },
    )
# CIFAR-10's "Baseline + standard BN" row and the other normalisations of journal Tables 4
# (tdBN, Zheng et al. 2020) and 5 (layer norm): VGG9 at BNTT's T = 25, only norm differs.
register(
    "cifar10_bn",
    "Journal Table 1: Baseline + standard BN, VGG9 on CIFAR-10, T=25",
    CIFAR10_VGG9.replace(norm="bn"),
    paper={
        "source": "BNTT journal paper, Table 1 (CIFAR-10, Baseline + standard BN; values "
        "in a figure our text does not hold)"
    },
)
register(
    "cifar10_tdbn",
    "Journal Table 4: tdBN (Zheng et al. 2020) in place of BNTT, VGG9 on CIFAR-10, T=25",
    CIFAR10_VGG9.replace(norm="tdbn"),
    paper={
        "source": "BNTT journal paper, Table 4 (BN techniques; values in a figure our "
        "text does not hold; BNTT there: 90.5%)"
    },
)
register(
    "cifar10_layernorm",
    "Table 6 (journal Table 5): layer norm in place of BNTT, VGG9 on CIFAR-10 (paper 75.4%)",
    CIFAR10_VGG9.replace(norm="layernorm"),
    paper={
        "source": "BNTT paper, Table 6 (Appendix G; journal Table 5): Layer Normalization "
        "75.4%, BNTT 90.5%",
        "accuracy": 75.4,
    },
)

# Table 2 of the BNTT paper: DVS-CIFAR10, events binned into 20 frames of 42×42 (Appendix C),
# one frame per step. The network of Appendix C / Fig. 8 follows Wu et al. (2019): their
# DVS-CIFAR10 feature extractor 128C3-128C3-AP2-128C3-256C3-AP2 and a 1024 dense layer (BNTT
# and LIF after each), then the readout. Fig. 8 is not in our text: this plan is our reading
# of that description. SGD lr 0.3 ÷10 at 50/70/90 %, 60 epochs (paper); batch 64 (ours).
DVS_CIFAR10 = CIFAR10_VGG9.replace(
    dataset="cifar10_dvs",
    arch="custom",
    plan=("c128", "c128", "p", "c128", "c256", "p", "f1024"),
    encoder="frames",
    num_steps=20,
    epochs=60,
    batch_size=64,
    eval_batch_size=100,
)
register(
    "dvs_cifar10_bntt",
    "Table 2: BNTT on DVS-CIFAR10, 20 event frames of 42x42, one per step (paper 63.2%)",
    DVS_CIFAR10,
    paper={"source": "BNTT paper, Table 2 and Appendix C (DVS-CIFAR10)", "accuracy": 63.2},
)
register(
    "dvs_cifar10_no_bntt",
    "Table 2: the same network without BNTT (paper: n/a, it did not converge)",
    DVS_CIFAR10.replace(norm="none"),
    paper={"source": "BNTT paper, Table 2 (DVS-CIFAR10, w.o. BNTT row: n/a)"},
)

# Sequential MNIST (journal paper, Table 3): FC(1,256)-FC(256,256)-FC(256,10), one pixel per
# step (784 steps), BNTT after each hidden layer. The paper gives no schedule for it: SGD as its
# other runs (momentum 0.9, lr 0.1 as the digits entry, ÷10 at 50/70/90 %), batch 128, 60
# epochs (ours). Its accuracies are in an image our text does not hold.
SMNIST = ExperimentConfig.from_flat(
    dict(
        dataset="mnist",
        arch="mlp",
        norm="bntt",
        encoder="sequential",
        num_steps=784,
        hidden=(256, 256),
        optimizer="sgd",
        lr=0.1,
        weight_decay=5e-4,
        epochs=60,
        batch_size=128,
        eval_batch_size=500,
        eval_every=5,
    )
)
_SMNIST_PAPER = {
    "source": "BNTT journal paper, Table 3 (Sequential MNIST; values in a figure "
    "our text does not hold)"
}
register(
    "smnist_bntt",
    "Journal Table 3: BNTT MLP 1-256-256-10 on Sequential MNIST, one pixel per step (T=784)",
    SMNIST,
    paper=_SMNIST_PAPER,
)
register(
    "smnist_no_bntt",
    "Journal Table 3: the same MLP without BNTT (surrogate-gradient baseline), T=784",
    SMNIST.replace(norm="none"),
    paper=_SMNIST_PAPER,
)
# The same network on the digits presented pixel by pixel (64 steps): Sequential MNIST's code
# path at a scale that trains here.
register(
    "seq_digits_bntt",
    "Sequential digits: the Sequential MNIST MLP on the 8x8 digits, one pixel per step (T=64)",
    get("digits_bntt").config.replace(encoder="sequential", num_steps=64, leak=None),
)
register(
    "seq_digits_no_bntt",
    "Sequential digits without BNTT (surrogate-gradient baseline), T=64",
    get("seq_digits_bntt").config.replace(norm="none"),
)


def _draw_comparison(out_dir: Path, record: dict[str, Any], members: Any) -> list[Path]:
    """The comparison's analyses side by side and its table (:mod:`.comparison`)."""
    from experiments.bntt.comparison import write_sweep  # JAX: loaded when it is drawn

    return write_sweep(out_dir, record, members)


def _comparison_members(suffix: str) -> tuple[Member, ...]:
    prefix = "digits" if suffix else "cifar10"
    return (
        Member("ann", "ANN (and its conversion)", f"{prefix}_ann"),
        Member("surrogate", "Surrogate gradient (w.o. BNTT)", f"{prefix}_no_bntt"),
        Member("bntt", "BNTT", f"{prefix}_bntt"),
    )


_COMPARISON = (
    "Table 3, Table S1, Fig. 1, Fig. 4a/4b, App. F: ANN and its conversion, surrogate "
    "gradient w.o. BNTT and BNTT, trained and analysed side by side"
)
register_sweep(
    Sweep(
        "bntt_comparison",
        f"{_COMPARISON}, VGG9 CIFAR-10 (3 runs)",
        _comparison_members(""),
        "comparison",
        _draw_comparison,
        paper={
            "source": "BNTT paper, Table 3 and Table S1 (Appendix E), VGG9 on CIFAR-10",
            "scale": ["cifar10", "vgg9"],
            # (method, T): [accuracy %, E_ANN / E_method]
            "table3": {
                "ANN@1": [91.5, 1.0],
                "Conversion@1000": [91.2, 0.32],
                "Conversion@500": [90.9, 0.55],
                "Conversion@100": [89.3, 2.71],
                "Surrogate gradient@100": [88.7, 1.05],
                "BNTT@25": [90.5, 9.14],
                "BNTT early exit@20": [90.3, None],
            },
            "table_s1": {
                "Conversion (T = 1000)": 1.0,
                "Surrogate (T = 100)": 0.3384,
                "BNTT (T = 25)": 0.0312,
            },
        },
    )
)
register_sweep(
    Sweep(
        "bntt_comparison_small",
        f"{_COMPARISON}, reduced scale: MLPs on the digits (3 runs)",
        _comparison_members("_small"),
        "comparison",
        _draw_comparison,
        paper={
            "note": "Reduced scale (64-256-256-10 MLPs on scikit-learn's digits); the "
            "paper's values are for VGG9 on CIFAR-10 and are not shown here."
        },
    )
)


def _draw_reduced(out_dir: Path, record: dict[str, Any], members: Any) -> list[Path]:
    """The reduced-scale comparison's tables and figures (:mod:`.reduced`)."""
    from experiments.bntt.reduced import write_sweep  # JAX: loaded when it is drawn

    return write_sweep(out_dir, record, members)


# The papers' comparisons on real images at a reduced scale: mnist5k_bntt's network and its
# ANN. BNTT and no normalisation at T = 25 over 3 seeds (Table 1, the early exit), the
# surrogate baseline at the paper's T = 100 for it, standard BN, tdBN and layer norm at T = 25
# (journal Tables 1, 4, 5), the ANN and its conversion (Table 3, S1). Every member has the
# analyses of Fig. 1, 4a and the energy; robustness (Fig. 4b, App. F: a T = 1000 conversion
# simulated 13 times) only the three networks Table 3 compares.
_CHEAP = {"analyses": ("gamma", "activity", "energy")}
_MNIST5K = (
    Member("ann", "ANN (and its conversion)", "mnist5k_ann"),
    Member(
        "surrogate",
        "Surrogate gradient (w.o. BNTT), T=100",
        "mnist5k_bntt",
        {"norm": "none", "num_steps": 100},
    ),
    Member("bntt", "BNTT, seed 0", "mnist5k_bntt"),
    *(
        Member(f"bntt_seed{s}", f"BNTT, seed {s}", "mnist5k_bntt", {"seed": s, **_CHEAP})
        for s in (1, 2)
    ),
    *(
        Member(
            f"none{'' if s == 0 else f'_seed{s}'}",
            f"No normalisation, T=25, seed {s}",
            "mnist5k_bntt",
            {"norm": "none", "seed": s, **_CHEAP},
        )
        for s in (0, 1, 2)
    ),
    *(
        Member(norm, f"{label}, T=25", "mnist5k_bntt", {"norm": norm, **_CHEAP})
        for norm, label in (("bn", "Standard BN"), ("tdbn", "tdBN"), ("layernorm", "Layer norm"))
    ),
)
register_sweep(
    Sweep(
        "mnist5k_comparison",
        "Table 1, journal Tables 1/4/5, Table 3, Table S1, Fig. 1, 3, 4, 5, 6, App. F at a "
        "reduced scale: the mnist5k network on 5,000 real MNIST digits (11 runs)",
        _MNIST5K,
        "reduced",
        _draw_reduced,
        paper={
            "note": "Reduced scale: a c16,c16,p,c32,c32,p,f128 network on 5,000 MNIST digits. "
            "The paper's Table 3 is VGG9 on CIFAR-10: ANN 91.5%; conversion at T = 1000, 500, "
            "100: 91.2%, 90.9%, 89.3% (E_ANN / E 0.32x, 0.55x, 2.71x); surrogate gradient at "
            "T = 100: 88.7% (1.05x); BNTT at T = 25: 90.5% (9.14x), early exit at T = 20: "
            "90.3%. Table S1 (TrueNorth over the conversion): surrogate 0.3384, BNTT 0.0312.",
            "cifar10": {"bntt@25": "90.5%", "none@100": "88.7%", "layernorm@25": "75.4%"},
        },
    )
)
