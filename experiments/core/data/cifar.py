"""CIFAR-10 and CIFAR-100 from the canonical ``cifar-10-python.tar.gz`` /
``cifar-100-python.tar.gz`` archive in the data directory (no TensorFlow needed), or else from
a tfds data directory prepared elsewhere (``tfds.data_source``, needs the ``data`` extra), with
the authors' normalisation and augmentation (random crop with padding 4, horizontal flip)."""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from experiments.core.data.dataset import (
    DataCorruptError,
    DataMissingError,
    Dataset,
    DatasetFacts,
    Reader,
    fingerprint,
)

# The authors' normalisation for CIFAR-10 and CIFAR-100 (their train.py).
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2023, 0.1994, 0.2010], np.float32)
_CIFAR = {
    "cifar10": dict(
        archive="cifar-10-python.tar.gz",
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test=["test_batch"],
        label=b"labels",
        classes=10,
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": dict(
        archive="cifar-100-python.tar.gz",
        folder="cifar-100-python",
        train=["train"],
        test=["test"],
        label=b"fine_labels",
        classes=100,
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
}


def read_cifar_archive(path: Path, name: str) -> tuple[np.ndarray, ...]:
    """``(train_x, train_y, test_x, test_y)`` as uint8 NHWC images and int32 labels from the
    canonical python-pickle archive (rows of 3072 bytes: 1024 R, 1024 G, 1024 B)."""
    spec = _CIFAR[name]
    try:
        return _read_cifar_members(path, name, spec)
    except (
        tarfile.TarError,
        EOFError,
        zlib.error,
        gzip.BadGzipFile,
        pickle.UnpicklingError,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
    ) as err:
        raise DataCorruptError(
            f"{path} is corrupt or not the canonical {spec['archive']} ({type(err).__name__}: "
            f"{str(err)[:120]}). Delete it and fetch it again from {spec['url']}."
        ) from None


def _read_cifar_members(path: Path, name: str, spec: dict) -> tuple[np.ndarray, ...]:
    with tarfile.open(path, "r:gz") as tar:

        def split(members: list[str]) -> tuple[np.ndarray, np.ndarray]:
            xs, ys = [], []
            for member in members:
                handle = tar.extractfile(f"{spec['folder']}/{member}")
                if handle is None:
                    raise KeyError(f"no member {spec['folder']}/{member} in a {name} archive")
                batch = pickle.load(handle, encoding="bytes")  # the canonical format
                xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[spec["label"]], np.int32))
            return np.concatenate(xs).transpose(0, 2, 3, 1), np.concatenate(ys)

        return (*split(spec["train"]), *split(spec["test"]))


def _read_cifar_tfds(data_dir: Path, name: str) -> tuple[np.ndarray, ...] | None:
    """The same arrays from a prepared tfds data directory, or None if there is none."""
    if not (data_dir / name).is_dir():
        return None
    try:
        import tensorflow_datasets as tfds  # optional: the [data] extra
    except ImportError as err:
        raise DataMissingError(
            f"{data_dir / name} looks like a tfds data directory, but tensorflow-datasets is "
            'not installed: pip install -e ".[data]"'
        ) from err
    out = []
    for split in ("train", "test"):
        source = tfds.data_source(name, split=split, data_dir=str(data_dir), download=False)
        records = [source[i] for i in range(len(source))]
        out += [
            np.stack([r["image"] for r in records]).astype(np.uint8),
            np.asarray([r["label"] for r in records], np.int32),
        ]
    return tuple(out)


def normalize_cifar(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 with the authors' per-channel mean and std."""
    return ((images.astype(np.float32) / 255.0 - CIFAR_MEAN) / CIFAR_STD).astype(np.float32)


def cifar_augment(
    rng: np.random.Generator, batch: np.ndarray, normalized: bool = True
) -> np.ndarray:
    """RandomCrop(32, padding=4) and RandomHorizontalFlip on a normalised NHWC batch.

    The padding is applied before normalising in the authors' pipeline, so a padded pixel is
    0 there: ``(0 − mean)/std`` here (0 for a batch of intensities, ``normalized=False``).
    """
    fill = -CIFAR_MEAN / CIFAR_STD if normalized else np.zeros(batch.shape[-1])
    return pad_crop_flip(rng, batch, fill)


def pad_crop_flip(
    rng: np.random.Generator, batch: np.ndarray, fill: np.ndarray, pad: int = 4
) -> np.ndarray:
    """A random crop of each NHWC image padded by ``pad`` with the per-channel value ``fill``
    (a zero pixel, standardised), then a horizontal flip with probability 1/2."""
    b, h, w, c = batch.shape
    padded = np.broadcast_to(np.asarray(fill, batch.dtype), (b, h + 2 * pad, w + 2 * pad, c))
    padded = padded.copy()
    padded[:, pad : pad + h, pad : pad + w] = batch
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, b))
    flip = rng.random(b) < 0.5
    out = np.empty_like(batch)
    for i in range(b):
        crop = padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


def load_cifar(name: str, data_dir: str | os.PathLike, normalize: bool = True) -> Dataset:
    """CIFAR-10/100 from ``data_dir``: the canonical archive, else a prepared tfds directory.
    ``normalize``: the authors' per-channel standardisation; else intensities in [0, 1]."""
    spec = _CIFAR[name]
    data_dir = Path(data_dir)
    archive = data_dir / spec["archive"]
    if archive.is_file():
        arrays = read_cifar_archive(archive, name)
    else:
        arrays = _read_cifar_tfds(data_dir, name)
        if arrays is None:
            raise _missing(name, data_dir)
    train_x, train_y, test_x, test_y = arrays
    scale = normalize_cifar if normalize else _unit
    return Dataset(
        name,
        scale(train_x),
        train_y,
        scale(test_x),
        test_y,
        num_classes=spec["classes"],
        augment=cifar_augment if normalize else _augment_intensities,
        fingerprint=fingerprint(train_x, train_y, test_x, test_y),
        mean=CIFAR_MEAN if normalize else 0.0,
        std=CIFAR_STD if normalize else 1.0,
    )


def _unit(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 intensities in [0, 1]."""
    return (images.astype(np.float32) / 255.0).astype(np.float32)


def _augment_intensities(rng: np.random.Generator, batch: np.ndarray) -> np.ndarray:
    return cifar_augment(rng, batch, normalized=False)


def _missing(name: str, data_dir: Path) -> DataMissingError:
    spec = _CIFAR[name]
    archive = data_dir / spec["archive"]
    return DataMissingError(
        f"{name}: no {archive} (and no prepared tfds directory {data_dir / name}). "
        f"Nothing is downloaded here. On a machine with internet, fetch {spec['url']} "
        f"and copy the .tar.gz, unopened, to {archive.absolute()}, or point "
        "--set data_dir=... at the folder that holds it."
    )


def check(name: str, data_dir: str) -> None:
    """The archive or a prepared tfds directory must be in ``data_dir`` (nothing is read)."""
    folder = Path(data_dir)
    if not (folder / _CIFAR[name]["archive"]).is_file() and not (folder / name).is_dir():
        raise _missing(name, folder)


READERS = tuple(
    Reader(
        DatasetFacts(name, (32, 32, 3), spec["classes"], 50_000, 10_000),
        lambda data_dir, name=name: check(name, data_dir),
        lambda data_dir, normalize, name=name: load_cifar(name, data_dir, normalize),
    )
    for name, spec in _CIFAR.items()
)
