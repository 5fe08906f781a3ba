"""What every dataset reader returns and raises (:mod:`experiments.core.data`)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
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
    source: str = ""  # where the samples come from and how they are split (reports say so)


def facts_line(facts: DatasetFacts, normalize: bool = False) -> str:
    """The dataset's facts as a report's header gives them: samples, shape, classes, source,
    and (``normalize``, the config's key) that the inputs are standardised."""
    shape = "×".join(str(n) for n in facts.input_shape)
    line = (
        f"{facts.train_size:,} training / {facts.test_size:,} test samples of {shape}, "
        f"{facts.num_classes} classes"
    )
    line = f"{line}; {facts.source}" if facts.source else line
    return f"{line}; standardised with the training set's statistics" if normalize else line


def on_images(metrics: dict[str, Any], before: str = ", ", after: str = "") -> str:
    """``", on N test images"`` for a report's accuracy line: how many test images the
    metrics were measured on (``num_test_images``; empty for a record without it)."""
    n = metrics.get("num_test_images")
    return "" if n is None else f"{before}on {n:,} test images{after}"


class DataMissingError(FileNotFoundError):
    """A dataset is not on this machine; the message says where to put it and how to get it."""


class DataCorruptError(ValueError):
    """A dataset file is damaged or not what its name says; the message says to fetch it again."""


def cache_root() -> Path:
    """Where decoded datasets are kept: ``$BNTT_JAX_CACHE``, default ``~/.cache/bntt_jax``."""
    return Path(os.environ.get("BNTT_JAX_CACHE", Path.home() / ".cache" / "bntt_jax"))


def read_npz(path: Path, keys: tuple[str, ...]) -> tuple[np.ndarray, ...] | None:
    """The arrays ``keys`` of the cache file ``path``, or ``None`` if it is absent or damaged
    (then the caller makes them again)."""
    try:
        with np.load(path) as saved:
            return tuple(saved[k] for k in keys)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def listing_signature(root: Path, files: list[tuple[Path, str]], *extra: bytes) -> str:
    """A short hash of ``root``'s absolute path, ``extra`` and every ``(file, tag)``'s name,
    tag, size and modification time: a cache key that changes when the files do."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    for blob in extra:
        digest.update(blob)
    for path, tag in files:
        stat = path.stat()
        digest.update(f"{path.name}:{tag}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Write ``arrays`` to ``path`` through a temporary file and a rename (a reader never sees
    half a file); ``False`` if the cache cannot be written (a read-only cache)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        return False
    return True


def cached_arrays(
    path: Path, shapes: dict[str, tuple[int, ...]], make: Callable[[], tuple[np.ndarray, ...]]
) -> tuple[np.ndarray, ...]:
    """The arrays named in ``shapes``, in its order: read from the cache file ``path`` when it
    holds them with those shapes; else ``make()``'s, written there (:func:`write_npz_atomically`;
    a cache that cannot be written makes them again next time)."""
    keys = tuple(shapes)
    arrays = read_npz(path, keys)  # absent or damaged: made again below
    if arrays is not None and all(a.shape == shapes[k] for k, a in zip(keys, arrays, strict=True)):
        return arrays
    arrays = make()
    write_npz_atomically(path, dict(zip(keys, arrays, strict=True)))
    return arrays


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

    @classmethod
    def from_arrays(
        cls,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        *,
        name: str = "arrays",
        normalize: bool = True,
        num_classes: int | None = None,
    ) -> Dataset:
        """A dataset of your own arrays, checked (:func:`check_arrays`) and, with
        ``normalize``, standardised as the built-in ones are: with the training set's mean and
        standard deviation, per channel for images ``[N, H, W, C]``, over all features for
        vectors ``[N, F]``.

        ``x``: intensities in [0, 1] (floating) or ``uint8`` (divided by 255); or event frames
        ``[N, T, H, W, C]`` (counts, any dtype), kept as they are; ``y``: integer labels
        ``0 … K−1``, ``K = num_classes`` (default: the largest label + 1).
        """
        arrays = check_arrays(name, x_train, y_train, x_test, y_test, num_classes)
        x_train, y_train, x_test, y_test, num_classes = arrays
        axes = (0, 1, 2) if x_train.ndim == 4 else None
        if normalize and x_train.ndim != 5:  # event frames are input currents as they are
            mean = x_train.mean(axis=axes, dtype=np.float64)
            std = x_train.std(axis=axes, dtype=np.float64)
            std = np.where(std > 0, std, 1.0)  # a constant feature stays at 0
        else:
            mean, std = np.float64(0.0), np.float64(1.0)
        mean, std = mean.astype(np.float32), std.astype(np.float32)
        return cls(
            name,
            (x_train - mean) / std,
            y_train,
            (x_test - mean) / std,
            y_test,
            num_classes=num_classes,
            fingerprint=fingerprint(x_train, y_train, x_test, y_test),
            mean=mean.tolist() if mean.ndim else float(mean),
            std=std.tolist() if std.ndim else float(std),
        )


#: The arrays of a dataset of your own (an ``.npz`` file holds them under these names).
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: The input ranks a dataset of your own may have: feature vectors, images, and event frames
#: (events pre-binned into T frames, BNTT Appendix C: presented one frame per step).
INPUT_RANKS = {2: "[N, features]", 4: "[N, H, W, C]", 5: "[N, T, H, W, C] event frames"}


def _bad(name: str, problem: str) -> DataCorruptError:
    return DataCorruptError(f"{name}: {problem}")


def check_shapes(
    name: str, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype]
) -> None:
    """The arrays' ranks, lengths and dtypes (before their values are read)."""
    for split in ("train", "test"):
        x, y = shapes[f"x_{split}"], shapes[f"y_{split}"]
        if len(x) not in INPUT_RANKS:
            raise _bad(
                name,
                f"x_{split} has shape {x}; inputs are "
                f"{' or '.join(INPUT_RANKS.values())} (N samples first).",
            )
        if len(y) != 1:
            raise _bad(name, f"y_{split} has shape {y}; labels are one integer per sample, [N].")
        if x[0] != y[0]:
            raise _bad(name, f"x_{split} holds {x[0]} samples but y_{split} {y[0]} labels.")
        if x[0] == 0:
            raise _bad(name, f"x_{split} holds no samples.")
        if not np.issubdtype(dtypes[f"y_{split}"], np.integer):
            raise _bad(
                name,
                f"y_{split} has dtype {dtypes[f'y_{split}']}; labels are integers "
                "0 … K−1 (y.astype(np.int32)).",
            )
        kind = dtypes[f"x_{split}"]
        counts = len(x) == 5 and np.issubdtype(kind, np.integer)  # event counts per frame
        if not (np.issubdtype(kind, np.floating) or kind == np.uint8 or counts):
            raise _bad(
                name,
                f"x_{split} has dtype {kind}; inputs are intensities in [0, 1] "
                "(floating) or uint8 pixels (event frames: any numbers).",
            )
    if shapes["x_train"][1:] != shapes["x_test"][1:]:
        raise _bad(
            name,
            f"x_train samples have shape {shapes['x_train'][1:]} but x_test "
            f"samples {shapes['x_test'][1:]}.",
        )


def check_labels(
    name: str, y_train: np.ndarray, y_test: np.ndarray, num_classes: int | None
) -> int:
    """The number of classes: ``num_classes``, or the largest label + 1; every label in
    ``0 … K−1``. Read from the labels, K is bounded by the data: every class ``0 … K−1`` must
    occur in ``y_train`` (a class without a training example cannot be learnt, and a stray
    label of 2³¹ − 1 would otherwise make a readout of 2³¹ outputs)."""
    low = min(int(y_train.min()), int(y_test.min()))
    if low < 0:
        raise _bad(name, f"a label is {low}; labels are 0 … K−1.")
    if num_classes is None:
        _check_every_class_trained(name, y_train, y_test)
    k = max(int(y_train.max()), int(y_test.max())) + 1 if num_classes is None else num_classes
    for split, y in (("train", y_train), ("test", y_test)):
        if int(y.max()) >= k:
            raise _bad(
                name,
                f"y_{split} holds label {int(y.max())}, but there are {k} "
                f"classes (labels 0 … {k - 1}).",
            )
    if k < 2:
        raise _bad(name, "every label is 0; a classifier needs at least two classes.")
    return k


def _check_every_class_trained(name: str, y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Every label ``0 … K−1`` (K = the largest label + 1) occurs in ``y_train``."""
    k = max(int(y_train.max()), int(y_test.max())) + 1
    present = np.unique(y_train)
    if present.size == k:
        return
    gaps = np.flatnonzero(present != np.arange(present.size))  # sorted: label i sits at i
    first = int(gaps[0]) if gaps.size else present.size  # without a [K] array: K may be 2³¹
    raise _bad(
        name,
        f"labels must be 0 … K−1 with every class in y_train, but the largest label, "
        f"{k - 1}, would make {k} classes and y_train holds {present.size} distinct labels "
        f"(class {first} has no training example). Renumber them: "
        "classes, y = np.unique(y, return_inverse=True).",
    )


def check_arrays(
    name: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(x_train, y_train, x_test, y_test, num_classes)`` checked (:class:`DataCorruptError`
    naming the array and the problem), inputs as float32 intensities and labels as int32."""
    given = (x_train, y_train, x_test, y_test)
    arrays = dict(zip(ARRAY_KEYS, map(np.asarray, given), strict=True))
    check_shapes(
        name, {k: a.shape for k, a in arrays.items()}, {k: a.dtype for k, a in arrays.items()}
    )
    k = check_labels(name, arrays["y_train"], arrays["y_test"], num_classes)
    out = {}
    frames = arrays["x_train"].ndim == 5
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        pixels = x.dtype == np.uint8 and not frames
        x = x.astype(np.float32) / 255.0 if pixels else x.astype(np.float32)
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise _bad(name, f"x_{split} holds {bad} NaN or Inf values.")
        low, high = float(x.min()), float(x.max())
        if not frames and (low < 0.0 or high > 1.0):
            raise _bad(
                name,
                f"x_{split} spans [{low:g}, {high:g}]; inputs are intensities in "
                "[0, 1] (the noise and FGSM analyses perturb them there): rescale them, "
                "e.g. (x − x.min()) / (x.max() − x.min()), or uint8 pixels.",
            )
        out[split] = x
    return (
        out["train"],
        arrays["y_train"].astype(np.int32),
        out["test"],
        arrays["y_test"].astype(np.int32),
        k,
    )


class Reader(NamedTuple):
    """How one dataset is read: its facts, ``check(data_dir)`` (raise
    :class:`DataMissingError` at once, reading nothing, if it cannot be loaded here) and
    ``load(data_dir, normalize)``. A dataset whose release has no test split (CIFAR10-DVS)
    also has ``split(test_per_class)``, its facts with that many samples of each class held
    out (``ValueError`` out of range), and ``load`` takes ``test_per_class`` third."""

    facts: DatasetFacts
    check: Callable[[str], None]
    load: Callable[..., Dataset]
    split: Callable[[int], DatasetFacts] | None = None
