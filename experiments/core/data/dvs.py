"""CIFAR10-DVS (Li et al. 2017) from its released jAER recordings, binned into event frames as
the BNTT paper's Appendix C says, and kept in a cache.

The release is ten folders, one per class (``airplane`` … ``truck``, the label order of
CIFAR-10), of 1,000 recordings each, ``cifar10_<class>_<i>.aedat``, from a DVS128 sensor
(128×128, two polarities), written by jAER (AEDAT 2.0): header lines starting with ``#``,
then 8-byte big-endian records, a 32-bit address and a 32-bit timestamp in µs. The address
follows jAER's DVS128 layout, as jAER's own documentation writes it (``raw = y·256 +
(127 − x)·2 + pol``, "Reading data into Matlab from jAER data files"; its Tmpdiff128/DVS128
extractor: raw polarity 0 is ON): bit 0 the polarity (0 ON, 1 OFF), bits 1–7 the flipped x,
bits 8–14 y, jAER drawing y upwards. We flip both, so that row 0 is the
top of the image and column 0 its left: ``row = 127 − y``, ``column = 127 − x``; channel 0
holds the ON events, channel 1 the OFF events.

Appendix C: the whole recording is divided into 20 intervals of equal duration, the events of
each interval are accumulated, and the 128×128 frame is downsampled to 42×42 (pixel ``r`` of
128 goes to bin ``r·42 // 128``: counts summed, none lost). So a recording becomes uint16
frames ``[20, 42, 42, 2]``, presented one per step (``encoder=frames``).

The paper gives no train/test split: by default the recordings 0–99 of each class are the test
set and 100–999 the training set (9:1 per class, the split most later work uses);
``test_per_class`` chooses another (the config key of the same name). The frames of the
whole release are decoded once into the cache directory (``$BNTT_JAX_CACHE``), keyed by the
folder and its file listing, and never decoded again on a later run, whatever the split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from experiments.core.data.dataset import (
    DataCorruptError,
    DataMissingError,
    Dataset,
    DatasetFacts,
    Reader,
    cache_root,
    fingerprint,
    listing_signature,
    read_npz,
    write_npz_atomically,
)

FOLDER = "CIFAR10-DVS"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
URL = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671"
SENSOR, SIZE, INTERVALS = 128, 42, 20
#: Recordings per class in the release; by default 0 … TEST_PER_CLASS − 1 are the test set.
PER_CLASS, TEST_PER_CLASS = 1_000, 100
_KEYS = ("frames", "labels", "index")


def split_facts(test_per_class: int = TEST_PER_CLASS) -> DatasetFacts:
    """The release's facts with recordings ``0 … test_per_class − 1`` of each class held out
    (``ValueError`` unless some of each class are left to train on)."""
    if not 1 <= test_per_class < PER_CLASS:
        raise ValueError(
            f"each class of cifar10_dvs holds {PER_CLASS} recordings: hold out 1 "
            f"to {PER_CLASS - 1} of them (the paper gives no split; 100 is 9:1)."
        )
    test = len(CLASSES) * test_per_class
    return DatasetFacts(
        "cifar10_dvs",
        (INTERVALS, SIZE, SIZE, 2),
        len(CLASSES),
        len(CLASSES) * PER_CLASS - test,
        test,
    )


FACTS = split_facts()


def read_aedat(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(t µs, row, column, channel)`` of a jAER DVS128 recording (module docstring)."""
    raw = path.read_bytes()
    start = 0
    while raw.startswith(b"#", start):  # the header: lines starting with '#'
        end = raw.find(b"\n", start)
        if end < 0:
            break
        start = end + 1
    body = raw[start:]
    if len(body) % 8:
        raise DataCorruptError(
            f"{path}: {len(body)} bytes of events, not whole 8-byte records: truncated? "
            f"Fetch the class's archive again from {URL}."
        )
    records = np.frombuffer(body, ">u4").reshape(-1, 2)
    address, t = records[:, 0], records[:, 1].astype(np.int64)
    x, y = (address >> 1) & 0x7F, (address >> 8) & 0x7F
    return (
        t,
        (SENSOR - 1 - y).astype(np.int64),
        (SENSOR - 1 - x).astype(np.int64),
        (address & 1).astype(np.int64),
    )


def bin_events(
    t: np.ndarray, row: np.ndarray, column: np.ndarray, channel: np.ndarray
) -> np.ndarray:
    """uint16 frames ``[20, 42, 42, 2]``: the recording's duration split into 20 equal
    intervals, each interval's events counted per downsampled pixel and polarity."""
    frames = np.zeros((INTERVALS, SIZE, SIZE, 2), np.int64)
    if len(t):
        span = int(t.max() - t.min()) + 1
        step = (t - t.min()) * INTERVALS // span
        np.add.at(frames, (step, row * SIZE // SENSOR, column * SIZE // SENSOR, channel), 1)
    if frames.max(initial=0) > np.iinfo(np.uint16).max:
        raise DataCorruptError("a frame bin holds more than 65,535 events")
    return frames.astype(np.uint16)


def _recordings(root: Path) -> list[tuple[Path, int, int]]:
    """``(path, label, index)`` of every recording, by class and index."""
    out = []
    for label, name in enumerate(CLASSES):
        folder = root / name
        if not folder.is_dir():
            raise DataMissingError(f"cifar10_dvs: no {folder}. " + _how())
        for entry in os.listdir(folder):
            match = re.fullmatch(r".*?(\d+)\.aedat", entry)
            if match:
                out.append((folder / entry, label, int(match.group(1))))
    return sorted(out, key=lambda r: (r[1], r[2]))


def _how() -> str:
    return (
        f"Nothing is downloaded here. On a machine with internet, fetch the ten class "
        f"archives (airplane.zip … truck.zip) from {URL}, unzip each into a folder "
        f"{FOLDER}/<class>/ in the data directory, or point --set data_dir=... at the "
        f"folder that holds {FOLDER}/."
    )


def check(data_dir: str) -> None:
    """The release's ten class folders must be in ``data_dir`` (nothing is read)."""
    root = Path(data_dir) / FOLDER
    missing = [c for c in CLASSES if not (root / c).is_dir()]
    if missing:
        raise DataMissingError(f"cifar10_dvs: no {', '.join(missing)} in {root}. " + _how())


def read_release(data_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, labels, index)`` of every recording (uint16 frames, int32 labels, each
    recording's number in its class), from the cache when it holds this release, else binned
    from the recordings and cached."""
    check(str(data_dir))
    root = Path(data_dir) / FOLDER
    recordings = _recordings(root)
    signature = listing_signature(root, [(path, str(label)) for path, label, _ in recordings])
    cache = cache_root() / f"cifar10-dvs-{signature}.npz"
    cached = read_npz(cache, _KEYS)
    if cached is not None:
        return cached
    if not recordings:
        raise DataCorruptError(f"cifar10_dvs: no .aedat recordings in {root}. " + _how())
    frames = np.stack([bin_events(*read_aedat(path)) for path, _, _ in recordings])
    labels = np.asarray([label for _, label, _ in recordings], np.int32)
    index = np.asarray([i for _, _, i in recordings], np.int64)
    write_npz_atomically(cache, dict(zip(_KEYS, (frames, labels, index), strict=True)))
    return frames, labels, index


def load_dvs(
    data_dir: str | os.PathLike, normalize: bool = True, test_per_class: int | None = None
) -> Dataset:
    """CIFAR10-DVS as event frames ``[N, 20, 42, 42, 2]`` (counts, float32, as they are:
    ``normalize`` does not apply to event counts), recordings ``0 … test_per_class − 1`` of
    each class held out for testing (default 100: 9:1)."""
    held_out = TEST_PER_CLASS if test_per_class is None else test_per_class
    split_facts(held_out)  # the range
    frames, labels, index = read_release(data_dir)
    test = index < held_out
    for name, chosen in (("test", test), ("training", ~test)):
        if not chosen.any():
            raise DataCorruptError(
                f"cifar10_dvs: no {name} recordings in {Path(data_dir) / FOLDER} (the test set "
                f"is recordings 0–{held_out - 1} of each class; set test_per_class to change it)."
            )
    train_x, train_y, test_x, test_y = frames[~test], labels[~test], frames[test], labels[test]
    return Dataset(
        "cifar10_dvs",
        train_x.astype(np.float32),
        train_y,
        test_x.astype(np.float32),
        test_y,
        num_classes=10,
        fingerprint=fingerprint(train_x, train_y, test_x, test_y),
    )


READERS = (Reader(FACTS, check, load_dvs, split_facts),)
