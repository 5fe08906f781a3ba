"""Datasets for the experiments, as in-memory numpy arrays plus a batch iterator.

``digits`` is scikit-learn's 8×8 digits (it ships inside the package: no download).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 0


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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


def load_digits() -> Dataset:
    """Digits as 64 features scaled to [0, 1] and standardised with the training mean/std;
    a stratified 80/20 split with a fixed seed (360 test images)."""
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
    mean, std = x_train.mean(), x_train.std()
    return Dataset(
        "digits",
        (x_train - mean) / std,
        y_train.astype(np.int32),
        (x_test - mean) / std,
        y_test.astype(np.int32),
        num_classes=10,
    )


def load_dataset(name: str, data_dir: str) -> Dataset:
    """Load a dataset by name; missing files fail fast with what to do."""
    if name == "digits":
        return load_digits()
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
