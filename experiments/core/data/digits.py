"""scikit-learn's 8×8 digits: 1,797 images that ship inside the package (no download), a
stratified 20 % held out with a fixed seed (360 test images), 64 features in [0, 1]."""

from __future__ import annotations

import importlib.util

import numpy as np

from experiments.core.data.dataset import DataMissingError, Dataset, DatasetFacts, Reader
from experiments.core.data.dataset import fingerprint as fingerprint_of

TEST_FRACTION = 0.2
SPLIT_SEED = 0
FACTS = DatasetFacts("digits", (64,), 10, 1437, 360)
_NEEDS_SKLEARN = 'the digits experiments need scikit-learn: pip install -e ".[experiments]"'


def check(data_dir: str) -> None:
    """scikit-learn must be installed (the data ship inside it)."""
    if importlib.util.find_spec("sklearn") is None:
        raise DataMissingError(_NEEDS_SKLEARN)


def load_digits(normalize: bool = True) -> Dataset:
    """Digits as 64 features scaled to [0, 1] and (``normalize``) standardised with the
    training mean/std; a stratified 80/20 split with a fixed seed (360 test images)."""
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
    mean, std = (x_train.mean(), x_train.std()) if normalize else (0.0, 1.0)
    y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
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
