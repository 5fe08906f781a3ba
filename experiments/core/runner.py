"""Train and evaluate one experiment, writing its results folder.

:func:`train` is the run: a loop over epochs that hands every epoch to the run's
:class:`~experiments.core.ledger.Ledger` (which commits it crash-safely) and asks the method
(:class:`~experiments.core.method.Method`) for everything that differs between methods. It
takes a :class:`RunPlan` whose every part is already checked: the command line builds it
from its own checks (:mod:`experiments.run`), :func:`run_experiment` from the same checks for
a caller in Python. Nothing is checked twice.

Under ``jax.distributed`` every process runs this code on the same data and the same global
batches (each feeds its own devices' rows); only process 0 writes the results folder, which
must be on a filesystem every process can read (it resumes from it).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from bntt_jax import parallel
from bntt_jax import train as tr
from experiments.core import folder as run_folder
from experiments.core.config import ExperimentConfig, check_against_data
from experiments.core.data import Dataset, check_finite, iterate, load_dataset, num_batches
from experiments.core.ledger import Ledger
from experiments.core.method import Method


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or Inf; the message names where, and what was kept."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run whose every part is checked: its name, config, folder (with what it has
    committed, on resume), the paper's values, its data and the device mesh."""

    name: str
    config: ExperimentConfig
    out: Path
    paper: dict[str, Any]
    resume: bool
    committed: dict[str, Any] | None
    data: Dataset
    mesh: Mesh


def check_mesh(mesh: Mesh, config: ExperimentConfig) -> None:
    """Both batch sizes must split evenly over the devices."""
    parallel.check_batch_size(mesh, config.batch_size)
    parallel.check_batch_size(mesh, config.eval_batch_size)


def run_experiment(
    name: str | None,
    config: ExperimentConfig | None,
    out_dir: Path,
    paper: dict[str, Any] | None = None,
    resume: bool = False,
    data: Dataset | None = None,
) -> dict[str, Any]:
    """Train ``config`` and write the results folder ``out_dir``; return the final metrics.

    With ``resume=True`` continue the unfinished run in ``out_dir`` from its last committed
    epoch, with its own config (``name`` and ``config`` may be ``None``; if given they must
    match it, except :data:`experiments.core.config.RESUME_SAFE_KEYS`). ``data``: the dataset,
    if already loaded. Every check happens before anything is written.
    """
    primary = jax.process_index() == 0
    run = run_folder.resolve_run(name, config, out_dir, resume, paper=paper, primary=primary)
    config = run.config
    if data is None:  # missing or damaged data fail
        data = load_dataset(config.dataset, config.data_dir, config.normalize)
    check_finite(data)
    check_against_data(config, len(data.train_x), len(data.test_x))
    mesh = parallel.data_mesh()  # data-parallel over all devices (one on a laptop)
    check_mesh(mesh, config)
    return train(plan(run, out_dir, resume, data, mesh))


def train_member(
    name: str, config: ExperimentConfig, out_dir: Path, paper: dict[str, Any], resume: bool,
    data: Dataset, *, mesh: Mesh,
) -> dict[str, Any]:  # fmt: skip
    """:func:`run_experiment` for a member of a sweep whose data and mesh the command line
    checked: only the member's own folder is checked (it changes as the sweep goes on)."""
    primary = jax.process_index() == 0
    run = run_folder.resolve_run(name, config, out_dir, resume, paper=paper, primary=primary)
    return train(plan(run, out_dir, resume, data, mesh))


def plan(
    run: run_folder.ResolvedRun, out_dir: Path, resume: bool, data: Dataset, mesh: Mesh
) -> RunPlan:
    """The :class:`RunPlan` of a checked run and its checked data; a resumed run must see the
    data it started with (by fingerprint)."""
    if resume and jax.process_index() == 0:
        run_folder.check_same_data(run.folder, data.fingerprint, run.config.data_dir)
    committed = run.folder.manifest if resume else None
    return RunPlan(run.name, run.config, Path(out_dir), run.paper, resume, committed, data, mesh)


def train(plan: RunPlan) -> dict[str, Any]:
    """Train the checked ``plan`` epoch by epoch, committing each (the ledger), then write
    the final metrics, plots and report; return the final metrics."""
    config, data, mesh = plan.config, plan.data, plan.mesh
    method: Method = config.spec.load()
    network = config.network_config
    leg = {"processes": jax.process_count(), "devices": mesh.size, "data_dir": config.data_dir}
    record = None if plan.resume else _config_record(plan, network)
    ledger = Ledger.begin(plan.out, record=record, committed=plan.committed, leg=leg)
    steps_per_epoch = num_batches(len(data.train_x), config.batch_size, config.max_train_batches)
    tx = method.optimizer(config, steps_per_epoch)
    state = tr.TrainState.create(method.init(jax.random.key(config.seed), network), tx)
    state = parallel.replicate(mesh, ledger.restore(state))
    schedule = tr.lr_schedule(
        config.lr, config.lr_schedule, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    ledger.log.info(
        "%s: %s on %s (%d train / %d test), %d epochs x %d steps, batch %d, %s lr %g (%s), "
        "%d device(s) in %d process(es)",
        plan.name, method.describe(network), data.name, len(data.train_x), len(data.test_x),
        config.epochs, steps_per_epoch, config.batch_size, config.optimizer, config.lr,
        config.lr_schedule, mesh.size, jax.process_count(),
    )  # fmt: skip
    step = method.train_step(config)
    guard = _Guard(method.flag_names(state.net), ledger)
    for epoch in range(ledger.epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        state, means = _train_epoch(step, state, plan, epoch, steps_per_epoch, guard, method)
        record = {"epoch": epoch, **means, **method.epoch_record(state.net)}
        record |= {
            "lr": float(schedule(int(state.step) - 1)),
            "epoch_time_s": time.perf_counter() - t0,
        }
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            record |= method.evaluate(state.net, data, config)
        ledger.commit_epoch(record, state)
        tested = f"  test {100 * record['test_accuracy']:.2f}%" if "test_accuracy" in record else ""
        ledger.log.info(
            "epoch %3d  loss %.4f  train %.2f%%%s  (%.1fs)", epoch, record["train_loss"],
            100 * record["train_accuracy"], tested, record["epoch_time_s"],
        )  # fmt: skip
    metrics = method.final_metrics(state.net, data, config, ledger.manifest["history"], plan.paper)
    metrics["wall_time_s"] = ledger.elapsed()
    for warning in method.warnings(metrics):
        ledger.log.error("%s", warning)
    ledger.finish(
        metrics,
        lambda: method.write_plots(plan.out, metrics),
        lambda: method.write_report(plan.out, plan.name, config, metrics),
    )
    ledger.log.info(
        "done: test accuracy %.2f%% (best %.2f%%), %s, %.1fs",
        100 * metrics["test_accuracy"], 100 * metrics["best_test_accuracy"],
        method.done_line(metrics), metrics["wall_time_s"],
    )  # fmt: skip
    return metrics


def _config_record(plan: RunPlan, network: Any) -> dict[str, Any]:
    """``config.json`` of a new run: its config, network, the paper's values, its data."""
    data = plan.data
    return {
        "format": run_folder.FORMAT,
        "name": plan.name,
        "experiment": plan.config.to_dict(),
        "network": network.to_dict(),
        "paper": plan.paper or {},
        "data": {
            "name": data.name,
            "train": len(data.train_x),
            "test": len(data.test_x),
            "fingerprint": data.fingerprint,
        },
    }


# One dispatch per step for all the tracked metrics (a TTFS step tracks ~100 of them).
_add_trees = jax.jit(lambda a, b: jax.tree.map(jnp.add, a, b))


def _train_epoch(step, state, plan, epoch, steps_per_epoch, guard, method):
    """One epoch of training steps; returns the state and the epoch's mean metrics."""
    config, data = plan.config, plan.data
    # One generator per epoch: the shuffle and augmentation of epoch e are the same whether
    # or not the run was interrupted before it.
    rng = np.random.default_rng([config.seed, epoch])
    seed_key, epoch_index = jax.random.key(config.seed), jnp.int32(epoch - 1)  # 0-based
    sums: dict[str, jax.Array] = {}
    primary = jax.process_index() == 0
    with _progress(steps_per_epoch, f"epoch {epoch}/{config.epochs}", primary) as bar:
        batches = iterate(
            data.train_x, data.train_y, config.batch_size, rng, data.augment,
            config.max_train_batches,
        )  # fmt: skip
        for i, (x, y) in enumerate(batches):
            state, m = step(state, *parallel.shard_batch(plan.mesh, x, y), seed_key, epoch_index)
            guard.push(epoch, i, m["finite"], steps_per_epoch)
            tracked = method.tracked(m)  # summed on the device, read once an epoch
            sums = tracked if not sums else _add_trees(sums, tracked)
            if not bar.disable and bar.n % 10 == 0:  # a host sync: only for a shown bar
                bar.set_postfix(loss=f"{float(m['loss']):.3f}", acc=f"{float(m['accuracy']):.3f}")
            bar.update()
    guard.flush()  # before anything of this epoch is written
    sums = jax.device_get(sums)  # one transfer for all the epoch's training metrics
    return state, {k: float(v) / steps_per_epoch for k, v in sums.items()}


def _progress(total: int, desc: str, primary: bool):
    """A tqdm bar on a terminal; nothing in CI logs or pipes, nor on other processes."""
    quiet = not primary or not sys.stderr.isatty() or bool(os.environ.get("CI"))
    return tqdm(total=total, desc=desc, disable=quiet, leave=False, dynamic_ncols=True)


class _Guard:
    """Stops training at the first non-finite loss, gradient, parameter or statistic.

    ``train_step`` returns a vector of finiteness flags per step; the guard reads each one a
    step late (when the next step is already queued, so the device never waits) and again at
    the end of the epoch, before anything of that epoch is written.
    """

    def __init__(self, names: list[str], ledger: Ledger):
        self.names, self.ledger = names, ledger
        self.pending: tuple[int, int, int, jax.Array] | None = None

    def push(self, epoch: int, batch: int, flags: jax.Array, steps_per_epoch: int) -> None:
        self.flush()
        self.pending = (epoch, batch, steps_per_epoch, flags)

    def flush(self) -> None:
        if self.pending is None:
            return
        epoch, batch, steps_per_epoch, flags = self.pending
        self.pending = None
        ok = np.asarray(flags)
        if ok.all():
            return
        what = self.names[int(np.argmin(ok))]
        message = (
            f"training stopped: {what} became NaN or Inf at epoch {epoch}, batch {batch + 1} "
            f"(step {(epoch - 1) * steps_per_epoch + batch + 1}). Nothing of epoch {epoch} was "
            f"written. {self.ledger.last_checkpoint_state()} Try a lower learning rate in a new "
            "run (--set lr=...)."
        )
        self.ledger.log.error("%s", message)
        raise TrainingDivergedError(message)
