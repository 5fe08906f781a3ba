"""The ANN method for the run loop (:class:`experiments.core.method.Method`): the non-spiking
network of the same topology (:mod:`bntt_jax.baselines.ann`; BNTT Table 3), converted at the
end of its run to integrate-and-fire neurons (:mod:`bntt_jax.baselines.conversion`) and tested
at the Conversion rows' T."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bntt_jax.baselines import ann, conversion
from bntt_jax.metrics import energy
from experiments.analyses.subject import Subject
from experiments.ann import report
from experiments.core import run_folder
from experiments.core.config import ExperimentConfig
from experiments.core.data import Dataset
from experiments.core.evaluation import host_copy, over_test_set, test_totals
from experiments.core.method import (
    Method,
    best_accuracy,
    optimizer,
    test_record,
    train_and_test,
)

#: Offset of the conversion's random streams (thresholds, then evaluation) from the seed.
CONVERSION_STREAM = 30_011


@functools.cache
def _train_step() -> Any:
    def step(state, x, y, seed_key, epoch):
        del seed_key, epoch  # the ANN's step draws nothing and knows no epoch
        return ann.train_step(state, x, y)

    return jax.jit(step)


_eval_step = jax.jit(ann.eval_step)


def evaluate(net: ann.ANNParams, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """Test accuracy and loss of an ANN."""
    return test_totals(lambda x, y, i, mask: _eval_step(net, x, y, mask), data, config)[1]


def convert(net: ann.ANNParams, data: Dataset, config: ExperimentConfig) -> Any:
    """The ANN converted to IF neurons (:func:`bntt_jax.baselines.conversion.convert`),
    thresholds set on the first ``conversion_images`` training images over the longest
    ``conversion_steps``; the same ANN, data and config always give the same network."""
    options = config.options
    return conversion.convert(
        net,
        data.train_x[: options.conversion_images],
        jax.random.key(config.seed + CONVERSION_STREAM),
        steps=max(options.conversion_steps),
        percentile=options.conversion_percentile,
        reset=options.conversion_reset,
    )


def evaluate_conversion(converted: Any, data: Dataset, config: ExperimentConfig) -> dict:
    """The converted network on the test set, one simulation of the longest of
    ``conversion_steps`` read at every step: accuracy at each T (the Table 3 rows), and of the
    longest the spike rate per layer (Eq. 23), spikes per layer per step (Fig. 1) and spikes
    per image; ``spikes_per_image_at`` gives the spikes of each shorter T."""
    all_steps = sorted(config.options.conversion_steps)
    steps = all_steps[-1]
    key = jax.random.key(config.seed + CONVERSION_STREAM + 1)

    def batch(x: Any, y: Any, i: int, mask: None) -> dict[str, Any]:  # unpadded: no mask
        m = conversion.evaluate_converted(converted, x, y, jax.random.fold_in(key, i), steps)
        return {**m, "count": len(y)}

    totals = over_test_set(
        batch, data, config.eval_batch_size, max_batches=config.max_eval_batches, shard=False
    )
    count = int(totals["count"])
    layers = [spec.name for spec in converted.config.layers]
    neurons = converted.config.neurons_per_layer()
    per_step = {k: totals[f"spikes/{k}"] / count for k in layers}
    cumulative = np.cumsum(sum(per_step.values()), dtype=np.float64)
    return {
        "num_steps": steps,
        "count": count,
        "accuracy": float(totals["correct"][-1]) / count,
        "accuracy_at": {int(t): float(totals["correct"][t - 1]) / count for t in all_steps},
        "accuracy_by_step": (totals["correct"] / count).tolist(),
        "spike_rate": {k: float(per_step[k].sum()) / neurons[k] for k in layers},
        "spikes_per_step": {k: per_step[k].tolist() for k in layers},
        "spikes_per_image": float(cumulative[-1]),
        "spikes_per_image_at": {int(t): float(cumulative[t - 1]) for t in all_steps},
    }


def final_metrics(
    net: ann.ANNParams,
    data: Dataset,
    config: ExperimentConfig,
    history: list[dict[str, Any]],
    paper: dict[str, Any],
) -> dict[str, Any]:
    """``metrics.json`` of a finished ANN run: accuracy, FLOPs and E_ANN (Eq. 22, 25), and
    its conversion at every ``conversion_steps``."""
    ev = evaluate(net, data, config)
    flops = energy.ann_flops(net.config)
    options, converted_metrics = config.options, None
    if options.conversion_steps:
        converted = convert(host_copy(net), data, config)
        converted_metrics = {
            **evaluate_conversion(converted, data, config),
            "reset": options.conversion_reset,
            "percentile": options.conversion_percentile,
            "threshold_images": min(options.conversion_images, len(data.train_x)),
            "thresholds": {k: float(v) for k, v in converted.thresholds.items()},
        }
    return {
        "complete": True,
        "method": "ann",
        "test_accuracy": ev["accuracy"],
        "test_loss": ev["loss"],
        "best_test_accuracy": best_accuracy(history, ev["accuracy"]),
        "num_test_images": ev["count"],
        "flops_per_layer": flops,
        "energy_pj": energy.cmos_energy(flops, "mac"),  # Eq. 25
        "conversion": converted_metrics,
        "history": history,
        "paper": paper,
        "epochs_run": len(history),
    }


def done_line(metrics: dict[str, Any]) -> str:
    line = f"E_ANN = {metrics['energy_pj'] / 1e6:.4g} µJ per image (Eq. 25)"
    converted = metrics.get("conversion")
    if converted:
        line += "; converted: " + ", ".join(
            f"T={t} {100 * a:.2f}%" for t, a in converted["accuracy_at"].items()
        )
    return line


def _test(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    return test_record(evaluate(net, data, config))


def subjects(
    run: Path,
    name: str,
    net: ann.ANNParams,
    data: Dataset,
    config: ExperimentConfig,
    paper: dict[str, Any],
    checkpoint: str,
) -> list[Subject]:
    """What the analyses look at in a finished run: the ANN and, with ``conversion_steps``,
    its conversion, rebuilt as the run's end built it (same ANN, images and seed)."""
    out = [Subject(name, net, data, config, evaluate, paper, kind="ann")]
    if config.options.conversion_steps:
        converted = convert(net, data, config)
        _check_thresholds(run, config, converted, checkpoint)
        out.append(
            Subject(
                f"{name} converted",
                converted,
                data,
                config,
                _conversion,
                paper,
                kind="conversion",
                source=net,
            )
        )
    return out


def _conversion(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """A converted network's test; it has no loss (its readout is no calibrated logit)."""
    return {**evaluate_conversion(net, data, config), "loss": None}


def _check_thresholds(run: Path, config: ExperimentConfig, converted: Any, checkpoint: str) -> None:
    """Warn if the conversion rebuilt from an unchanged config differs from the run's own
    (checked when the analysed checkpoint is the final network, which the run's end
    converted)."""
    folder = run_folder.inspect(run)
    saved = ExperimentConfig.from_dict(folder.config["experiment"])
    if saved.options != config.options:
        return  # converted differently on purpose
    manifest = folder.manifest or {}
    if checkpoint == "best" and (manifest.get("best") or {}).get("epoch") != manifest.get("epoch"):
        return  # the run's end converted its final network, the analyses its best
    metrics = run_folder.read_json(run / run_folder.METRICS).get("conversion") or {}
    for layer, value in metrics.get("thresholds", {}).items():
        rebuilt = float(converted.thresholds[layer])
        if abs(rebuilt - value) > 1e-4 * max(abs(value), 1.0):
            print(
                f"warning: the conversion rebuilt from {run} sets {layer}'s threshold to "
                f"{rebuilt:.6g}, the run's end set {value:.6g} (another device or library "
                "version?); the analyses use the rebuilt one.",
                file=sys.stderr,
            )


METHOD = Method(
    name="ann",
    init=ann.init,
    optimizer=optimizer,
    train_step=lambda config: _train_step(),
    flag_names=ann.finite_flag_names,
    tracked=train_and_test,
    describe=lambda net: f"ANN {net.arch} ({net.norm}, ReLU)",
    evaluate=_test,
    final_metrics=final_metrics,
    done_line=done_line,
    write_plots=report.write_plots,
    write_report=report.write_report,
    subjects=subjects,
)
