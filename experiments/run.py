"""Run a registered experiment and write its results folder.

    python -m experiments.run NAME [--set key=value ...] [--out DIR] [--show]
    python -m experiments.run --resume --out DIR [NAME] [--set data_dir=...]
    python -m experiments.run --list

NAME is an experiment or a sweep (a family of experiments drawn as one figure, run member
after member into one folder; :mod:`experiments.core.sweeps`).

Every argument, config value, results folder and dataset is checked before anything is
written and before JAX is imported, and the training step's memory before the folder exists;
an error is one line on stderr and exit code 2. A run that starts and then fails (training
diverged, no intact checkpoint to resume from, an unforeseen error) exits 1. The command holds
its folder's lock (:mod:`experiments.core.lock`) from the folder's creation to its end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

from bntt_jax.config import NetworkConfig
from bntt_jax.cpu.huge_pages import restart_with_huge_pages
from bntt_jax.metrics import energy
from experiments.core import estimates, lock, memory, registry, run_folder, sweeps
from experiments.core.config import (
    RESUME_SAFE_KEYS,
    ConfigError,
    ExperimentConfig,
    check_against_data,
)
from experiments.core.data import (
    DataCorruptError,
    DataMissingError,
    check_available,
    check_finite,
    data_source,
    load_dataset,
)
from experiments.core.exits import exit_with, fail, log_traceback, run_failed
from experiments.core.files import user_path
from experiments.core.overrides import (
    add_set_argument,
    apply_overrides,
    describe_keys,
    parse_overrides,
)
from experiments.core.run_folder import RunFolderError

EPILOG = """\
config keys (--set KEY=VALUE, repeatable; a run takes the shared and analysis keys and its
method's; defaults shown are the config's, each experiment sets its own: see --show):
{keys}

--resume continues the unfinished run in --out from its last committed epoch with the run's
own config.json; NAME may be left out. A --set that changes the run is refused; only
{safe} may change on resume (where the run reads its data, which must be the same;
which analyses follow the run).
A finished run is never modified. A sweep's --set applies to every member that has the key;
--resume on a sweep's folder keeps its finished members, resumes the interrupted one and runs
the rest.

One command writes a folder at a time: a second one exits 2 naming the first's PID and host.
Without a terminal, the log gets a progress line every progress_every_s seconds.

exit codes: 0 done; 2 the command cannot start (bad argument, config value, folder, data,
device count, or a training step larger than the memory: nothing was written); 1 the run
failed (training diverged, no intact checkpoint left to resume from, or an unforeseen error,
whose traceback is in log.txt; what was committed before stays intact); 130 interrupted
(Ctrl-C; resume it).
"""


@dataclasses.dataclass(frozen=True)
class Command:
    """What a command will do, resolved without JAX and without writing anything."""

    name: str
    config: ExperimentConfig | None  # None for a sweep
    out: Path
    paper: dict[str, Any]
    resume: bool
    run: run_folder.ResolvedRun | None = None  # one run's checked folder
    sweep: dict[str, Any] | None = None  # a sweep's record (experiments.core.sweeps)

    @property
    def configs(self) -> list[ExperimentConfig]:
        """The configs this command will train: one, or every member of a sweep."""
        if self.sweep is None:
            return [self.config]
        return [ExperimentConfig.from_dict(m["experiment"]) for m in self.sweep["members"]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.run",
        description="Run a registered bntt-jax experiment (one per table/figure of the papers).",
        epilog=EPILOG.format(keys=describe_keys(), safe=", ".join(RESUME_SAFE_KEYS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the registered experiments")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="measure this machine again for --show's time estimates (a few seconds)",
    )
    add_set_argument(parser, "override a config key, e.g. --set epochs=5 --set lr=0.1 (keys below)")
    parser.add_argument(
        "--out", type=user_path, help="results folder, new or empty (default results/NAME/TIME)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the unfinished run in --out"
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the resolved config (on --resume the run's own) and exit without running",
    )
    dist = parser.add_argument_group(
        "several processes (multi-host GPU/TPU, or CPU processes on one machine)"
    )
    dist.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first; on SLURM, Open MPI, Kubernetes or a TPU "
        "pod the settings come from the environment. Process 0 writes the results folder, "
        "which every process must be able to read.",
    )
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    dist.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    dist.add_argument("--process-id", type=int, metavar="I", help="this process, 0 .. N-1")
    return parser


def check_command(args: argparse.Namespace) -> Command:
    """Resolve and check everything about the command that needs no JAX and no data.

    Raises :class:`ConfigError`, :class:`experiments.core.run_folder.RunFolderError` (another
    command writing the folder among them) or ``KeyError`` (unknown experiment).
    """
    if args.out is not None:
        lock.check_free(args.out)  # the other writer is named, not what it has written
    if args.resume and run_folder.inspect(args.out).state == "sweep":
        record = sweeps.resolve_resume(args.out, args.overrides)
        if args.name is not None and args.name != record["name"]:
            raise RunFolderError(
                f"{args.out} holds a sweep of {record['name']}, not {args.name}. Resume it "
                f"with `python -m experiments.run --resume --out {args.out}`."
            )
        p = Command(record["name"], None, Path(args.out), record["paper"], True, sweep=record)
    elif args.resume:
        changes = parse_overrides(args.overrides)
        run = run_folder.resolve_run(args.name, None, args.out, True, changes=changes)
        p = Command(run.name, run.config, Path(args.out), run.paper, True, run)
    else:
        entry = registry.lookup(args.name)
        out = Path(args.out or Path("results") / args.name / time.strftime("%Y%m%d-%H%M%S"))
        if isinstance(entry, registry.Sweep):
            record = sweeps.resolve_new(entry, args.overrides)
            run_folder.check_new(run_folder.inspect(out))
            p = Command(args.name, None, out, entry.paper, False, sweep=record)
        else:
            config = apply_overrides(entry.config, args.overrides)
            run = run_folder.resolve_run(args.name, config, out, False, paper=entry.paper)
            p = Command(args.name, config, out, entry.paper, False, run)
    if p.sweep is not None:
        sweeps.check_members(p.out, p.sweep)
    return p


def missing_data(p: Command) -> DataMissingError | None:
    """Why the data of the command's runs are not there (``None`` if they are)."""
    for config in p.configs:
        try:
            check_available(config.dataset, config.data_dir)
        except DataMissingError as err:
            return err
    return None


def describe_network(network: Any) -> dict[str, Any]:
    """The resolved layers of a BNTT-family network, its spiking neurons and FLOPs (Eq. 22)."""
    if not isinstance(network, NetworkConfig):
        return {}
    rows = energy.layer_table(network)
    return {
        "layers": rows,
        "neurons": sum(r["neurons"] for r in rows),
        "flops_as_ann": sum(r["flops"] for r in rows),
    }


def _show(p: Command) -> str:
    missing = missing_data(p)
    data = {"data": f"missing: {missing}" if missing else "present"}
    own = None if p.sweep is not None else p.config
    estimate = {"time": estimates.describe_here(p.name, own)}
    if p.sweep is not None:
        return json.dumps(
            {"name": p.name, "out": str(p.out), "resume": p.resume, **estimate, **data, **p.sweep},
            indent=2,
        )
    return json.dumps(
        {
            "name": p.name,
            "out": str(p.out),
            "resume": p.resume,
            **estimate,
            **data,
            "experiment": p.config.to_dict(),
            "network": p.config.network_config.to_dict(),
            **describe_network(p.config.network_config),
            "training_memory": memory.gb(memory.estimate_bytes(p.config)),
            "paper": p.paper,
        },
        indent=2,
    )


def main(argv: list[str] | None = None, *, restart: bool = False) -> int:
    """The command line. ``restart``: once the command is known to be valid, re-execute it
    with huge pages for XLA's buffers (see :mod:`bntt_jax.cpu.huge_pages`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for name in registry.names():
            print(f"{name:28s} {registry.summary(name)}; {estimates.describe(name)}")
        return 0
    if args.calibrate:
        print(json.dumps(estimates.calibrate_again(), indent=2))
        return 0
    if args.resume and args.out is None:
        parser.error("--resume needs --out DIR, the folder of the run to continue")
    if not args.resume and not args.name:
        parser.error("give an experiment NAME (see --list), or --resume --out DIR")
    distributed = args.distributed or any(
        v is not None for v in (args.coordinator, args.num_processes, args.process_id)
    )
    if distributed and args.out is None:
        parser.error("with several processes give --out DIR: they must agree on the folder")
    try:
        p = check_command(args)
    except (ConfigError, RunFolderError, KeyError) as err:
        return fail(err)
    if args.show:
        print(_show(p))
        return 0
    if (missing := missing_data(p)) is not None:
        return fail(missing)
    if restart:
        restart_with_huge_pages("experiments.run", sys.argv[1:] if argv is None else argv)
    datasets: dict[tuple[str, str, bool], Any] = {}
    try:
        for config in p.configs:  # every member of a sweep is checked before the first runs
            source = data_source(config)
            if source not in datasets:
                datasets[source] = load_dataset(*source)
                check_finite(datasets[source])
            data = datasets[source]
            check_against_data(config, len(data.train_x))
    except (ConfigError, DataMissingError, DataCorruptError) as err:
        return fail(err)
    return _train(p, args, distributed, datasets)


def _train(p: Command, args: argparse.Namespace, distributed: bool, datasets: dict) -> int:
    """The checked command, with JAX: the devices, then the run or the sweep."""
    import jax  # JAX loads here, once every argument, the folder and the data are checked

    if distributed:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    from bntt_jax import parallel
    from experiments.core import runner

    try:
        mesh = parallel.data_mesh()
        for config in p.configs:
            runner.check_mesh(mesh, config)
            runner.check_device_memory(config, mesh)
    except ValueError as err:  # ConfigError among them
        return fail(err)
    primary = jax.process_index() == 0
    try:  # process 0 holds the folder from here to the end of the analyses
        with lock.hold(p.out) if primary else contextlib.nullcontext():
            return _write(p, mesh, datasets, primary)
    except KeyboardInterrupt:
        print(
            f"interrupted: what was committed is intact; continue with "
            f"python -m experiments.run --resume --out {p.out}",
            file=sys.stderr,
        )
        return 130
    except Exception as err:
        return run_failed(p.out, p.sweep is not None, err)


def _write(p: Command, mesh: Any, datasets: dict, primary: bool) -> int:
    """Train the run or the sweep (the folder's lock held), then the run's analyses."""
    import jax  # loaded already: the command is running

    from experiments.analyses.folders import after_run  # JAX: the runs' networks
    from experiments.core import runner  # JAX: loaded already

    if primary and p.sweep is not None:  # checked again under the lock
        if p.resume:
            sweeps.check_members(p.out, p.sweep)
        else:
            run_folder.check_new(run_folder.inspect(p.out))
    single = jax.process_count() == 1
    if p.sweep is not None:
        member = functools.partial(runner.train_member, mesh=mesh)
        sweeps.run_sweep(
            p.out,
            p.sweep,
            p.resume,
            member,
            primary=primary,
            datasets=datasets,
            analyse=after_run if single else None,
        )
    else:
        data = datasets[data_source(p.config)]
        runner.train(runner.run_plan(p.run, p.out, p.resume, data, mesh))
    if primary:
        print(f"results: {p.out}")
    if p.sweep is None:
        return analyse_finished(p.out)
    return 0


def analyse_finished(out: Path) -> int:
    """The finished run's analyses (its config's ``analyses``), on process 0 of a
    single-process run; exit 1 if they fail (the run itself is finished and intact)."""
    import jax  # loaded already: the run is done

    from experiments.analyses.folders import after_run  # JAX: the run's networks

    if jax.process_index() != 0:
        return 0
    if jax.process_count() > 1:
        print(f"analyses: run python -m experiments.analyze {out} in one process", file=sys.stderr)
        return 0
    try:
        after_run(out)
    except KeyboardInterrupt:
        print(
            f"interrupted during the analyses; the run is finished and intact. Run them "
            f"with: python -m experiments.analyze {out}",
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # the run is finished: say so, and how to redo the analyses
        log_traceback(out, "the analyses failed")
        print(
            f"error: the run finished, but its analyses failed ({type(err).__name__}: {err}; "
            f"the traceback is in {out / 'log.txt'}). Rerun them with: python -m "
            f"experiments.analyze {out}",
            file=sys.stderr,
        )
        return 1
    if (out / "analyses" / "report.md").is_file():
        print(f"analyses: {out / 'analyses'}")
    return 0


if __name__ == "__main__":
    exit_with(
        lambda: main(restart=True),
        "run the same command again (a run that had started: --resume --out ITS_FOLDER).",
    )
