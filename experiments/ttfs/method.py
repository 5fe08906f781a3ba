"""The TTFS method for the run loop (:class:`experiments.core.method.Method`): the surrogate
DNN's training step (Eq. 9 with SR, TR and TB; :mod:`bntt_jax.ttfs.train`), the kernels and
batch norms tracked every epoch, and the end of a run: spikes, sparsity, latency and energy
(Table 2), the distributions of the paper's figures, and the spiking network itself checked
against its surrogate on the test set."""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from bntt_jax import ttfs
from bntt_jax.metrics import energy
from bntt_jax.ttfs import train as tt
from bntt_jax.ttfs.models import batch_norm_parameters, kernel_parameters
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
from experiments.ttfs import report

#: The percentiles of γ and β each TTFS history record keeps (Fig. 14–15).
BN_PERCENTILES = (5, 25, 50, 75, 95)


@functools.cache
def _train_step(options: tuple[tuple[str, Any], ...]) -> Any:
    return jax.jit(functools.partial(tt.train_step, **dict(options)))


def train_step(config: ExperimentConfig) -> Any:
    """The jitted step with the config's SR, TR and TB settings (one compilation each)."""
    o = config.options
    return _train_step(
        (
            ("target_epoch", o.target_epoch),
            ("lambda_tr", o.lambda_tr),
            ("lambda_tb", o.lambda_tb),
            ("kernel_train_start", o.kernel_train_start),
        )
    )


def tracked(metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Besides loss and accuracy: the loss terms, SR, and τ, t_d, ẑ_m, ẑ_M, the kernel errors
    and the spikes of every layer (Fig. 2, 5, 11–16 draw them over training)."""
    keep = train_and_test(metrics)
    for key in ("loss_ce", "reg_tr", "p_tb", "relaxed"):
        keep[f"train_{key}"] = metrics[key]
    prefixes = ("tau/", "t_d/", "z_min/", "z_max/", "error_", "spikes/")
    keep |= {f"train_{k}": v for k, v in metrics.items() if k.startswith(prefixes)}
    return keep


def epoch_record(net: Any) -> dict[str, float]:
    """The distributions of γ and β over every batch norm of the network at the end of the
    epoch, as percentiles (``bn_gamma/p50``, ...): Fig. 14–15 draw them over training."""
    bn = batch_norm_parameters(net.params, net.config).values()
    out = {}
    for index, name in enumerate(("gamma", "beta")):
        values = np.concatenate([np.ravel(host_copy(pair[index])) for pair in bn])
        for q, v in zip(BN_PERCENTILES, np.percentile(values, BN_PERCENTILES), strict=True):
            out[f"bn_{name}/p{q}"] = float(v)
    return out


_eval_step = jax.jit(tt.eval_step)
_forward = jax.jit(ttfs.forward)


def evaluate(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """Test accuracy, loss and spikes per image (per layer and in all) of a TTFS surrogate."""
    totals, test = test_totals(lambda x, y, i, mask: _eval_step(net, x, y, mask), data, config)
    count = test["count"]
    layers = {k: float(totals[f"spikes/{k}"]) / count for k in net.config.kernel_names}
    return {
        "accuracy": test["accuracy"],
        "loss": test["loss"],
        "count": count,
        "spikes_per_layer": layers,
        "spikes_per_image": sum(layers.values()),
    }


def _test(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    ev = evaluate(net, data, config)
    return test_record(ev, test_spikes_per_image=ev["spikes_per_image"])


def energy_report(spikes: float, steps: int, reference: dict[str, Any] | None) -> dict[str, Any]:
    """Neuromorphic energy ``E = S·E_dyn + K·L·E_sta`` on every platform, raw and (given the
    paper's ``reference`` method, ``{"name", "spikes", "steps"}``) normalised to it as the TTFS
    paper's Table 2 is; ``normalized`` is ``None`` without one."""
    k = energy.STATIC_STEP_WEIGHT["ttfs"]
    out: dict[str, Any] = {"static_step_weight": k, "reference": reference}
    for platform in energy.PLATFORMS:
        raw = energy.neuromorphic_energy(spikes, steps, platform, k)
        normalized = (
            energy.normalized_energy(
                spikes, steps, reference["spikes"], reference["steps"], platform, k
            )
            if reference
            else None
        )
        out[platform] = {"raw": raw, "normalized": normalized}
    return out


def _histogram(values: np.ndarray, bins: int) -> dict[str, list[float]]:
    values = np.asarray(values, np.float64).ravel()
    low, high = (
        np.percentile(values, [0.5, 99.5]) if values.size > 1 else (values[0] - 1, values[0] + 1)
    )
    if high <= low:
        low, high = low - 0.5, high + 0.5
    # the central 99 %: the tails would stretch the axis over a few outliers
    density, edges = np.histogram(values, bins=bins, range=(low, high), density=True)
    return {"edges": edges.tolist(), "density": density.tolist()}


def distributions(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """What the TTFS paper's distribution figures show, for the trained network: per kernel
    layer the histogram of the pre-activations z on a test batch with the mean β, ẑ_m and ẑ_M
    (Fig. 7 / 17), and the histograms of its batch norm's γ and β (Fig. 14–15)."""
    out = _forward(host_copy(net), data.test_x[: config.eval_batch_size])
    kernels = kernel_summary(net)
    result = {}
    for name, (gamma, beta) in batch_norm_parameters(net.params, net.config).items():
        result[name] = {
            "z": _histogram(np.asarray(out.z[name]), 60),
            "beta_mean": float(np.mean(np.asarray(beta))),
            "z_min": kernels[name]["z_min"],
            "z_max": kernels[name]["z_max"],
            "gamma": _histogram(np.asarray(gamma), 30),
            "beta": _histogram(np.asarray(beta), 30),
        }
    return result


def kernel_summary(net: Any) -> dict[str, dict[str, float]]:
    """τ, t_d, ẑ_m and ẑ_M of every temporal kernel."""
    out = {}
    for name, (tau, t_d) in kernel_parameters(net.params, net.config).items():
        z_min, z_max = ttfs.representation_range(tau, t_d, net.config.time_window)
        out[name] = {
            k: float(v)
            for k, v in zip(("tau", "t_d", "z_min", "z_max"), (tau, t_d, z_min, z_max), strict=True)
        }
    return out


def check_spiking_network(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """Run the spiking network (:func:`bntt_jax.ttfs.simulate`) on the first ``snn_images``
    test images (all with ``None``), in evaluation batches, and compare it with the
    surrogate: its accuracy, the fraction of images with the same prediction, the largest
    logit difference and its spikes per image."""
    limit = config.options.snn_images
    host_net = host_copy(net)

    def batch(x: Any, y: Any, i: int, mask: None) -> dict[str, Any]:  # unpadded: no mask
        snn = ttfs.simulate(host_net, x)
        logits, surrogate = np.asarray(snn.logits), np.asarray(_forward(host_net, x).logits)
        return {
            "images": len(y),
            "correct": int((logits.argmax(-1) == y).sum()),
            "same": int((logits.argmax(-1) == surrogate.argmax(-1)).sum()),
            "spikes": int(sum(int(v.sum()) for v in snn.spike_counts.values())),
            "max_logit_difference": float(np.abs(logits - surrogate).max()),
        }

    n = len(data.test_x) if limit is None else min(len(data.test_x), limit)
    totals = over_test_set(batch, data, config.eval_batch_size, limit=n, shard=False)
    images = int(totals.get("images", 0))
    if not images:
        return {
            "images": 0,
            "accuracy": float("nan"),
            "agreement": float("nan"),
            "max_logit_difference": float("nan"),
            "spikes_per_image": float("nan"),
        }
    return {
        "images": images,
        "accuracy": int(totals["correct"]) / images,
        "agreement": int(totals["same"]) / images,
        "max_logit_difference": float(totals["max_logit_difference"]),
        "spikes_per_image": int(totals["spikes"]) / images,
    }


def final_metrics(
    net: Any,
    data: Dataset,
    config: ExperimentConfig,
    history: list[dict[str, Any]],
    paper: dict[str, Any],
) -> dict[str, Any]:
    """``metrics.json`` of a finished TTFS run: Table 2's columns, the spiking network's
    check, the kernels and the distributions of Fig. 7, 14, 15."""
    c = net.config
    ev = evaluate(net, data, config)
    s, n, latency = ev["spikes_per_image"], c.num_neurons(), c.latency
    snn = check_spiking_network(net, data, config)
    return {
        "complete": True,
        "method": "ttfs",
        "test_accuracy": ev["accuracy"],
        "test_loss": ev["loss"],
        "best_test_accuracy": best_accuracy(history, ev["accuracy"]),
        "num_test_images": ev["count"],
        "spikes_per_image": s,
        "spikes_per_layer": ev["spikes_per_layer"],
        "neurons": n,
        "neurons_per_layer": c.neurons_per_layer(),
        "latency_steps": latency,
        "spike_rate": energy.spike_rate(s, n, latency),
        "sparsity": energy.sparsity(s, n),
        "energy": energy_report(s, latency, paper.get("energy_reference")),
        "snn_agreement": snn["agreement"],
        "snn": snn,
        "kernels": kernel_summary(net),
        "distributions": distributions(net, data, config),
        "history": history,
        "paper": paper,
        "epochs_run": len(history),
    }


def done_line(metrics: dict[str, Any]) -> str:
    snn = metrics["snn"]
    return (
        f"{metrics['spikes_per_image']:.0f} spikes per image, latency "
        f"{metrics['latency_steps']}; "
        f"spiking network on {snn['images']} test images: {100 * snn['accuracy']:.2f}%, "
        f"same prediction as the surrogate for {100 * snn['agreement']:.2f}%"
    )


METHOD = Method(
    name="ttfs",
    init=ttfs.init,
    optimizer=lambda config, steps: optimizer(config, steps, decay_mask=tt.weight_kernels),
    train_step=train_step,
    flag_names=tt.finite_flag_names,
    tracked=tracked,
    describe=lambda net: (
        f"TTFS {net.arch} T={net.time_window} (latency {net.latency}), "
        f"input {net.input_coding}, rounding {net.rounding}"
    ),
    evaluate=_test,
    final_metrics=final_metrics,
    done_line=done_line,
    write_plots=report.write_plots,
    write_report=report.write_report,
    epoch_record=epoch_record,
    warnings=report.warnings,
)
