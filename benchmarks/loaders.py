"""How fast each dataset reader loads and feeds training, against how fast training consumes it.

    python -m benchmarks.loaders [--dir DIR] [--tiny-images 2000] [--dvs-recordings 200]

Writes full-size synthetic files in each canonical format (CIFAR-10/100 archives, MNIST's IDX
files; a Tiny-ImageNet release of ``--tiny-images`` JPEGs, whose decoding rate is extrapolated
to the 110,000 of the real one, and its cache at full size; CIFAR10-DVS recordings likewise,
scaled to its 10,000), then measures for each dataset:
the first load (decoding), a second load (the cache, where there is one: the whole load in a
new process, as a second run does it, of a full-size cache), and the rate at which
shuffled, augmented training batches come out of the loader, against the time the entry's
training step takes at the rates measured in ``experiments/timings.json``. It runs with huge
pages, as ``python -m experiments.run`` does (:mod:`bntt_jax.cpu.huge_pages`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import experiments  # noqa: F401  (registers the entries)
from experiments.core import registry
from experiments.core.data import dvs, iterate, load_dataset
from experiments.core.data import tiny_imagenet as tiny
from experiments.core.estimates import derived_seconds
from tests.helpers.data import write_fake_cifar, write_idx


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def second_run(name: str, folder: Path) -> float:
    """Seconds a new process (a second run, with this one's environment: the cache, huge
    pages) takes to load ``name`` from ``folder``, imports excluded."""
    code = (
        "import sys, time; from experiments.core.data import load_dataset; "
        "t = time.perf_counter(); load_dataset(sys.argv[1], sys.argv[2]); "
        "print(time.perf_counter() - t)"
    )
    root = str(Path(__file__).parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, name, str(folder)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.split()[-1])


def _rate(data, entry: str) -> float:
    return batch_rate(data, registry.get(entry).config.batch_size)


def batch_rate(data, batch: int, batches: int = 20) -> float:
    """Shuffled, augmented training batches per second out of the loader."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in iterate(data.train_x, data.train_y, batch, rng, data.augment, max_batches=batches):
        pass
    return batches / (time.perf_counter() - start)


def step_seconds(entry: str) -> float:
    """One training step of ``entry`` at the measured rates (its epoch time over its steps)."""
    config = registry.get(entry).config.replace(epochs=1, eval_every=1)
    steps = config.facts.train_size // config.batch_size
    return derived_seconds(config) / steps


def _write_mnist(folder: Path) -> None:
    rng = np.random.default_rng(1)
    for name, shape, magic in (
        ("train-images-idx3-ubyte.gz", (60_000, 28, 28), 2051),
        ("train-labels-idx1-ubyte.gz", (60_000,), 2049),
        ("t10k-images-idx3-ubyte.gz", (10_000, 28, 28), 2051),
        ("t10k-labels-idx1-ubyte.gz", (10_000,), 2049),
    ):
        high = 256 if magic == 2051 else 10
        write_idx(folder / name, magic, rng.integers(0, high, shape, dtype=np.uint8))


def _write_tiny(folder: Path, images: int) -> None:
    from PIL import Image  # the [data] extra

    root = folder / tiny.FOLDER
    wnids = [f"n{i:08d}" for i in range(200)]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    rng = np.random.default_rng(2)
    per_class = max(1, images // 200)
    for wnid in wnids:
        (root / "train" / wnid / "images").mkdir(parents=True)
        for k in range(per_class):
            pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "train" / wnid / "images" / f"{k}.JPEG")
    lines = []
    for k in range(max(1, images // 10)):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            root / "val" / "images" / f"val_{k}.JPEG"
        )
        lines.append(f"val_{k}.JPEG\t{wnids[k % 200]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temp dir)")
    parser.add_argument("--tiny-images", type=int, default=2000)
    parser.add_argument("--dvs-recordings", type=int, default=200)
    parser.add_argument("--dvs-events", type=int, default=200_000, help="events per recording")
    args = parser.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="loaders-"))
    (folder / "cache").mkdir(parents=True, exist_ok=True)
    os.environ["BNTT_JAX_CACHE"] = str(folder / "cache")
    rows = _cifar_and_mnist_rows(folder)
    tiny_row, tiny_first, decoded = _tiny_imagenet_row(folder, args.tiny_images)
    dvs_row, dvs_first, binned = _dvs_row(folder, args.dvs_recordings, args.dvs_events)
    rows += [tiny_row, dvs_row]
    # a second run, on a later day: the cache files written back to disk, this process's
    # datasets freed, then each full-size cache loaded by a new process
    os.sync()
    second = {name: second_run(name, folder) for name in ("tiny_imagenet", "cifar10_dvs")}
    out = _print_table(rows, second)
    note = (
        f"tiny_imagenet's first load: {tiny_first:.1f} s for {decoded} JPEGs, scaled to "
        f"110,000; cifar10_dvs's: {dvs_first:.1f} s for {binned} recordings of "
        f"{args.dvs_events} events, scaled to 10,000; the cached loads read full-size "
        "cache files."
    )
    print(note)
    print(json.dumps(out))
    return 0


def _cifar_and_mnist_rows(folder: Path) -> list[tuple]:
    """CIFAR-10, CIFAR-100 and MNIST at full size: ``(dataset, entry, first load, rate)``."""
    rows = []
    for name, entry in (("cifar10", "cifar10_bntt"), ("cifar100", "cifar100_bntt")):
        archive = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
        n = (10_000,) * 5 if name == "cifar10" else (50_000,)
        write_fake_cifar(folder / archive[name], name, n_train=n, n_test=10_000)
        data, first = _timed(lambda name=name: load_dataset(name, str(folder)))
        rows.append((name, entry, first, _rate(data, entry)))
    _write_mnist(folder)
    data, first = _timed(lambda: load_dataset("mnist", str(folder)))
    rows.append(("mnist", "smnist_bntt", first, _rate(data, "smnist_bntt")))
    return rows


def _tiny_imagenet_row(folder: Path, images: int) -> tuple[tuple, float, int]:
    """Tiny-ImageNet: ``images`` JPEGs decoded, the rate scaled to the release's 110,000, and
    the loader's rate on a full-size cache (the row, the first load, the images decoded)."""
    _write_tiny(folder, images)
    small, tiny_first = _timed(lambda: load_dataset("tiny_imagenet", str(folder)))
    decoded = len(small.train_x) + len(small.test_x)
    first_full = tiny_first * 110_000 / decoded  # decoding scales with the images
    # the release's cache replaced by a full-size one (110,000 images), then the whole
    # second run's load timed: the cache read, the fingerprint and the standardised images
    rng = np.random.default_rng(3)
    (cache,) = (folder / "cache").glob("tiny-imagenet-*.npz")
    np.savez(
        cache,
        train_x=rng.integers(0, 256, (100_000, 64, 64, 3), dtype=np.uint8),
        train_y=rng.integers(0, 200, 100_000).astype(np.int32),
        test_x=rng.integers(0, 256, (10_000, 64, 64, 3), dtype=np.uint8),
        test_y=rng.integers(0, 200, 10_000).astype(np.int32),
    )
    data = load_dataset("tiny_imagenet", str(folder))
    entry = "tiny_imagenet_bntt"
    return ("tiny_imagenet", entry, first_full, _rate(data, entry)), tiny_first, decoded


def _dvs_row(folder: Path, recordings: int, events: int) -> tuple[tuple, float, int]:
    """CIFAR10-DVS: ``recordings`` recordings of ``events`` events each, binned; the binning
    rate scaled to the release's 10,000, and a full-size frames cache read back (the row, the
    first load, the recordings binned)."""
    dvs_root = folder / dvs.FOLDER
    rng = np.random.default_rng(4)
    per_class = max(1, recordings // 10)
    for name in dvs.CLASSES:
        (dvs_root / name).mkdir(parents=True)
        for i in range(per_class):
            index = i if i < per_class // 10 + 1 else 100 + i
            address = (
                (rng.integers(0, 128, events) << 8)
                | (rng.integers(0, 128, events) << 1)
                | rng.integers(0, 2, events)
            )
            t = np.sort(rng.integers(0, 1_300_000, events))
            body = np.stack([address, t], 1).astype(">u4").tobytes()
            (dvs_root / name / f"cifar10_{name}_{index}.aedat").write_bytes(
                b"#!AER-DAT2.0\r\n" + body
            )
    small, dvs_first = _timed(lambda: load_dataset("cifar10_dvs", str(folder)))
    binned = len(small.train_x) + len(small.test_x)
    # the release's cache replaced by a full-size one (10,000 recordings), then the whole
    # second run's load timed: the cache read, the split and the float32 frames
    (cache,) = (folder / "cache").glob("cifar10-dvs-*.npz")
    np.savez(
        cache,
        frames=np.zeros((10_000, 20, 42, 42, 2), np.uint16),
        labels=np.repeat(np.arange(10, dtype=np.int32), 1_000),
        index=np.tile(np.arange(1_000), 10),
    )
    data = load_dataset("cifar10_dvs", str(folder))
    entry = "dvs_cifar10_bntt"
    return (
        ("cifar10_dvs", entry, dvs_first * 10_000 / binned, _rate(data, entry)),
        dvs_first,
        binned,
    )


def _print_table(rows: list[tuple], second: dict[str, float]) -> list[dict]:
    """Print the table of loader rates against the training step; return it as records."""
    header = (
        "dataset",
        "first load",
        "cached",
        "batch",
        "loader batches/s",
        "train step s",
        "loader / training",
    )
    print("{:14s} {:>12s} {:>8s} {:>6s} {:>17s} {:>13s} {:>18s}".format(*header))
    out = []
    for name, entry, first, rate in rows:
        batch, step = registry.get(entry).config.batch_size, step_seconds(entry)
        cached = f"{second[name]:.1f} s" if name in second else "–"
        print(
            f"{name:14s} {first:10.1f} s {cached:>8s} {batch:6d} {rate:17.1f} {step:13.1f} "
            f"{rate * step:17.0f}x"
        )
        out.append(
            {
                "dataset": name,
                "first_load_s": first,
                "cached_load_s": second.get(name),
                "batch": batch,
                "loader_batches_per_s": rate,
                "train_step_s": step,
            }
        )
    return out


if __name__ == "__main__":
    from bntt_jax.cpu.huge_pages import restart_with_huge_pages

    restart_with_huge_pages("benchmarks.loaders", sys.argv[1:])  # as experiments.run loads
    raise SystemExit(main())
