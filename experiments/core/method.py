"""What the run loop needs of a training method: a small interface of functions, as optax's
``init``/``update``.

A method (``experiments/bntt``, ``experiments/ttfs``, ``experiments/ann``) fills one
:class:`Method` with its own functions; :func:`experiments.core.runner.train` does everything
else (the epoch loop, the ledger, checkpoints, data parallelism, resume) the same way for
all. Its JAX-free side, the keys of its config, is a :class:`experiments.core.methods.MethodSpec`
whose ``load`` returns this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import optax

from bntt_jax import train as tr
from experiments.core.config import ExperimentConfig
from experiments.core.data import Dataset

#: ``step(state, x, y, seed_key, epoch) -> (state, metrics)``, jitted; ``metrics["finite"]``
#: is a vector of finiteness flags (named by ``Method.flag_names``), ``epoch`` 0-based.
TrainStep = Callable[..., tuple[Any, dict[str, Any]]]


def _no_record(net: Any) -> dict[str, float]:
    return {}


def _no_warnings(metrics: dict[str, Any]) -> list[str]:
    return []


class Method(NamedTuple):
    """A training method, as the run loop and the results folder need it.

    Attributes:
      name: the ``method`` key's value.
      init: ``(key, network_config) -> net``, a freshly initialised network.
      optimizer: ``(config, steps_per_epoch) -> optax.GradientTransformation``.
      train_step: ``config -> TrainStep`` (compiled once per set of static options).
      flag_names: ``net -> [str]``: what each finiteness flag of the step checks.
      tracked: ``metrics -> metrics``: what a step's metrics add to the epoch's means.
      describe: ``network_config -> str``, for the log.
      evaluate: ``(net, data, config) -> record``: the per-epoch test (``test_accuracy``,
        ``test_loss`` and what the history should keep).
      final_metrics: ``(net, data, config, history, paper) -> metrics``: ``metrics.json``.
      done_line: ``metrics -> str``, the last line of the log.
      write_plots: ``(out_dir, metrics) -> [Path]``.
      write_report: ``(out_dir, name, config, metrics) -> Path``: ``report.md``.
      epoch_record: ``net -> record``: what the history keeps of the network every epoch.
      warnings: ``metrics -> [str]``: what is wrong with finished results (logged, reported).
      subjects: ``(run, name, net, data, config, paper, checkpoint) -> [Subject]``: the
        networks of a finished run that the analyses of :mod:`experiments.analyses` look at
        (:class:`experiments.analyses.subject.Subject`: the run's own, and any it derives,
        such as an ANN's conversion); ``None`` for a method whose report holds its analyses.
        Its :class:`~experiments.core.methods.MethodSpec` says so without JAX (``analysed``).
    """

    name: str
    init: Callable[[Any, Any], Any]
    optimizer: Callable[[ExperimentConfig, int], optax.GradientTransformation]
    train_step: Callable[[ExperimentConfig], TrainStep]
    flag_names: Callable[[Any], list[str]]
    tracked: Callable[[dict[str, Any]], dict[str, Any]]
    describe: Callable[[Any], str]
    evaluate: Callable[[Any, Dataset, ExperimentConfig], dict[str, Any]]
    final_metrics: Callable[..., dict[str, Any]]
    done_line: Callable[[dict[str, Any]], str]
    write_plots: Callable[[Path, dict[str, Any]], list[Path]]
    write_report: Callable[[Path, str, ExperimentConfig, dict[str, Any]], Path]
    epoch_record: Callable[[Any], dict[str, float]] = _no_record
    warnings: Callable[[dict[str, Any]], list[str]] = _no_warnings
    subjects: Callable[..., list[Any]] | None = None


def train_and_test(metrics: dict[str, Any]) -> dict[str, Any]:
    """The training metrics every method tracks: loss and accuracy, averaged per epoch."""
    return {"train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"]}


def test_record(evaluation: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What an epoch's history record keeps of a test: accuracy and loss (and ``extra``)."""
    return {"test_accuracy": evaluation["accuracy"], "test_loss": evaluation["loss"], **extra}


def best_accuracy(history: list[dict[str, Any]], final: float) -> float:
    """The best test accuracy of the history (``final`` if it has none)."""
    return max([h["test_accuracy"] for h in history if "test_accuracy" in h], default=final)


# The optimiser is static data of the jitted step (TrainState.tx): the same settings give the
# same object, so a second run in one process (a resume, a notebook) reuses the compiled step.
_make_optimizer = functools.cache(tr.make_optimizer)


def optimizer(
    config: ExperimentConfig, steps_per_epoch: int, decay_mask: Any = None
) -> optax.GradientTransformation:
    """The config's optimiser and schedule (:func:`bntt_jax.train.make_optimizer`); weight
    decay on the parameters ``decay_mask`` selects (default: all)."""
    return _make_optimizer(
        config.optimizer,
        lr=config.lr,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        schedule=config.lr_schedule,
        decay_mask=decay_mask,
    )
