"""Train and evaluate one experiment, writing its results folder.

``out_dir/`` receives ``config.json`` (resolved), ``log.txt``, ``metrics.json`` (rewritten
atomically after every epoch, so a crash or kill keeps what was done), orbax checkpoints
``checkpoints/last`` and ``checkpoints/best``, PNG plots and ``report.md`` with our numbers
beside the paper's.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

import bntt_jax as bj
from bntt_jax import parallel
from bntt_jax import train as tr
from experiments.config import ExperimentConfig
from experiments.data import Dataset, iterate, load_dataset, num_batches


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a temporary file, then ``os.replace``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float))
    os.replace(tmp, path)


def _logger(out_dir: Path) -> logging.Logger:
    log = logging.getLogger(f"experiments.{out_dir}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.FileHandler(out_dir / "log.txt"), logging.StreamHandler(sys.stdout)):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log


def _progress(total: int, desc: str):
    """A tqdm bar on a terminal; nothing in CI logs or pipes."""
    from tqdm.auto import tqdm

    quiet = not sys.stderr.isatty() or bool(os.environ.get("CI"))
    return tqdm(total=total, desc=desc, disable=quiet, leave=False, dynamic_ncols=True)


def evaluate(
    net: bj.NetworkParams,
    data: Dataset,
    config: ExperimentConfig,
    exit_steps: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Test accuracy, loss, per-layer spike statistics and early-exit accuracies."""
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


@functools.cache
def _eval_fn(encoder: str, exit_steps: tuple[int, ...]):
    return jax.jit(functools.partial(tr.eval_step, encoder=encoder, exit_steps=exit_steps))


def _checkpoint_managers(out_dir: Path) -> dict[str, ocp.CheckpointManager]:
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
    return {
        name: ocp.CheckpointManager((out_dir / "checkpoints" / name).absolute(), options=options)
        for name in ("last", "best")
    }


def _state_tree(state: tr.TrainState) -> dict[str, Any]:
    return {
        "step": state.step,
        "params": state.net.params,
        "batch_stats": state.net.batch_stats,
        "opt_state": state.opt_state,
    }


def save_checkpoint(manager: ocp.CheckpointManager, epoch: int, state: tr.TrainState) -> None:
    manager.save(epoch, args=ocp.args.StandardSave(_state_tree(state)))
    manager.wait_until_finished()


def load_checkpoint(path: str | Path) -> bj.NetworkParams:
    """The network of a results folder's checkpoint (``.../checkpoints/best`` or ``last``)."""
    path = Path(path)
    run_dir = path.parents[1] if path.parent.name == "checkpoints" else path
    ckpt_dir = path if path.parent.name == "checkpoints" else path / "checkpoints" / "best"
    config_file = run_dir / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"no config.json in {run_dir}: not a results folder.")
    net_config = bj.NetworkConfig.from_dict(json.loads(config_file.read_text())["network"])
    manager = ocp.CheckpointManager(ckpt_dir.absolute())
    step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {ckpt_dir}.")
    template = bj.init(jax.random.key(0), net_config)
    target = {"params": template.params, "batch_stats": template.batch_stats}
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    restored = manager.restore(
        step,
        args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True),
    )
    return template.replace(params=restored["params"], batch_stats=restored["batch_stats"])


def run_experiment(
    name: str,
    config: ExperimentConfig,
    out_dir: Path,
    paper: dict[str, Any] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train ``config`` and write the results folder ``out_dir``; return the metrics."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if (out_dir / "metrics.json").exists() and not resume:
        raise FileExistsError(
            f"{out_dir} already holds a run; pass --resume to continue it or --out for a new "
            "folder (nothing is overwritten)."
        )
    data = load_dataset(config.dataset, config.data_dir)  # missing data fails before any write
    out_dir.mkdir(parents=True, exist_ok=True)
    log = _logger(out_dir)
    net_config = config.network(data.num_classes, data.input_shape)
    resolved = {
        "name": name,
        "experiment": config.to_dict(),
        "network": net_config.to_dict(),
        "paper": paper or {},
    }
    config_file = out_dir / "config.json"
    if config_file.exists():  # a resume keeps the original and records its own beside it
        config_file = out_dir / f"config.resumed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(config_file, resolved)
    steps_per_epoch = num_batches(len(data.train_x), config.batch_size, config.max_train_batches)
    tx = tr.make_optimizer(
        config.optimizer,
        lr=config.lr,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    schedule = tr.step_decay_schedule(config.lr, config.epochs, steps_per_epoch)
    mesh = parallel.data_mesh()  # data-parallel over all devices (one on a laptop)
    parallel.check_batch_size(mesh, config.batch_size)
    parallel.check_batch_size(mesh, config.eval_batch_size)
    state = tr.TrainState.create(bj.init(jax.random.key(config.seed), net_config), tx)
    managers = _checkpoint_managers(out_dir)
    history: list[dict[str, Any]] = []
    first_epoch = 0
    if resume and managers["last"].latest_step() is not None:
        last = managers["last"].latest_step()
        restored = managers["last"].restore(last, args=ocp.args.StandardRestore(_state_tree(state)))
        state = state.replace(
            step=restored["step"],
            net=state.net.replace(params=restored["params"], batch_stats=restored["batch_stats"]),
            opt_state=restored["opt_state"],
        )
        history = json.loads((out_dir / "metrics.json").read_text()).get("history", [])
        history = [h for h in history if h["epoch"] <= last]
        first_epoch = last
        log.info("resumed from epoch %d (step %d)", last, int(state.step))
    state = parallel.replicate(mesh, state)

    log.info(
        "%s: %s %s T=%d on %s (%d train / %d test), %d epochs x %d steps, batch %d, %s lr %g, "
        "%d device(s)",
        name, net_config.arch, net_config.norm, net_config.num_steps, data.name,
        len(data.train_x), len(data.test_x), config.epochs, steps_per_epoch,
        config.batch_size, config.optimizer, config.lr, mesh.size,
    )  # fmt: skip
    train_step = jax.jit(functools.partial(tr.train_step, encoder=config.encoder))
    seed_key = jax.random.key(config.seed)
    rng = np.random.default_rng(config.seed)
    for _ in range(first_epoch):  # the same shuffles as an uninterrupted run
        rng.permutation(len(data.train_x))
    best = max((h["test_accuracy"] for h in history if "test_accuracy" in h), default=-1.0)

    for epoch in range(first_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        losses, accs = [], []
        with _progress(steps_per_epoch, f"epoch {epoch}/{config.epochs}") as bar:
            batches = iterate(
                data.train_x, data.train_y, config.batch_size, rng, data.augment,
                config.max_train_batches,
            )  # fmt: skip
            for x, y in batches:
                state, m = train_step(state, *parallel.shard_batch(mesh, x, y), seed_key)
                losses.append(m["loss"])
                accs.append(m["accuracy"])
                if not bar.disable and bar.n % 10 == 0:  # a host sync: only for a shown bar
                    bar.set_postfix(
                        loss=f"{float(m['loss']):.3f}", acc=f"{float(m['accuracy']):.3f}"
                    )
                bar.update()
        losses_np = np.asarray(jnp.stack(losses))
        if not np.isfinite(losses_np).all():
            bad = int(np.argmin(np.isfinite(losses_np)))
            raise FloatingPointError(
                f"training loss became {losses_np[bad]} at epoch {epoch}, batch {bad + 1} (step "
                f"{(epoch - 1) * steps_per_epoch + bad + 1}). Checkpoints up to epoch {epoch - 1} "
                f"are intact in {out_dir / 'checkpoints'}. Try a lower lr (--set lr=...)."
            )
        record = {
            "epoch": epoch,
            "train_loss": float(losses_np.mean()),
            "train_accuracy": float(np.mean(jnp.stack(accs))),
            "lr": float(schedule(int(state.step) - 1)),
            "epoch_time_s": time.perf_counter() - t0,
        }
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            ev = evaluate(state.net, data, config)
            record |= {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"]}
            if ev["accuracy"] > best:
                best = ev["accuracy"]
                save_checkpoint(managers["best"], epoch, state)
        history.append(record)
        save_checkpoint(managers["last"], epoch, state)
        write_json(out_dir / "metrics.json", {"history": history, "complete": False})
        log.info(
            "epoch %3d  loss %.4f  train %.2f%%%s  (%.1fs)",
            epoch, record["train_loss"], 100 * record["train_accuracy"],
            f"  test {100 * record['test_accuracy']:.2f}%" if "test_accuracy" in record else "",
            record["epoch_time_s"],
        )  # fmt: skip

    metrics = _final_metrics(state.net, data, config, history, paper or {})
    metrics["wall_time_s"] = time.perf_counter() - start
    write_json(out_dir / "metrics.json", metrics)
    from experiments.report import write_plots, write_report

    write_plots(out_dir, metrics)
    write_report(out_dir, name, config, net_config, metrics)
    log.info(
        "done: test accuracy %.2f%% (best %.2f%%), early exit at T=%s keeps %.2f%%, %.1fs",
        100 * metrics["test_accuracy"], 100 * metrics["best_test_accuracy"],
        metrics["early_exit"]["step"], 100 * metrics["early_exit"]["accuracy"],
        metrics["wall_time_s"],
    )  # fmt: skip
    return metrics


def _final_metrics(
    net: bj.NetworkParams,
    data: Dataset,
    config: ExperimentConfig,
    history: list[dict[str, Any]],
    paper: dict[str, Any],
) -> dict[str, Any]:
    num_steps = net.config.num_steps
    exit_step = (
        bj.early_exit_step(net, config.exit_threshold) if net.config.norm == "bntt" else num_steps
    )
    stride = max(1, num_steps // 5)
    exit_steps = tuple(sorted({exit_step, *range(stride, num_steps + 1, stride), num_steps}))
    ev = evaluate(net, data, config, exit_steps)
    tested = [h["test_accuracy"] for h in history if "test_accuracy" in h]
    return {
        "complete": True,
        "test_accuracy": ev["accuracy"],
        "test_loss": ev["loss"],
        "best_test_accuracy": max(tested) if tested else ev["accuracy"],
        "num_test_images": ev["count"],
        "spike_rate": ev["spike_rate"],
        "spikes_per_step": ev["spikes_per_step"],
        "spikes_per_image": ev["spikes_per_image"],
        "accuracy_vs_T": ev["accuracy_at"],
        "early_exit": {
            "threshold": config.exit_threshold,
            "step": exit_step,
            "accuracy": ev["accuracy_at"][exit_step],
        },
        "gamma_means": (
            {k: v.tolist() for k, v in bj.gamma_means(net).items()}
            if net.config.norm == "bntt"
            else {}
        ),
        "history": history,
        "paper": paper,
        "epochs_run": len(history),
    }
