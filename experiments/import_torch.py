"""Turn the authors' PyTorch BNTT checkpoint into a finished results folder, so that it is
tested, reported and analysed like a run trained here.

    python -m experiments.import_torch CHECKPOINT NAME [--set key=value ...] --out DIR

``CHECKPOINT`` is their ``.pth.tar`` (reading it needs PyTorch) or a ``.npz`` of the same
``state_dict`` keys (``bntt_jax.to_torch`` writes those; no torch needed). ``NAME`` is the
registered BNTT experiment it was trained as (``cifar10_bntt``: VGG9, leak 0.95; ``--set``
changes what differs, e.g. ``leak``, which the checkpoint does not store). The checkpoint's
own T, classes and input size must match that config and its dataset.

The folder is built aside (``.DIR.importing``) and renamed into place when complete, so a
crash or a kill leaves no partial folder at ``DIR``. It holds what a finished run holds: its
config (with the checkpoint's file name and SHA-256), the network as its only (epoch 0)
checkpoint, the end-of-run metrics and report on the test set (accuracy at every T, early
exit, spikes), and, as the config's ``analyses`` say, its analyses. ``python -m
experiments.analyze DIR`` works on it as on any run. Exit codes: 0 done; 2 the command cannot
start or the checkpoint is not a network of that config (nothing written); 1 the checkpoint
cannot be read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import bntt_jax as bj
from experiments.core import lock, record, registry, run_folder
from experiments.core.config import ConfigError
from experiments.core.data import DataMissingError, check_available, load_config_data
from experiments.core.exits import exit_with
from experiments.core.files import sha256, user_path
from experiments.core.overrides import add_set_argument, apply_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.import_torch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=user_path, help="the authors' .pth.tar, or a .npz")
    parser.add_argument("name", help="the registered BNTT experiment it was trained as")
    parser.add_argument("--out", type=user_path, required=True, help="the results folder to create")
    add_set_argument(parser, "config changes, as for experiments.run")
    return parser


class MismatchError(ValueError):
    """The checkpoint is readable but is not a network of the config and dataset."""


def _read(checkpoint: Path, config: Any, data: Any) -> Any:
    """The network of ``checkpoint`` as the config's architecture, checked against it."""
    source: Any = checkpoint
    if checkpoint.suffix == ".npz":
        with np.load(checkpoint) as arrays:
            source = {k: arrays[k] for k in arrays.files}
    net = bj.from_torch(source, config.network.arch, leak=config.network.leak)
    expected = config.network_config
    for field in ("num_steps", "num_classes", "img_size", "in_channels", "leak"):
        have, want = getattr(net.config, field), getattr(expected, field)
        if have == want:
            continue
        if field in ("num_steps", "leak"):
            fix = f"--set {field}={have} if that is how it was trained."
        else:
            fix = f"{config.dataset} needs {want}: is it a checkpoint of {config.dataset}?"
        raise MismatchError(f"the checkpoint's {field} is {have}, the config's {want}; {fix}")
    return net


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:  # everything checkable before JAX starts
        entry = registry.get(args.name)
        config = apply_overrides(entry.config, args.overrides)
        network = config.network
        authors = config.method == "bntt" and network.arch in ("vgg9", "vgg11")
        if not authors or network.norm != "bntt":
            raise ValueError(
                f"{args.name} is {config.method} {network.arch} "
                f"norm={getattr(network, 'norm', None)}; the authors' checkpoints are BNTT "
                "VGG9 / VGG11 (e.g. cifar10_bntt)."
            )
        if not args.checkpoint.is_file():
            raise FileNotFoundError(f"no checkpoint file at {args.checkpoint}.")
        lock.check_free(args.out)
        run_folder.check_new(run_folder.inspect(args.out))
        check_available(config.dataset, config.data_dir)
    except (
        KeyError,
        ConfigError,
        ValueError,
        FileNotFoundError,
        run_folder.RunFolderError,
        DataMissingError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from experiments.run import analyse_finished  # JAX: once the command is checked

    data = load_config_data(config)
    try:
        net = _read(args.checkpoint, config, data)
    except MismatchError as err:
        print(f"error: {args.checkpoint}: {err}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError, ImportError, OSError) as err:
        print(f"error: {args.checkpoint}: {err}", file=sys.stderr)
        return 1
    staging = args.out.parent / f".{args.out.name}.importing"
    try:  # the staging folder's lock travels with it into --out, held to the end
        with lock.hold(staging):
            run_folder.check_new(run_folder.inspect(args.out))  # again, under the lock
            _clear(staging)  # an earlier import killed before its rename: never a result
            try:
                write_folder(staging, args.name, config, entry.paper, net, data, args.checkpoint)
            except BaseException:
                _clear(staging)  # a half-built folder is never a result
                raise
            if args.out.exists():  # an empty folder (check_new refused anything else)
                (args.out / run_folder.LOCK).unlink(missing_ok=True)
                args.out.rmdir()
            os.rename(staging, args.out)
            print(f"results: {args.out}")
            return analyse_finished(args.out)
    except run_folder.RunFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _clear(folder: Path) -> None:
    """Delete everything in ``folder`` but its lock."""
    for entry in folder.iterdir():
        if entry.name != run_folder.LOCK:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def write_folder(
    out: Path,
    name: str,
    config: Any,
    paper: dict[str, Any],
    net: Any,
    data: Any,
    checkpoint: Path,
) -> None:
    """A finished run's folder for ``net``: config, epoch-0 checkpoint, metrics, report."""
    import optax  # JAX: once the command is checked

    from bntt_jax import train as tr
    from experiments.bntt import method
    from experiments.core import checkpoints

    start = time.perf_counter()
    record.write_config(
        out,
        {
            "format": record.FORMAT,
            "name": name,
            "experiment": config.to_dict(),
            "network": net.config.to_dict(),
            "paper": paper,
            "data": {
                "name": data.name,
                "train": len(data.train_x),
                "test": len(data.test_x),
                "fingerprint": data.fingerprint,
            },
            "imported": {"file": checkpoint.name, "sha256": sha256(checkpoint)},
        },
    )
    state = tr.TrainState.create(net, optax.identity())
    saved = {key: checkpoints.save(out, key, state) for key in ("last/0", "best/0")}
    metrics = method.final_metrics(net, data, config, [], paper)
    metrics["wall_time_s"] = time.perf_counter() - start
    metrics["imported"] = checkpoint.name
    best = {"epoch": 0, "accuracy": metrics["test_accuracy"], "checkpoint": "best/0"}
    manifest = {**record.new_manifest(), "best": best, "checkpoints": saved}
    writes = [
        lambda: method.METHOD.write_plots(out, metrics),
        lambda: method.METHOD.write_report(out, name, config, metrics),
    ]
    record.commit_finished(out, manifest, metrics, writes, print)


if __name__ == "__main__":
    exit_with(main, "run the same command again with a new --out.")
