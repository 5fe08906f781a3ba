"""What an analysis looks at: a trained network with its config, data, paper values and the
evaluation of its method (:class:`Subject`), and that evaluation, shared between analyses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from experiments.core.config import ExperimentConfig
from experiments.core.data import Dataset


@dataclasses.dataclass(frozen=True)
class Subject:
    """What an analysis looks at: a trained network with its config, data and paper values."""

    name: str
    net: Any  # NetworkParams (snn), ANNParams (ann) or ConvertedNetwork (conversion)
    data: Dataset
    config: ExperimentConfig
    #: ``evaluate(net, data, config)``: the network's test through
    #: :func:`experiments.core.evaluation.over_test_set` (its method's)
    evaluate: Callable[[Any, Dataset, ExperimentConfig], dict[str, Any]]
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)
    kind: str = "snn"
    #: the ANN a converted network comes from (FGSM on a conversion is crafted on it)
    source: Any = None
    #: an ANN (``{"name", "net"}``) on which FGSM is also crafted and transferred to this one
    transfer: dict[str, Any] | None = None
    #: results shared between analyses of this subject (one evaluation pass serves several)
    cache: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}.")

    @property
    def num_steps(self) -> int:
        """The time steps the network runs (1 for the ANN's single pass)."""
        if self.kind == "ann":
            return 1
        if self.kind == "conversion":
            return max(self.config.options.conversion_steps)
        return self.net.config.num_steps


#: What a subject can be.
KINDS = ("snn", "ann", "conversion")


def evaluate_on(subject: Subject, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """``subject``'s network on ``data``'s test set: ``accuracy``, ``count``, ``loss`` (``None``
    for a converted network, whose readout is no calibrated logit) and, for spiking networks,
    ``spike_rate`` per layer (Eq. 23), ``spikes_per_step`` and ``spikes_per_image``."""
    return subject.evaluate(subject.net, data, config)


def evaluation(subject: Subject) -> dict[str, Any]:
    """One evaluation of the test set, shared by the analyses of ``subject``."""
    if "evaluation" not in subject.cache:
        subject.cache["evaluation"] = evaluate_on(subject, subject.data, subject.config)
    return subject.cache["evaluation"]
