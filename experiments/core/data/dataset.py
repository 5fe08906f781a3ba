"""What every dataset reader returns and raises (:mod:`experiments.core.data`)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What a config needs to know about a dataset before loading it."""

    name: str
    input_shape: tuple[int, ...]  # one sample: (H, W, C) images or (features,)
    num_classes: int
    train_size: int
    test_size: int


class DataMissingError(FileNotFoundError):
    """A dataset is not on this machine; the message says where to put it and how to get it."""


class DataCorruptError(ValueError):
    """A dataset file is damaged or not what its name says; the message says to fetch it again."""


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


class Reader(NamedTuple):
    """How one dataset is read: its facts, ``check(data_dir)`` (raise
    :class:`DataMissingError` at once, reading nothing, if it cannot be loaded here) and
    ``load(data_dir, normalize)``."""

    facts: DatasetFacts
    check: Callable[[str], None]
    load: Callable[[str, bool], Dataset]
