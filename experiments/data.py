"""Datasets for the experiments, as in-memory numpy arrays plus a batch iterator.

* ``digits``: scikit-learn's 8×8 digits (it ships inside the package: no download).
* ``cifar10`` / ``cifar100``: read from the canonical ``cifar-10-python.tar.gz`` /
  ``cifar-100-python.tar.gz`` archive in the data directory (no TensorFlow needed), or else
  from a tfds data directory prepared elsewhere (``tfds.data_source``, needs the ``data``
  extra). Nothing is ever downloaded: missing data fails at once with what to do, and a
  damaged archive says so.

This module does not import JAX. :data:`DATASETS` holds each dataset's facts (input shape,
classes, split sizes), so a config can be checked against its data before anything loads.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What a config needs to know about a dataset before loading it."""

    name: str
    input_shape: tuple[int, ...]  # one sample: (H, W, C) images or (features,)
    num_classes: int
    train_size: int
    test_size: int


#: The datasets the experiments know, with their canonical sizes.
DATASETS = {
    # 1,797 digits, a stratified 20 % held out (seed 0).
    "digits": DatasetFacts("digits", (64,), 10, 1437, 360),
    "cifar10": DatasetFacts("cifar10", (32, 32, 3), 10, 50_000, 10_000),
    "cifar100": DatasetFacts("cifar100", (32, 32, 3), 100, 50_000, 10_000),
}


def fingerprint(*arrays: np.ndarray) -> str:
    """A short SHA-256 of the arrays' shapes, dtypes and bytes: which data a run saw."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype.str}".encode())
        digest.update(a.data)
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Normalised train/test arrays (channels-last images or feature vectors)."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    augment: Callable[[np.random.Generator, np.ndarray], np.ndarray] | None = None
    #: :func:`fingerprint` of the raw data; a resumed run checks that it sees the same data.
    fingerprint: str = ""
    #: The standardisation applied: ``x = (intensity − mean) / std``, intensities in [0, 1]
    #: (scalars, or per channel); 0 and 1 for data left as intensities.
    mean: Any = 0.0
    std: Any = 1.0

    def to_intensities(self, x: np.ndarray) -> np.ndarray:
        """Inputs of this dataset back to intensities in [0, 1]."""
        return (x * self.std + self.mean).astype(x.dtype)

    def from_intensities(self, images: np.ndarray) -> np.ndarray:
        """Intensities in [0, 1] standardised as this dataset's inputs are."""
        return ((images - self.mean) / self.std).astype(images.dtype)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def load_digits(normalize: bool = True) -> Dataset:
    """Digits as 64 features scaled to [0, 1] and (``normalize``) standardised with the
    training mean/std; a stratified 80/20 split with a fixed seed (360 test images)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise SystemExit(
            'the digits experiments need scikit-learn: pip install -e ".[experiments]"'
        ) from err
    data = sk_load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=TEST_FRACTION, stratify=data.target, random_state=SPLIT_SEED
    )
    mean, std = (x_train.mean(), x_train.std()) if normalize else (0.0, 1.0)
    y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
    return Dataset(
        "digits",
        (x_train - mean) / std,
        y_train,
        (x_test - mean) / std,
        y_test,
        num_classes=10,
        fingerprint=fingerprint(x_train, y_train, x_test, y_test),
        mean=float(mean),
        std=float(std),
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


class DataMissingError(FileNotFoundError):
    """A dataset is not on this machine; the message says where to put it and how to get it."""


class DataCorruptError(ValueError):
    """A dataset file is damaged or not what its name says; the message says to fetch it again."""


def read_cifar_archive(path: Path, name: str) -> tuple[np.ndarray, ...]:
    """``(train_x, train_y, test_x, test_y)`` as uint8 NHWC images and int32 labels from the
    canonical python-pickle archive (rows of 3072 bytes: 1024 R, 1024 G, 1024 B)."""
    spec = _CIFAR[name]
    try:
        return _read_cifar_members(path, name, spec)
    except (
        tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, pickle.UnpicklingError,
        KeyError, ValueError, TypeError, AttributeError, IndexError,
    ) as err:  # fmt: skip
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
        import tensorflow_datasets as tfds
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
    b, h, w, c = batch.shape
    fill = (-CIFAR_MEAN / CIFAR_STD if normalized else np.zeros(c)).astype(batch.dtype)
    padded = np.broadcast_to(fill, (b, h + 8, w + 8, c)).copy()
    padded[:, 4 : 4 + h, 4 : 4 + w] = batch
    dy, dx = rng.integers(0, 9, size=(2, b))
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


def check_available(name: str, data_dir: str) -> None:
    """Fail fast, without reading anything, if dataset ``name`` cannot be loaded here."""
    if name == "digits":
        import importlib.util

        if importlib.util.find_spec("sklearn") is None:
            raise DataMissingError(
                'the digits experiments need scikit-learn: pip install -e ".[experiments]"'
            )
    elif name in _CIFAR:
        folder = Path(data_dir)
        if not (folder / _CIFAR[name]["archive"]).is_file() and not (folder / name).is_dir():
            raise _missing(name, folder)


def load_dataset(name: str, data_dir: str, normalize: bool = True) -> Dataset:
    """Load a dataset by name; missing files fail fast with what to do. ``normalize``:
    standardised inputs (the default), else intensities in [0, 1]."""
    if name == "digits":
        return load_digits(normalize)
    if name in _CIFAR:
        return load_cifar(name, data_dir, normalize)
    raise ValueError(f"unknown dataset {name!r}")


def iterate(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    augment: Callable[[np.random.Generator, np.ndarray], np.ndarray] | None = None,
    max_batches: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches that drop the last partial one (as the authors' loaders, train and test).

    With ``rng``: shuffled, and ``augment(rng, batch)`` applied.
    """
    n = len(x) // batch_size
    if n == 0:
        raise ValueError(f"{len(x)} examples make no full batch of {batch_size}.")
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for i in range(n if max_batches is None else min(n, max_batches)):
        idx = order[i * batch_size : (i + 1) * batch_size]
        xb = x[idx]
        if augment is not None and rng is not None:
            xb = augment(rng, xb)
        yield xb, y[idx]


def num_batches(n: int, batch_size: int, max_batches: int | None) -> int:
    full = n // batch_size
    return full if max_batches is None else min(full, max_batches)
