"""scikit-learn's 8×8 digits: 1,797 images that ship inside the package (no download), a
stratified 20 % held out with a fixed seed (360 test images), 64 features in [0, 1].

The split is made once per scikit-learn version and kept in the cache directory
(``$BNTT_JAX_CACHE``, default ``~/.cache/bntt_jax``): importing scikit-learn takes longer than
a small run's training, and every later run reads the same arrays from the cache instead. A
cache file that cannot be read or has the wrong shapes is made again.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from experiments.core.data.dataset import (
    DataMissingError,
    Dataset,
    DatasetFacts,
    Reader,
    cache_root,
    cached_arrays,
)
from experiments.core.data.dataset import fingerprint as fingerprint_of

TEST_FRACTION = 0.2
SPLIT_SEED = 0
FACTS = DatasetFacts(
    "digits",
    (64,),
    10,
    1437,
    360,
    "scikit-learn's load_digits() (8×8 images, flattened), 20 % held out stratified (seed "
    f"{SPLIT_SEED}), intensities in [0, 1]",
)
_NEEDS_SKLEARN = 'the digits experiments need scikit-learn: pip install -e ".[experiments]"'


def check(data_dir: str) -> None:
    """scikit-learn must be installed (the data ship inside it)."""
    if importlib.util.find_spec("sklearn") is None:
        raise DataMissingError(_NEEDS_SKLEARN)


def split() -> tuple[np.ndarray, ...]:
    """``(x_train, x_test, y_train, y_test)``: the 80/20 stratified split of seed 0, as
    intensities in [0, 1] and int32 labels, made by scikit-learn (every run the same)."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits  # an [experiments] extra
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise DataMissingError(_NEEDS_SKLEARN) from err
    data = sk_load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=TEST_FRACTION, stratify=data.target, random_state=SPLIT_SEED
    )
    return x_train, x_test, y_train.astype(np.int32), y_test.astype(np.int32)


def cache_file() -> Path:
    """Where the split of this scikit-learn version is kept."""
    return cache_root() / f"digits-sklearn-{importlib.metadata.version('scikit-learn')}.npz"


def cached_split() -> tuple[np.ndarray, ...]:
    """:func:`split`, read from :func:`cache_file` when it holds it; made and written there
    (atomically: a temporary file, then a rename) when it does not."""
    if importlib.util.find_spec("sklearn") is None:
        raise DataMissingError(_NEEDS_SKLEARN)
    shapes = {"x_train": (1437, 64), "x_test": (360, 64), "y_train": (1437,), "y_test": (360,)}
    return cached_arrays(cache_file(), shapes, split)


def load_digits(normalize: bool = True) -> Dataset:
    """Digits as 64 features scaled to [0, 1] and (``normalize``) standardised with the
    training mean/std; a stratified 80/20 split with a fixed seed (360 test images)."""
    x_train, x_test, y_train, y_test = cached_split()
    mean, std = (x_train.mean(), x_train.std()) if normalize else (0.0, 1.0)
    return Dataset(
        "digits",
        (x_train - mean) / std,
        y_train,
        (x_test - mean) / std,
        y_test,
        num_classes=10,
        fingerprint=fingerprint_of(x_train, y_train, x_test, y_test),
        mean=float(mean),
        std=float(std),
    )


READERS = (Reader(FACTS, check, lambda data_dir, normalize: load_digits(normalize)),)
