"""The keys of an ANN run: its network (the spiking network's topology with ReLU) and its
conversion to integrate-and-fire neurons (Sengupta et al. 2019) at its end. Registers the
``ann`` method. No JAX."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from bntt_jax.config import NetworkConfig, NetworkConfigError
from bntt_jax.constants import ARCHS
from experiments.core.config import ExperimentConfig
from experiments.core.data import DatasetFacts
from experiments.core.keys import (
    NETWORK_FIXES,
    PLAN_HELP,
    Check,
    check_batch_statistics,
    check_images,
    check_keys,
    choice,
    config_key,
    integer,
    network_error,
    network_takes_images,
    real,
)
from experiments.core.methods import MethodSpec, register_method

#: The normalisations an ANN takes: a standard batch norm after every hidden layer, or none.
ANN_NORMS = ("bn", "none")
FIXES = {**NETWORK_FIXES, "norm": "--set norm=bn (or none)."}


@dataclasses.dataclass(frozen=True)
class ANNNetwork:
    """The ANN of a BNTT network's topology (:class:`bntt_jax.NetworkConfig`, ReLU): a preset
    or a custom plan, as the spiking network's."""

    built: ClassVar[type] = NetworkConfig

    arch: str = config_key("mlp", f"{', '.join(ARCHS)}", choice(ARCHS))
    norm: str = config_key(
        "bn",
        "bn (standard batch norm: γ, β) or none",
        choice(
            ANN_NORMS,
            "an ANN normalises with bn (standard batch norm) or not at all.",
            "--set norm=bn (or none).",
        ),
    )
    hidden: tuple[int, ...] | None = config_key(None, "MLP hidden widths, e.g. 256,256")
    plan: tuple[str, ...] | None = config_key(None, PLAN_HELP)

    def __post_init__(self) -> None:
        check_keys(self)

    def check(self, config: ExperimentConfig) -> None:
        images = network_takes_images(self.arch, self.plan)
        check_images(config, self.arch, images)
        if self.norm == "bn":
            check_batch_statistics(config, "norm=bn normalises")

    def build(self, facts: DatasetFacts) -> NetworkConfig:
        """The network for the dataset's inputs (the MLP flattens them)."""
        common = dict(arch=self.arch, norm=self.norm, num_classes=facts.num_classes)
        shape = facts.input_shape
        try:
            if self.arch != "custom" and self.plan is not None:
                raise NetworkConfigError("plan", "plan applies to arch=custom only.")
            own = {"plan": self.plan} if self.arch == "custom" else {}
            if not network_takes_images(self.arch, self.plan):
                hidden = {"hidden": self.hidden} if self.arch == "mlp" else {}
                return NetworkConfig(**common, **own, **hidden, in_features=math.prod(shape))
            return NetworkConfig(**common, **own, img_size=shape[0], in_channels=shape[-1])
        except NetworkConfigError as err:
            raise network_error(err, dataclasses.asdict(self), FIXES, {}) from None


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How the trained ANN is converted at the end of its run (BNTT Table 3's Conversion)."""

    conversion_steps: tuple[int, ...] | None = config_key(
        (100, 500, 1000),
        "the trained ANN converted to IF neurons is tested at these T (BNTT Table 3); none: "
        "not converted",
        Check(
            lambda v: (
                isinstance(v, tuple)
                and bool(v)
                and all(isinstance(t, int) and not isinstance(t, bool) and t >= 1 for t in v)
            ),
            "must be one or more integers >= 1 (or none).",
            "--set conversion_steps=100,500,1000 (comma-separated), or none.",
        ),
    )
    conversion_percentile: float = config_key(
        100.0,
        "thresholds from this percentile of the input currents, in (0, 100]",
        real(0.0, 100.0, open_low=True, open_high=False),
    )
    conversion_reset: str = config_key(
        "subtract", "converted neurons reset by subtract or zero", choice(("subtract", "zero"))
    )
    conversion_images: int = config_key(256, "training images that set the thresholds", integer(1))

    def __post_init__(self) -> None:
        check_keys(self)


def _load() -> Any:
    from experiments.ann.method import METHOD  # JAX: loaded once a command is checked

    return METHOD


SPEC = register_method(
    MethodSpec(
        "ann", "the ANN of the same topology (ReLU)", ANNNetwork, Conversion, _load, analysed=True
    )
)
