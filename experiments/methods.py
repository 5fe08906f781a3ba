"""What the runner needs of each training method: BNTT (Kim & Panda) and TTFS (Park & Yoon).

A :class:`Method` builds the network and optimiser of a config, gives the jitted training
step, names its finiteness flags, evaluates per epoch and at the end, and writes the plots
and report. The runner (:mod:`experiments.runner`) does the rest — the epoch loop, crash-safe
checkpoints, data parallelism, resume — the same way for both.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import bntt_jax as bj
from bntt_jax import parallel
from bntt_jax import train as tr
from bntt_jax.metrics import energy
from experiments.config import ExperimentConfig
from experiments.data import Dataset, iterate


class Method:
    """The BNTT engine (the default)."""

    name = "bntt"

    def init(self, key: jax.Array, net_config: Any) -> Any:
        return bj.init(key, net_config)

    def optimizer_options(self, config: ExperimentConfig) -> dict[str, Any]:
        """Keyword arguments of :func:`bntt_jax.train.make_optimizer` beyond the schedule."""
        return dict(
            name=config.optimizer,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            schedule=config.lr_schedule,
        )

    def step_options(self, config: ExperimentConfig) -> tuple[tuple[str, Any], ...]:
        """The static options of the training step (hashable: they key its compilation)."""
        return (("encoder", config.encoder),)

    def train_step(self, options: tuple[tuple[str, Any], ...]) -> Any:
        """``step(state, x, y, seed_key, epoch) -> (state, metrics)``, jitted."""
        encoder = dict(options)["encoder"]

        def step(state, x, y, seed_key, epoch):
            del epoch  # BNTT's step does not depend on the epoch
            return tr.train_step(state, x, y, seed_key, encoder=encoder)

        return jax.jit(step)

    def flag_names(self, net: Any) -> list[str]:
        return tr.finite_flag_names(net)

    def tracked(self, metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Training metrics averaged over each epoch into its history record."""
        return {"train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"]}

    def epoch_record(self, net: Any) -> dict[str, float]:
        """What the history keeps of the parameters at the end of every epoch."""
        return {}

    def describe(self, net_config: Any) -> str:
        return f"{net_config.arch} {net_config.norm} T={net_config.num_steps}"

    def evaluate(self, net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
        """The per-epoch test: ``accuracy``, ``loss`` and what the history should keep."""
        ev = evaluate(net, data, config)
        return {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"]}

    def final_metrics(
        self,
        net: Any,
        data: Dataset,
        config: ExperimentConfig,
        history: list[dict[str, Any]],
        paper: dict[str, Any],
    ) -> dict[str, Any]:
        return _final_metrics(net, data, config, history, paper)

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        """What is wrong with a finished run's results (logged as errors, put in the report)."""
        return []

    def done_line(self, metrics: dict[str, Any]) -> str:
        ee = metrics["early_exit"]
        if ee is None:
            return f"{metrics['spikes_per_image']:.0f} spikes per image (no γ: no early exit)"
        return f"early exit at T={ee['step']} keeps {100 * ee['accuracy']:.2f}%"

    #: The module with this method's ``write_plots`` and ``write_report`` (imported when a
    #: run ends: matplotlib is only needed then).
    report_module = "experiments.report"

    def write_plots(self, out_dir: Path, metrics: dict[str, Any]) -> None:
        importlib.import_module(self.report_module).write_plots(out_dir, metrics)

    def write_report(
        self, out_dir: Path, name: str, config: ExperimentConfig, net_config: Any, metrics: Any
    ) -> None:
        report = importlib.import_module(self.report_module)
        report.write_report(out_dir, name, config, net_config, metrics)


def evaluate(
    net: bj.NetworkParams,
    data: Dataset,
    config: ExperimentConfig,
    exit_steps: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Test accuracy, loss, per-layer spike statistics and early-exit accuracies (BNTT)."""
    step = _eval_fn(config.encoder, tuple(sorted(set(exit_steps))))
    key = jax.random.key(config.seed + 1_000_003)  # fixed evaluation spikes
    totals: dict[str, Any] = {}
    batches = iterate(
        data.test_x, data.test_y, config.eval_batch_size, max_batches=config.max_eval_batches
    )
    mesh = parallel.data_mesh()
    for i, (x, y) in enumerate(batches):
        m = step(net, *parallel.shard_batch(mesh, x, y), jax.random.fold_in(key, i))
        totals = m if not totals else jax.tree.map(jnp.add, totals, m)
    totals = jax.tree.map(np.asarray, totals)
    count = int(totals["count"])
    neurons = net.config.neurons_per_layer()
    layers = [spec.name for spec in net.config.layers]
    return {
        "accuracy": int(totals["correct"]) / count,
        "loss": float(totals["loss_sum"]) / count,
        "count": count,
        # Eq. 23: spikes of a layer over all steps per neuron, averaged over test images.
        "spike_rate": {
            k: float(totals[f"spikes/{k}"].sum()) / (neurons[k] * count) for k in layers
        },
        "spikes_per_step": {k: (totals[f"spikes/{k}"] / count).tolist() for k in layers},
        "spikes_per_image": float(sum(totals[f"spikes/{k}"].sum() for k in layers)) / count,
        "accuracy_at": {int(t): int(totals[f"correct@{t}"]) / count for t in exit_steps},
    }


#: The thresholds of the early-exit sweep (Fig. 6 / journal Fig. 7), absolute and relative.
EXIT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 21))


@functools.cache
def _eval_fn(encoder: str, exit_steps: tuple[int, ...]):
    return jax.jit(functools.partial(tr.eval_step, encoder=encoder, exit_steps=exit_steps))


def _final_metrics(
    net: bj.NetworkParams,
    data: Dataset,
    config: ExperimentConfig,
    history: list[dict[str, Any]],
    paper: dict[str, Any],
) -> dict[str, Any]:
    num_steps = net.config.num_steps
    # one evaluation gives the accuracy of an exit at every step
    ev = evaluate(net, data, config, tuple(range(1, num_steps + 1)))
    has_gamma = net.config.normalization.has_gamma_t
    early_exit = exit_sweep = None
    if has_gamma:  # the exit rule reads BNTT's γᵗ: a network without them has no early exit
        step = bj.early_exit_step(net, config.exit_threshold, config.exit_relative)
        early_exit = {
            "threshold": config.exit_threshold,
            "relative": config.exit_relative,
            "step": step,
            "accuracy": ev["accuracy_at"][step],
        }
        exit_sweep = {
            kind: [
                {"threshold": t, "step": s, "accuracy": ev["accuracy_at"][s]}
                for t, s in bj.exit_sweep(net, EXIT_THRESHOLDS, kind == "relative").items()
            ]
            for kind in ("absolute", "relative")
        }
    return {
        "complete": True,
        "test_accuracy": ev["accuracy"],
        "test_loss": ev["loss"],
        "best_test_accuracy": _best_accuracy(history, ev["accuracy"]),
        "num_test_images": ev["count"],
        "spike_rate": ev["spike_rate"],
        "spikes_per_step": ev["spikes_per_step"],
        "spikes_per_image": ev["spikes_per_image"],
        "accuracy_vs_T": ev["accuracy_at"],
        "early_exit": early_exit,
        "exit_sweep": exit_sweep,
        "gamma_means": (
            {k: v.tolist() for k, v in bj.gamma_means(net).items()} if has_gamma else {}
        ),
        "history": history,
        "paper": paper,
        "epochs_run": len(history),
    }


class TTFSMethod(Method):
    """The TTFS surrogate model (Park & Yoon), checked at the end against its spiking network."""

    name = "ttfs"
    report_module = "experiments.report_ttfs"

    def init(self, key: jax.Array, net_config: Any) -> Any:
        return bj.ttfs.init(key, net_config)

    def optimizer_options(self, config: ExperimentConfig) -> dict[str, Any]:
        from bntt_jax.ttfs.train import weight_kernels

        return {**super().optimizer_options(config), "decay_mask": weight_kernels}

    def step_options(self, config: ExperimentConfig) -> tuple[tuple[str, Any], ...]:
        return (
            ("target_epoch", config.target_epoch),
            ("lambda_tr", config.lambda_tr),
            ("lambda_tb", config.lambda_tb),
            ("kernel_train_start", config.kernel_train_start),
        )

    def train_step(self, options: tuple[tuple[str, Any], ...]) -> Any:
        from bntt_jax.ttfs import train as tt

        return jax.jit(functools.partial(tt.train_step, **dict(options)))

    def flag_names(self, net: Any) -> list[str]:
        from bntt_jax.ttfs import train as tt

        return tt.finite_flag_names(net)

    def tracked(self, metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
        keep = {"train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"]}
        for key in ("loss_ce", "reg_tr", "p_tb", "relaxed"):
            keep[f"train_{key}"] = metrics[key]
        prefixes = ("tau/", "t_d/", "z_min/", "z_max/", "error_", "spikes/")
        keep |= {f"train_{k}": v for k, v in metrics.items() if k.startswith(prefixes)}
        return keep

    def epoch_record(self, net: Any) -> dict[str, float]:
        """The distributions of γ and β over every batch norm of the network at the end of the
        epoch, as percentiles (``bn_gamma/p50``, ...): Fig. 14–15 draw them over training."""
        from bntt_jax.ttfs.models import batch_norm_parameters

        bn = batch_norm_parameters(net.params, net.config).values()
        out = {}
        for index, name in enumerate(("gamma", "beta")):
            values = np.concatenate([np.ravel(_host(pair[index])) for pair in bn])
            for q, v in zip(BN_PERCENTILES, np.percentile(values, BN_PERCENTILES), strict=True):
                out[f"bn_{name}/p{q}"] = float(v)
        return out

    def describe(self, net_config: Any) -> str:
        return (
            f"TTFS {net_config.arch} T={net_config.time_window} (latency {net_config.latency}), "
            f"input {net_config.input_coding}, rounding {net_config.rounding}"
        )

    def evaluate(self, net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
        ev = evaluate_ttfs(net, data, config)
        return {
            "test_accuracy": ev["accuracy"],
            "test_loss": ev["loss"],
            "test_spikes_per_image": ev["spikes_per_image"],
        }

    def final_metrics(
        self,
        net: Any,
        data: Dataset,
        config: ExperimentConfig,
        history: list[dict[str, Any]],
        paper: dict[str, Any],
    ) -> dict[str, Any]:
        c = net.config
        ev = evaluate_ttfs(net, data, config)
        s, n, latency = ev["spikes_per_image"], c.num_neurons(), c.latency
        snn = check_spiking_network(net, data, config)
        return {
            "complete": True,
            "method": "ttfs",
            "test_accuracy": ev["accuracy"],
            "test_loss": ev["loss"],
            "best_test_accuracy": _best_accuracy(history, ev["accuracy"]),
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

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        snn = metrics["snn"]
        if not snn["images"] or snn["agreement"] == 1.0:
            return []
        differ = round((1 - snn["agreement"]) * snn["images"])
        return [
            f"BUG: the spiking network predicts another class than its surrogate on {differ} of "
            f"{snn['images']} test images (largest logit difference "
            f"{snn['max_logit_difference']:.3g}). They are the same network and must agree; "
            "please report this with the results folder."
        ]

    def done_line(self, metrics: dict[str, Any]) -> str:
        snn = metrics["snn"]
        return (
            f"{metrics['spikes_per_image']:.0f} spikes per image, latency "
            f"{metrics['latency_steps']}; "
            f"spiking network on {snn['images']} test images: {100 * snn['accuracy']:.2f}%, "
            f"same prediction as the surrogate for {100 * snn['agreement']:.2f}%"
        )


@functools.cache
def _ttfs_eval_fn():
    from bntt_jax.ttfs import train as tt

    return jax.jit(tt.eval_step)


#: The percentiles of γ and β each TTFS history record keeps (Fig. 14–15).
BN_PERCENTILES = (5, 25, 50, 75, 95)


def _host(a: Any) -> Any:
    return np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else a


def _local(net: Any) -> Any:
    """This process's copy of replicated parameters, as host arrays (the end-of-run checks
    run on each process alone)."""
    return jax.tree.map(_host, net)


def _test_set_sums(step: Any, net: Any, data: Dataset, config: ExperimentConfig) -> Any:
    """``step(net, x, y)``'s sums added up over the test batches (on the device, read once)."""
    mesh = parallel.data_mesh()
    totals: dict[str, Any] = {}
    batches = iterate(
        data.test_x, data.test_y, config.eval_batch_size, max_batches=config.max_eval_batches
    )
    for x, y in batches:
        m = step(net, *parallel.shard_batch(mesh, x, y))
        totals = m if not totals else jax.tree.map(jnp.add, totals, m)
    return jax.tree.map(np.asarray, totals)


def _best_accuracy(history: list[dict[str, Any]], final: float) -> float:
    """The best test accuracy of the history (``final`` if it has none)."""
    return max([h["test_accuracy"] for h in history if "test_accuracy" in h], default=final)


def evaluate_ttfs(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """Test accuracy, loss and spikes per image (per layer and in all) of a TTFS surrogate."""
    totals = _test_set_sums(_ttfs_eval_fn(), net, data, config)
    count = int(totals["count"])
    layers = {k: float(totals[f"spikes/{k}"]) / count for k in net.config.kernel_names}
    return {
        "accuracy": int(totals["correct"]) / count,
        "loss": float(totals["loss_sum"]) / count,
        "count": count,
        "spikes_per_layer": layers,
        "spikes_per_image": sum(layers.values()),
    }


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
    from bntt_jax.ttfs.models import batch_norm_parameters

    x = data.test_x[: config.eval_batch_size]
    out = _ttfs_outputs_fn()(_local(net), x)
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


@functools.cache
def _ttfs_outputs_fn():
    return jax.jit(bj.ttfs.forward)


def kernel_summary(net: Any) -> dict[str, dict[str, float]]:
    """τ, t_d, ẑ_m and ẑ_M of every kernel."""
    from bntt_jax.ttfs.models import kernel_parameters

    out = {}
    for name, (tau, t_d) in kernel_parameters(net.params, net.config).items():
        z_min, z_max = bj.ttfs.representation_range(tau, t_d, net.config.time_window)
        out[name] = {k: float(v) for k, v in zip(("tau", "t_d", "z_min", "z_max"),
                                                (tau, t_d, z_min, z_max), strict=True)}  # fmt: skip
    return out


def check_spiking_network(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """Run the spiking network (:func:`bntt_jax.ttfs.simulate`) on the first ``snn_images``
    test images (all with ``None``), in evaluation batches, and compare it with the
    surrogate: its accuracy, the fraction of images with the same prediction, the largest
    logit difference and its spikes per image."""
    n = min(len(data.test_x), len(data.test_x) if config.snn_images is None else config.snn_images)
    size = config.eval_batch_size
    host_net = _local(net)
    images = correct = same = spikes = 0
    diff = 0.0
    for start in range(0, n, size):
        stop = min(start + size, n)
        x, y = data.test_x[start:stop], data.test_y[start:stop]
        snn = bj.ttfs.simulate(host_net, x)
        surrogate = np.asarray(_ttfs_outputs_fn()(host_net, x).logits)
        logits = np.asarray(snn.logits)
        images += len(y)
        correct += int((logits.argmax(-1) == y).sum())
        same += int((logits.argmax(-1) == surrogate.argmax(-1)).sum())
        spikes += int(sum(int(v.sum()) for v in snn.spike_counts.values()))
        diff = max(diff, float(np.abs(logits - surrogate).max()))
    if not images:
        return {"images": 0, "accuracy": float("nan"), "agreement": float("nan"),
                "max_logit_difference": float("nan"), "spikes_per_image": float("nan")}  # fmt: skip
    return {
        "images": images,
        "accuracy": correct / images,
        "agreement": same / images,
        "max_logit_difference": diff,
        "spikes_per_image": spikes / images,
    }


class ANNMethod(Method):
    """The non-spiking ANN of the same topology (:mod:`bntt_jax.baselines.ann`; BNTT Table 3)."""

    name = "ann"
    report_module = "experiments.report_ann"

    def init(self, key: jax.Array, net_config: Any) -> Any:
        from bntt_jax.baselines import ann

        return ann.init(key, net_config)

    def step_options(self, config: ExperimentConfig) -> tuple[tuple[str, Any], ...]:
        return ()

    def train_step(self, options: tuple[tuple[str, Any], ...]) -> Any:
        from bntt_jax.baselines import ann

        def step(state, x, y, seed_key, epoch):
            del seed_key, epoch  # the ANN's step draws nothing and knows no epoch
            return ann.train_step(state, x, y)

        return jax.jit(step)

    def flag_names(self, net: Any) -> list[str]:
        from bntt_jax.baselines import ann

        return ann.finite_flag_names(net)

    def describe(self, net_config: Any) -> str:
        return f"ANN {net_config.arch} ({net_config.norm}, ReLU)"

    def evaluate(self, net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
        ev = evaluate_ann(net, data, config)
        return {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"]}

    def final_metrics(
        self,
        net: Any,
        data: Dataset,
        config: ExperimentConfig,
        history: list[dict[str, Any]],
        paper: dict[str, Any],
    ) -> dict[str, Any]:
        ev = evaluate_ann(net, data, config)
        flops = energy.ann_flops(net.config)
        conversion = None
        if config.conversion_steps:
            converted = convert_ann(_local(net), data, config)
            conversion = {
                **evaluate_conversion(converted, data, config),
                "reset": config.conversion_reset,
                "percentile": config.conversion_percentile,
                "threshold_images": min(config.conversion_images, len(data.train_x)),
                "thresholds": {k: float(v) for k, v in converted.thresholds.items()},
            }
        return {
            "complete": True,
            "method": "ann",
            "test_accuracy": ev["accuracy"],
            "test_loss": ev["loss"],
            "best_test_accuracy": _best_accuracy(history, ev["accuracy"]),
            "num_test_images": ev["count"],
            "flops_per_layer": flops,
            "energy_pj": energy.cmos_energy(flops, "mac"),  # Eq. 25
            "conversion": conversion,
            "history": history,
            "paper": paper,
            "epochs_run": len(history),
        }

    def done_line(self, metrics: dict[str, Any]) -> str:
        line = f"E_ANN = {metrics['energy_pj'] / 1e6:.4g} µJ per image (Eq. 25)"
        conversion = metrics.get("conversion")
        if conversion:
            line += "; converted: " + ", ".join(
                f"T={t} {100 * a:.2f}%" for t, a in conversion["accuracy_at"].items()
            )
        return line


#: Offset of the conversion's random streams (thresholds, then evaluation) from the seed.
CONVERSION_STREAM = 30_011


def convert_ann(net: Any, data: Dataset, config: ExperimentConfig) -> Any:
    """The ANN converted to IF neurons (:func:`bntt_jax.baselines.conversion.convert`),
    thresholds set on the first ``conversion_images`` training images over the longest
    ``conversion_steps``; the same ANN, data and config always give the same network."""
    from bntt_jax.baselines import conversion

    return conversion.convert(
        net,
        data.train_x[: config.conversion_images],
        jax.random.key(config.seed + CONVERSION_STREAM),
        steps=max(config.conversion_steps),
        percentile=config.conversion_percentile,
        reset=config.conversion_reset,
    )


def evaluate_conversion(converted: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """The converted network on the test set, one simulation of the longest of
    ``conversion_steps`` read at every step: accuracy at each T (the Table 3 rows), and of the
    longest the spike rate per layer (Eq. 23), spikes per layer per step (Fig. 1) and spikes
    per image; ``spikes_per_image_at`` gives the spikes of each shorter T."""
    from bntt_jax.baselines.conversion import evaluate_converted

    steps = max(config.conversion_steps)
    key = jax.random.key(config.seed + CONVERSION_STREAM + 1)
    totals: dict[str, np.ndarray] = {}
    batches = iterate(
        data.test_x, data.test_y, config.eval_batch_size, max_batches=config.max_eval_batches
    )
    count = 0
    for i, (x, y) in enumerate(batches):
        m = evaluate_converted(converted, x, y, jax.random.fold_in(key, i), steps)
        totals = m if not totals else {k: totals[k] + v for k, v in m.items()}
        count += len(y)
    layers = [spec.name for spec in converted.config.layers]
    neurons = converted.config.neurons_per_layer()
    per_step = {k: totals[f"spikes/{k}"] / count for k in layers}
    cumulative = np.cumsum(sum(per_step.values()), dtype=np.float64)
    return {
        "num_steps": steps,
        "count": count,
        "accuracy": float(totals["correct"][-1]) / count,
        "accuracy_at": {
            int(t): float(totals["correct"][t - 1]) / count for t in sorted(config.conversion_steps)
        },  # fmt: skip
        "accuracy_by_step": (totals["correct"] / count).tolist(),
        "spike_rate": {k: float(per_step[k].sum()) / neurons[k] for k in layers},
        "spikes_per_step": {k: per_step[k].tolist() for k in layers},
        "spikes_per_image": float(cumulative[-1]),
        "spikes_per_image_at": {
            int(t): float(cumulative[t - 1]) for t in sorted(config.conversion_steps)
        },  # fmt: skip
    }


@functools.cache
def _ann_eval_fn():
    from bntt_jax.baselines import ann

    return jax.jit(ann.eval_step)


def evaluate_ann(net: Any, data: Dataset, config: ExperimentConfig) -> dict[str, Any]:
    """Test accuracy and loss of an ANN."""
    totals = _test_set_sums(_ann_eval_fn(), net, data, config)
    count = int(totals["count"])
    return {
        "accuracy": int(totals["correct"]) / count,
        "loss": float(totals["loss_sum"]) / count,
        "count": count,
    }


METHODS: dict[str, Method] = {"bntt": Method(), "ttfs": TTFSMethod(), "ann": ANNMethod()}


def method_of(config: ExperimentConfig) -> Method:
    return METHODS[config.method]
