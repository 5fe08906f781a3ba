"""The BNTT method for the run loop (:class:`experiments.core.method.Method`): BPTT with the
surrogate gradient (:mod:`bntt_jax.train`), the test with spikes per layer and step, and the
end of a run: accuracy at every T from one evaluation, the γ-based early exit (Sec. 3.4) and
its threshold sweep (Fig. 6)."""

from __future__ import annotations

import functools
from typing import Any

import jax

import bntt_jax as bj
from bntt_jax import train as tr
from experiments.analyses.subject import Subject
from experiments.bntt import report
from experiments.core.config import ExperimentConfig
from experiments.core.data import Dataset
from experiments.core.evaluation import test_totals
from experiments.core.method import (
    Method,
    best_accuracy,
    optimizer,
    test_record,
    train_and_test,
)

#: The thresholds of the early-exit sweep (Fig. 6 / journal Fig. 7), absolute and relative.
EXIT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 21))
#: Offset of the evaluation's encoder draws from the seed (fixed evaluation spikes).
EVAL_STREAM = 1_000_003


@functools.cache
def _train_step(encoder: str) -> Any:
    def step(state, x, y, seed_key, epoch):
        del epoch  # BNTT's step does not depend on the epoch
        return tr.train_step(state, x, y, seed_key, encoder=encoder)

    return jax.jit(step)


@functools.cache
def _eval_step(encoder: str, exit_steps: tuple[int, ...]) -> Any:
    return jax.jit(functools.partial(tr.eval_step, encoder=encoder, exit_steps=exit_steps))


def evaluate(
    net: bj.NetworkParams,
    data: Dataset,
    config: ExperimentConfig,
    exit_steps: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Test accuracy, loss, per-layer spike statistics and early-exit accuracies of a
    BNTT-family network (the same Poisson draws for every call with the same seed)."""
    step = _eval_step(config.network.encoder, tuple(sorted(set(exit_steps))))
    key = jax.random.key(config.seed + EVAL_STREAM)
    totals, test = test_totals(
        lambda x, y, i, mask: step(net, x, y, jax.random.fold_in(key, i), mask=mask), data, config
    )
    count = test["count"]
    neurons = net.config.neurons_per_layer()
    layers = [spec.name for spec in net.config.layers]
    return {
        **test,
        # Eq. 23: spikes of a layer over all steps per neuron, averaged over test images.
        "spike_rate": {
            k: float(totals[f"spikes/{k}"].sum()) / (neurons[k] * count) for k in layers
        },
        "spikes_per_step": {k: (totals[f"spikes/{k}"] / count).tolist() for k in layers},
        "spikes_per_image": float(sum(totals[f"spikes/{k}"].sum() for k in layers)) / count,
        "accuracy_at": {int(t): int(totals[f"correct@{t}"]) / count for t in exit_steps},
    }


def _test(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    return test_record(evaluate(net, data, config))


def early_exit(net: bj.NetworkParams, config: ExperimentConfig, accuracy_at: dict) -> tuple:
    """The γ-based early exit of the config's rule and the threshold sweep of Fig. 6, each
    with its accuracy; ``(None, None)`` for a network without γᵗ."""
    if not net.config.normalization.has_gamma_t:
        return None, None
    analysis = config.analysis
    step = bj.early_exit_step(net, analysis.exit_threshold, analysis.exit_relative)
    chosen = {
        "threshold": analysis.exit_threshold,
        "relative": analysis.exit_relative,
        "step": step,
        "accuracy": accuracy_at[step],
    }
    sweep = {
        kind: [
            {"threshold": t, "step": s, "accuracy": accuracy_at[s]}
            for t, s in bj.exit_sweep(net, EXIT_THRESHOLDS, kind == "relative").items()
        ]
        for kind in ("absolute", "relative")
    }
    return chosen, sweep


def final_metrics(
    net: bj.NetworkParams,
    data: Dataset,
    config: ExperimentConfig,
    history: list[dict[str, Any]],
    paper: dict[str, Any],
) -> dict[str, Any]:
    """``metrics.json`` of a finished run: one evaluation gives the accuracy of an exit at
    every step, the early exit and its sweep read them."""
    ev = evaluate(net, data, config, tuple(range(1, net.config.num_steps + 1)))
    chosen, sweep = early_exit(net, config, ev["accuracy_at"])
    has_gamma = chosen is not None
    return {
        "complete": True,
        "test_accuracy": ev["accuracy"],
        "test_loss": ev["loss"],
        "best_test_accuracy": best_accuracy(history, ev["accuracy"]),
        "num_test_images": ev["count"],
        "spike_rate": ev["spike_rate"],
        "spikes_per_step": ev["spikes_per_step"],
        "spikes_per_image": ev["spikes_per_image"],
        "accuracy_vs_T": ev["accuracy_at"],
        "early_exit": chosen,
        "exit_sweep": sweep,
        "gamma_means": (
            {k: v.tolist() for k, v in bj.gamma_means(net).items()} if has_gamma else {}
        ),
        "history": history,
        "paper": paper,
        "epochs_run": len(history),
    }


def done_line(metrics: dict[str, Any]) -> str:
    ee = metrics["early_exit"]
    if ee is None:
        return f"{metrics['spikes_per_image']:.0f} spikes per image (no γ: no early exit)"
    return f"early exit at T={ee['step']} keeps {100 * ee['accuracy']:.2f}%"


def subjects(
    run: Any,
    name: str,
    net: Any,
    data: Dataset,
    config: ExperimentConfig,
    paper: dict[str, Any],
    checkpoint: str,
) -> list[Subject]:
    """What the analyses look at in a finished run: its network."""
    return [Subject(name, net, data, config, evaluate, paper)]


METHOD = Method(
    name="bntt",
    init=bj.init,
    optimizer=optimizer,
    train_step=lambda config: _train_step(config.network.encoder),
    flag_names=tr.finite_flag_names,
    tracked=train_and_test,
    describe=lambda net: f"{net.arch} {net.norm} T={net.num_steps}",
    evaluate=_test,
    final_metrics=final_metrics,
    done_line=done_line,
    write_plots=report.write_plots,
    write_report=report.write_report,
    subjects=subjects,
)
