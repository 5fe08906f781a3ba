"""The keys of a TTFS run (Park & Yoon): its surrogate network and the training terms of
Sec. 4 (stochastic relaxation, kernel regularisation, temporal-kernel-aware batch norm), and
the paper's training setup. Registers the ``ttfs`` method. No JAX."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from bntt_jax.config import NetworkConfigError
from bntt_jax.ttfs.config import INPUT_CODINGS, POOLINGS, ROUNDINGS, TTFS_ARCHS, TTFSConfig
from experiments.core.config import ExperimentConfig
from experiments.core.data import DatasetFacts
from experiments.core.keys import (
    FINITE,
    ConfigError,
    check_batch_statistics,
    check_images,
    check_keys,
    choice,
    config_key,
    integer,
    network_error,
    real,
)
from experiments.core.methods import MethodSpec, register_method

FIXES = {
    "arch": f"--set arch=<{'|'.join(TTFS_ARCHS)}> to suit the dataset.",
    "num_steps": "--set num_steps=32 (a positive int).",
    "hidden": "--set hidden=256,256 (positive widths), or hidden=none.",
    "channels": "--set channels=<13 positive widths> (TTFS VGG-16 only), or channels=none.",
}


@dataclasses.dataclass(frozen=True)
class TTFSNetwork:
    """A TTFS surrogate network (:class:`bntt_jax.ttfs.TTFSConfig`)."""

    built: ClassVar[type] = TTFSConfig

    arch: str = config_key("mlp", f"{', '.join(TTFS_ARCHS)}", choice(TTFS_ARCHS))
    num_steps: int = config_key(25, "the time window T of every layer", integer(1))
    hidden: tuple[int, ...] | None = config_key(None, "hidden widths (MLP; FC1, FC2 of VGG-16)")
    channels: tuple[int, ...] | None = config_key(None, "VGG-16: 13 conv widths; none: 64…512")
    tau0: float = config_key(
        10.0, "initial τ of every temporal kernel, > 0", real(0.0, open_low=True)
    )
    t_d0: float = config_key(0.0, "initial t_d of every temporal kernel", FINITE)
    rounding: str = config_key(
        "ceil", f"spike-time quantiser: {', '.join(ROUNDINGS)}", choice(ROUNDINGS)
    )
    input_coding: str = config_key(
        "ttfs", f"input: {', '.join(INPUT_CODINGS)}", choice(INPUT_CODINGS)
    )
    pooling: str = config_key("max", f"2x2 pooling: {', '.join(POOLINGS)}", choice(POOLINGS))
    dropout: float = config_key(
        0.0, "dropout rate after every kernel layer, in [0, 1)", real(0.0, 1.0, open_low=False)
    )

    def __post_init__(self) -> None:
        check_keys(self)
        if self.arch != "vgg16" and self.channels is not None:
            raise ConfigError(
                "channels",
                self.channels,
                "the conv widths are for TTFS VGG-16.",
                "--set channels=none.",
            )

    def check(self, config: ExperimentConfig) -> None:
        check_images(config, self.arch, self.arch == "vgg16")
        check_batch_statistics(config, "TTFS layers normalise")

    def build(self, facts: DatasetFacts) -> TTFSConfig:
        """The surrogate network for the dataset's inputs."""
        shape: dict[str, Any] = dict(in_features=math.prod(facts.input_shape))
        if self.arch == "vgg16":
            shape = dict(img_size=facts.input_shape[0], in_channels=facts.input_shape[-1])
        try:
            return TTFSConfig(
                arch=self.arch,
                time_window=self.num_steps,
                num_classes=facts.num_classes,
                channels=self.channels,
                hidden=self.hidden,
                tau0=self.tau0,
                t_d0=self.t_d0,
                rounding=self.rounding,
                input_coding=self.input_coding,
                pooling=self.pooling,
                dropout=self.dropout,
                **shape,
            )
        except NetworkConfigError as err:
            keys = dataclasses.asdict(self)
            raise network_error(err, keys, FIXES, {"time_window": "num_steps"}) from None


@dataclasses.dataclass(frozen=True)
class TTFSTraining:
    """The training terms of Sec. 4 and the spiking network's check at the end."""

    target_epoch: int | None = config_key(
        50, "SR target epoch e_tar; none: no relaxation", integer(1)
    )
    lambda_tr: float = config_key(
        1e-5, "weight λ_TR of the kernel regularisation, >= 0", real(0.0, open_low=False)
    )
    lambda_tb: float = config_key(
        1e-5, "weight λ_TB of the TB term, >= 0", real(0.0, open_low=False)
    )
    kernel_train_start: int = config_key(
        0, "first epoch (0-based) that trains τ and t_d", integer(0)
    )
    snn_images: int | None = config_key(
        1000, "test images run as a spiking network; none: all", integer(0)
    )

    def __post_init__(self) -> None:
        check_keys(self)


def _load() -> Any:
    from experiments.ttfs.method import METHOD  # JAX: loaded once a command is checked

    return METHOD


SPEC = register_method(
    MethodSpec("ttfs", "TTFS (Park & Yoon): a surrogate DNN", TTFSNetwork, TTFSTraining, _load)
)

#: The TTFS paper's training setup (Table 3 and Sec. 6, CIFAR-10), as flat keys: the base of
#: every TTFS experiment. Inputs are intensities in [0, 1], which the input layer encodes
#: into spike times.
TTFS_TABLE3: dict[str, Any] = dict(
    method="ttfs",
    dataset="cifar10",
    arch="vgg16",
    num_steps=32,
    tau0=10.0,
    t_d0=0.0,
    normalize=False,
    optimizer="adam",
    lr=1e-3,
    lr_schedule="constant",
    weight_decay=1e-4,
    batch_size=512,
    epochs=2000,
    target_epoch=50,
    lambda_tr=1e-5,
    lambda_tb=1e-5,
)
