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
from bntt_jax.cpu import choice, ffi
from experiments.core import lock, memory, run_folder
from experiments.core.config import ExperimentConfig, check_against_data
from experiments.core.data import Dataset, check_finite, iterate, load_config_data, num_batches
from experiments.core.ledger import Ledger
from experiments.core.method import Method


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or Inf; the message names where, and what was kept."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run whose every part is checked: its name, config, folder, the paper's values, its
    data and the device mesh."""

    name: str
    config: ExperimentConfig
    out: Path
    paper: dict[str, Any]
    resume: bool
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
    if primary:
        lock.check_free(out_dir)  # another writer is named before what it has written so far
    run = run_folder.resolve_run(name, config, out_dir, resume, paper=paper, primary=primary)
    config = run.config
    if data is None:  # missing or damaged data fail
        data = load_config_data(config)
    check_finite(data)
    check_against_data(config, len(data.train_x))
    mesh = parallel.data_mesh()  # data-parallel over all devices (one on a laptop)
    check_mesh(mesh, config)
    check_device_memory(config, mesh)
    return train(run_plan(run, out_dir, resume, data, mesh))


def check_device_memory(config: ExperimentConfig, mesh: Mesh) -> None:
    """Refuse a training step that cannot fit in the memory of the devices (or of this
    machine, on CPU) before anything is written (:mod:`experiments.core.memory`)."""
    device = mesh.devices.flat[0]
    if device.platform == "cpu":  # CPU devices share this machine's memory
        memory.check_memory(config, 1, None, "this machine")
        return
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
        available = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        memory.check_memory(config, mesh.size, available, f"each {device.device_kind}")


def train_member(
    name: str,
    config: ExperimentConfig,
    out_dir: Path,
    paper: dict[str, Any],
    resume: bool,
    data: Dataset,
    *,
    mesh: Mesh,
) -> dict[str, Any]:
    """:func:`run_experiment` for a member of a sweep whose data and mesh the command line
    checked: only the member's own folder is checked (it changes as the sweep goes on)."""
    primary = jax.process_index() == 0
    run = run_folder.resolve_run(name, config, out_dir, resume, paper=paper, primary=primary)
    return train(run_plan(run, out_dir, resume, data, mesh))


def run_plan(
    run: run_folder.ResolvedRun, out_dir: Path, resume: bool, data: Dataset, mesh: Mesh
) -> RunPlan:
    """The :class:`RunPlan` of a checked run and its checked data; a resumed run must see the
    data it started with (by fingerprint)."""
    if resume and jax.process_index() == 0:
        run_folder.check_same_data(run.folder, data.fingerprint, run.config.data_dir)
    return RunPlan(run.name, run.config, Path(out_dir), run.paper, resume, data, mesh)


def train(plan: RunPlan) -> dict[str, Any]:
    """Train the checked ``plan`` epoch by epoch, committing each (the ledger), then write
    the final metrics, plots and report; return the final metrics.

    Process 0 holds the folder's lock throughout (:mod:`experiments.core.lock`) and checks
    the folder again under it: another command may have written it since it was checked.
    An error after the folder exists is logged to ``log.txt`` with its traceback; what was
    committed before it stays, so the run can be resumed."""
    if jax.process_index() != 0:
        return _train(plan)
    with lock.hold(plan.out):
        folder = run_folder.inspect(plan.out)
        if plan.resume:
            run_folder.check_resumable(folder, plan.name)
        else:
            run_folder.check_new(folder)
        return _train(plan)


def _train(plan: RunPlan) -> dict[str, Any]:
    config, mesh = plan.config, plan.mesh
    method: Method = config.spec.load()
    network = config.network_config
    leg = {"processes": jax.process_count(), "devices": mesh.size, "data_dir": config.data_dir}
    config_record = None if plan.resume else _config_record(plan, network)
    ledger = Ledger.begin(plan.out, config=config_record, leg=leg)
    try:
        return _epochs(plan, method, network, ledger)
    except (TrainingDivergedError, KeyboardInterrupt):
        raise  # the guard logged it; Ctrl-C is no failure
    except Exception as err:
        ledger.log_failure(
            f"the run failed after epoch {ledger.epoch} was committed: {type(err).__name__}: "
            f"{first_line(err)} (the traceback is in log.txt). What was committed is intact: "
            f"fix the cause, then python -m experiments.run --resume --out {plan.out}"
        )
        raise


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, at most ``limit`` characters."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__


def _epochs(plan: RunPlan, method: Method, network: Any, ledger: Ledger) -> dict[str, Any]:
    """The run's epochs after ``ledger``'s last commit, and its end."""
    config, data, mesh = plan.config, plan.data, plan.mesh
    steps_per_epoch = num_batches(len(data.train_x), config.batch_size, config.max_train_batches)
    tx = method.optimizer(config, steps_per_epoch)
    state = tr.TrainState.create(method.init(jax.random.key(config.seed), network), tx)
    state = parallel.replicate(mesh, ledger.restore(state))
    schedule = tr.lr_schedule(
        config.lr, config.lr_schedule, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    ledger.log.info("%s", _start_line(plan, method.describe(network), steps_per_epoch))
    if jax.default_backend() == "cpu":
        ledger.log.info("%s\n%s", ffi.summary(), choice.describe())
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
            "epoch %3d  loss %.4f  train %.2f%%%s  (%.1fs)",
            epoch,
            record["train_loss"],
            100 * record["train_accuracy"],
            tested,
            record["epoch_time_s"],
        )
    return _finish(plan, method, state, ledger)


def _start_line(plan: RunPlan, network: str, steps_per_epoch: int) -> str:
    """The log's first line of a leg: the network, the data, the schedule and the devices."""
    config, data = plan.config, plan.data
    return (
        f"{plan.name}: {network} on {data.name} ({len(data.train_x)} train / "
        f"{len(data.test_x)} test), {config.epochs} epochs x {steps_per_epoch} steps, batch "
        f"{config.batch_size}, {config.optimizer} lr {config.lr:g} ({config.lr_schedule}), "
        f"{plan.mesh.size} device(s) in {jax.process_count()} process(es)"
    )


def _finish(plan: RunPlan, method: Method, state: Any, ledger: Ledger) -> dict[str, Any]:
    """The run's end: its final metrics, warnings, plots and report, committed as complete."""
    config = plan.config
    history = ledger.manifest["history"]
    metrics = method.final_metrics(state.net, plan.data, config, history, plan.paper)
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
        100 * metrics["test_accuracy"],
        100 * metrics["best_test_accuracy"],
        method.done_line(metrics),
        metrics["wall_time_s"],
    )
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
    desc = f"epoch {epoch}/{config.epochs}"
    with _progress(steps_per_epoch, desc, primary, config, guard.ledger.log) as bar:
        batches = iterate(
            data.train_x,
            data.train_y,
            config.batch_size,
            rng,
            data.augment,
            config.max_train_batches,
        )
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


def _progress(total: int, desc: str, primary: bool, config: ExperimentConfig, log: Any):
    """A tqdm bar on a terminal; without one (a batch job's log, a pipe), a line in the log
    every ``progress_every_s`` seconds (:class:`_LogProgress`); nothing on other processes."""
    terminal = sys.stderr.isatty() and not os.environ.get("CI")
    if primary and not terminal:
        return _LogProgress(total, desc, config.progress_every_s, config.batch_size, log)
    return tqdm(total=total, desc=desc, disable=not primary, leave=False, dynamic_ncols=True)


class _LogProgress:
    """The progress bar's stand-in in a log: every ``every`` seconds one line with the step,
    images per second and the epoch's remaining time."""

    disable = True  # no loss shown: reading it would sync the device every step

    def __init__(self, total: int, desc: str, every: float, batch: int, log: Any) -> None:
        self.total, self.desc, self.every, self.batch, self.log = total, desc, every, batch, log
        self.n, self.start = 0, time.perf_counter()
        self.last = self.start

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def set_postfix(self, **_: Any) -> None:
        pass

    def update(self) -> None:
        self.n += 1
        now = time.perf_counter()
        if now - self.last < self.every or self.n >= self.total:
            return
        self.last = now
        rate = self.n / (now - self.start)
        self.log.info(
            "%s: step %d/%d, %.1f images/s, about %s left in the epoch",
            self.desc,
            self.n,
            self.total,
            rate * self.batch,
            _duration((self.total - self.n) / rate),
        )


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


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
