"""Train and evaluate one experiment, writing its results folder.

The folder's layout and the protocol by which every epoch commits its checkpoints, metrics
and best-so-far as one unit (so that a kill at any instant, then ``--resume``, ends exactly
as an uninterrupted run) are in :mod:`experiments.rundir`; the checkpoints themselves in
:mod:`experiments.checkpoints`.

Under ``jax.distributed`` every process runs this code on the same data and the same global
batches (each feeds its own devices' rows); only process 0 writes the results folder, which
must be on a filesystem every process can read (it resumes from it).
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bntt_jax import parallel
from bntt_jax import train as tr
from experiments import checkpoints, rundir
from experiments.config import ExperimentConfig, check_against_data
from experiments.data import Dataset, iterate, load_dataset, num_batches
from experiments.methods import METHODS, evaluate, method_of  # noqa: F401 (evaluate: public)
from experiments.rundir import fault_point, write_json

# Re-exported: the public ways to read a results folder and evaluate its network.
load_checkpoint = checkpoints.load_checkpoint


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or Inf; the message names where, and what was kept."""


def _logger(out_dir: Path, primary: bool) -> logging.Logger:
    log = logging.getLogger(f"experiments.{out_dir}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in log.handlers:
        handler.close()
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if primary:
        handlers.append(logging.FileHandler(out_dir / "log.txt"))  # appends: every leg
    else:  # other processes print warnings only, and write nothing
        handlers[0].setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    return log


def _progress(total: int, desc: str, primary: bool):
    """A tqdm bar on a terminal; nothing in CI logs or pipes, nor on other processes."""
    from tqdm.auto import tqdm

    quiet = not primary or not sys.stderr.isatty() or bool(os.environ.get("CI"))
    return tqdm(total=total, desc=desc, disable=quiet, leave=False, dynamic_ncols=True)


# The optimiser is static data of the jitted step (TrainState.tx): the same settings give the
# same object, so a second run in one process (a resume, a notebook) reuses the compiled step.
_optimizer = functools.cache(tr.make_optimizer)


# One dispatch per step for all the tracked metrics (a TTFS step tracks ~100 of them).
_add_trees = jax.jit(lambda a, b: jax.tree.map(jnp.add, a, b))


@functools.cache
def _train_fn(method: str, options: tuple[tuple[str, Any], ...]):
    """The jitted training step of ``method`` with its static ``options``: one compilation
    for every run in this process with the same ones (a resume, a notebook)."""
    return METHODS[method].train_step(options)


def _check_data(data: Dataset) -> None:
    """The inputs must be finite: a NaN pixel would give finite, meaningless spikes."""
    for split, x in (("train", data.train_x), ("test", data.test_x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise ValueError(
                f"the {split} inputs of {data.name} hold {bad} NaN or Inf values; the data "
                "files are damaged or mis-normalised: fetch them again."
            )


def resolve(
    name: str | None,
    config: ExperimentConfig | None,
    out_dir: Path,
    resume: bool,
) -> tuple[str, ExperimentConfig, rundir.RunFolder]:
    """The experiment name and config a run in ``out_dir`` will use, after every check of the
    folder (nothing is written). On resume they are the run's own, from its config.json;
    a ``config`` that differs from it in any key but :data:`RESUME_SAFE_KEYS` is refused."""
    folder = rundir.inspect(out_dir)
    if jax.process_index() != 0:
        # The folder is process 0's: it may already be writing there, so the other
        # processes check nothing of it and only read a resumed run's config.
        if resume:
            saved = folder.config or rundir.read_json(Path(out_dir) / rundir.CONFIG)
            return saved["name"], config or ExperimentConfig.from_dict(saved["experiment"]), folder
        return name, config, folder
    if not resume:
        rundir.check_new(folder)
        if name is None or config is None:
            raise ValueError("a new run needs an experiment name and a config.")
        return name, config, folder
    rundir.check_resumable(folder, name)
    saved = ExperimentConfig.from_dict(folder.config["experiment"])
    if config is not None:
        rundir.check_resume_changes(saved, config, out_dir, folder.config["name"])
        saved = config
    return folder.config["name"], saved, folder


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
    match it, except :data:`experiments.config.RESUME_SAFE_KEYS`). ``data``: the dataset,
    if already loaded. Every check happens before anything is written.
    """
    leg_start = time.perf_counter()
    out_dir = Path(out_dir)
    primary = jax.process_index() == 0
    name, config, folder = resolve(name, config, out_dir, resume)
    if resume:
        paper = (folder.config or {}).get("paper", {})
    if data is None:  # missing or damaged data fail
        data = load_dataset(config.dataset, config.data_dir, config.normalize)
    check_against_data(config, len(data.train_x), len(data.test_x))
    _check_data(data)
    if resume and primary:
        rundir.check_same_data(folder, data.fingerprint, config.data_dir)
    mesh = parallel.data_mesh()  # data-parallel over all devices (one on a laptop)
    parallel.check_batch_size(mesh, config.batch_size)
    parallel.check_batch_size(mesh, config.eval_batch_size)
    net_config = config.network(data.num_classes, data.input_shape)
    method = method_of(config)

    # ----------------------------------------------------------- side effects from here on
    if primary:
        out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        manifest = rundir.new_manifest()
        resolved = {
            "format": rundir.FORMAT,
            "name": name,
            "experiment": config.to_dict(),
            "network": net_config.to_dict(),
            "paper": paper or {},
            "data": {
                "name": data.name,
                "train": len(data.train_x),
                "test": len(data.test_x),
                "fingerprint": data.fingerprint,
            },
        }
        if primary:  # first, so that a folder with anything of ours in it holds a run
            write_json(out_dir / rundir.CONFIG, resolved)
            fault_point("config_written", 0)
    log = _logger(out_dir, primary)
    if resume:
        manifest = (folder.manifest if primary else None) or rundir.new_manifest()
        if primary:
            manifest = rundir.recover(out_dir, manifest, log.warning)
    first_epoch = _agree(manifest["epoch"])
    if primary:
        rundir.collect(out_dir, rundir.kept(manifest))  # partial or uncommitted writes
        if resume:
            _write_progress(out_dir, manifest)

    steps_per_epoch = num_batches(len(data.train_x), config.batch_size, config.max_train_batches)
    tx = _optimizer(
        epochs=config.epochs, steps_per_epoch=steps_per_epoch, **method.optimizer_options(config)
    )
    schedule = tr.lr_schedule(
        config.lr, config.lr_schedule, epochs=config.epochs, steps_per_epoch=steps_per_epoch
    )
    state = tr.TrainState.create(method.init(jax.random.key(config.seed), net_config), tx)
    if first_epoch:
        state = checkpoints.restore_state(out_dir / "checkpoints" / f"last/{first_epoch}", state)
        log.info("resumed %s from epoch %d (step %d)", out_dir, first_epoch, int(state.step))
    state = parallel.replicate(mesh, state)
    manifest["legs"] = [
        *manifest["legs"],
        {
            "from_epoch": first_epoch,
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "processes": jax.process_count(),
            "devices": mesh.size,
            "data_dir": config.data_dir,
        },
    ]
    elapsed_before = float(manifest["elapsed_s"])

    log.info(
        "%s: %s on %s (%d train / %d test), %d epochs x %d steps, batch %d, %s lr %g "
        "(%s), %d device(s) in %d process(es)",
        name, method.describe(net_config), data.name,
        len(data.train_x), len(data.test_x), config.epochs, steps_per_epoch,
        config.batch_size, config.optimizer, config.lr, config.lr_schedule, mesh.size,
        jax.process_count(),
    )  # fmt: skip
    train_step = _train_fn(method.name, method.step_options(config))
    seed_key = jax.random.key(config.seed)
    guard = _Guard(method.flag_names(state.net), out_dir, manifest, log)

    for epoch in range(first_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        # One generator per epoch: the shuffle and augmentation of epoch e are the same
        # whether or not the run was interrupted before it.
        rng = np.random.default_rng([config.seed, epoch])
        sums: dict[str, jax.Array] = {}
        epoch_index = jnp.int32(epoch - 1)  # 0-based, as the TTFS paper's p(e)
        with _progress(steps_per_epoch, f"epoch {epoch}/{config.epochs}", primary) as bar:
            batches = iterate(
                data.train_x, data.train_y, config.batch_size, rng, data.augment,
                config.max_train_batches,
            )  # fmt: skip
            for i, (x, y) in enumerate(batches):
                state, m = train_step(
                    state, *parallel.shard_batch(mesh, x, y), seed_key, epoch_index
                )
                guard.push(epoch, i, m["finite"], steps_per_epoch)
                tracked = method.tracked(m)  # summed on the device, read once an epoch
                sums = tracked if not sums else _add_trees(sums, tracked)
                if not bar.disable and bar.n % 10 == 0:  # a host sync: only for a shown bar
                    bar.set_postfix(
                        loss=f"{float(m['loss']):.3f}", acc=f"{float(m['accuracy']):.3f}"
                    )
                bar.update()
        guard.flush()  # before anything of this epoch is written
        sums = jax.device_get(sums)  # one transfer for all the epoch's training metrics
        record = {"epoch": epoch, **{k: float(v) / steps_per_epoch for k, v in sums.items()}}
        record |= method.epoch_record(state.net)
        record |= {
            "lr": float(schedule(int(state.step) - 1)),
            "epoch_time_s": time.perf_counter() - t0,
        }
        best = manifest["best"]
        new_checkpoints: dict[str, dict[str, str]] = {}
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            tested = method.evaluate(state.net, data, config)
            record |= tested
            accuracy = tested["test_accuracy"]
            if best is None or accuracy > best["accuracy"]:
                best = {"epoch": epoch, "accuracy": accuracy, "checkpoint": f"best/{epoch}"}
                if primary:
                    new_checkpoints[f"best/{epoch}"] = checkpoints.save(
                        out_dir, f"best/{epoch}", state
                    )
                    fault_point("best_saved", epoch)
        if primary:
            new_checkpoints[f"last/{epoch}"] = checkpoints.save(out_dir, f"last/{epoch}", state)
            fault_point("last_saved", epoch)
        manifest = _next_manifest(
            manifest, record, best, new_checkpoints,
            elapsed_before + time.perf_counter() - leg_start,
        )  # fmt: skip
        guard.manifest = manifest
        if primary:
            rundir.commit(out_dir, manifest, epoch)
            fault_point("committed", epoch)
            _write_progress(out_dir, manifest)
            fault_point("metrics_written", epoch)
            rundir.collect(out_dir, rundir.kept(manifest))
            fault_point("collected", epoch)
        log.info(
            "epoch %3d  loss %.4f  train %.2f%%%s  (%.1fs)",
            epoch, record["train_loss"], 100 * record["train_accuracy"],
            f"  test {100 * record['test_accuracy']:.2f}%" if "test_accuracy" in record else "",
            record["epoch_time_s"],
        )  # fmt: skip

    metrics = method.final_metrics(state.net, data, config, manifest["history"], paper or {})
    metrics["wall_time_s"] = elapsed_before + time.perf_counter() - leg_start
    for warning in method.warnings(metrics):
        log.error("%s", warning)
    if primary:
        method.write_plots(out_dir, metrics)
        fault_point("plots_written", config.epochs)
        method.write_report(out_dir, name, config, net_config, metrics)
        fault_point("report_written", config.epochs)
        write_json(out_dir / rundir.METRICS, metrics)
        fault_point("final_metrics_written", config.epochs)
        manifest = {**manifest, "complete": True, "elapsed_s": metrics["wall_time_s"]}
        rundir.commit(out_dir, manifest, config.epochs)
        fault_point("completed", config.epochs)
    log.info(
        "done: test accuracy %.2f%% (best %.2f%%), %s, %.1fs",
        100 * metrics["test_accuracy"], 100 * metrics["best_test_accuracy"],
        method.done_line(metrics), metrics["wall_time_s"],
    )  # fmt: skip
    return metrics


def _write_progress(out_dir: Path, manifest: dict[str, Any]) -> None:
    """``metrics.json`` of an unfinished run: the committed history."""
    write_json(out_dir / rundir.METRICS, {"history": manifest["history"], "complete": False})


def _agree(value: int) -> int:
    """Process 0's value on every process (it alone reads the folder's commit record)."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _next_manifest(
    manifest: dict[str, Any],
    record: dict[str, Any],
    best: dict[str, Any] | None,
    new_checkpoints: dict[str, dict[str, str]],
    elapsed: float,
) -> dict[str, Any]:
    """The commit record after ``record``'s epoch. It keeps the checkpoints a fall-back of one
    epoch needs: the last two epochs, and the best checkpoint of each."""
    epoch = record["epoch"]
    previous_best = manifest["best"]["checkpoint"] if manifest["best"] else None
    keep = {f"last/{epoch}", f"last/{epoch - 1}", best and best["checkpoint"], previous_best}
    merged = {**manifest["checkpoints"], **new_checkpoints}
    return {
        **manifest,
        "epoch": epoch,
        "history": [*manifest["history"], record],
        "best": best,
        "checkpoints": {k: v for k, v in merged.items() if k in keep},
        "elapsed_s": elapsed,
    }


class _Guard:
    """Stops training at the first non-finite loss, gradient, parameter or statistic.

    ``train_step`` returns a vector of finiteness flags per step; the guard reads each one a
    step late (when the next step is already queued, so the device never waits) and again at
    the end of the epoch, before anything of that epoch is written.
    """

    def __init__(
        self, names: list[str], out_dir: Path, manifest: dict[str, Any], log: logging.Logger
    ):
        self.names = names
        self.out_dir, self.manifest, self.log = out_dir, manifest, log
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
        committed = int(self.manifest["epoch"])
        if jax.process_index() != 0:
            kept = "Process 0 reports what was kept."
        elif committed:
            key = f"last/{committed}"
            problem = rundir.verify(
                self.out_dir / "checkpoints" / key, self.manifest["checkpoints"][key]
            )
            kept = (
                f"The checkpoint of epoch {committed} ({self.out_dir / 'checkpoints' / key}) "
                "is intact (verified)."
                if problem is None
                else f"The checkpoint of epoch {committed} cannot be verified: {problem}."
            )
        else:
            kept = "No epoch was committed, so no checkpoint exists."
        message = (
            f"training stopped: {what} became NaN or Inf at epoch {epoch}, batch {batch + 1} "
            f"(step {(epoch - 1) * steps_per_epoch + batch + 1}). Nothing of epoch {epoch} was "
            f"written. {kept} Try a lower learning rate in a new run (--set lr=...)."
        )
        self.log.error("%s", message)
        raise TrainingDivergedError(message)
