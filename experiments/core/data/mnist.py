"""MNIST from its four canonical gzipped IDX files in the data directory (Sequential MNIST of the
BNTT journal paper, Table 3: presented one pixel per step).

An IDX file is a big-endian header, then the values: images ``0x00000803`` (2051), the count,
rows and columns, then ``count × rows × cols`` uint8 pixels row by row; labels ``0x00000801``
(2049) and the count, then one uint8 label each. Inputs are ``[N, 28, 28, 1]`` intensities,
standardised with the usual MNIST mean 0.1307 and standard deviation 0.3081 (or left in
[0, 1]). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
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

FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
SOURCE = "https://ossci-datasets.s3.amazonaws.com/mnist/ (or yann.lecun.com/exdb/mnist/)"
FACTS = DatasetFacts("mnist", (28, 28, 1), 10, 60_000, 10_000)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of a gzipped IDX file whose magic number is ``magic``."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataCorruptError(
            f"{path} is not a gzip file ({err}); fetch it again from {SOURCE}."
        ) from None
    dims = 3 if magic == IMAGES_MAGIC else 1
    header = 4 * (1 + dims)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise DataCorruptError(
            f"{path}: IDX magic number {found}, expected {magic}; is it the "
            f"right file? Fetch it again from {SOURCE}."
        )
    shape = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(1, 1 + dims))
    if len(raw) - header != int(np.prod(shape)):
        raise DataCorruptError(
            f"{path}: the header says {shape} values, the file holds "
            f"{len(raw) - header} bytes: truncated? Fetch it again from "
            f"{SOURCE}."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def check(data_dir: str) -> None:
    """The four files must be in ``data_dir`` (nothing is read)."""
    folder = Path(data_dir)
    missing = [name for name in FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DataMissingError(
            f"mnist: no {', '.join(missing)} in {folder.absolute()}. Nothing is downloaded "
            f"here. On a machine with internet, fetch the four files from {SOURCE}, and copy "
            f"them, still gzipped, to {folder.absolute()}, or point --set data_dir=... at the "
            "folder that holds them."
        )


def load_mnist(data_dir: str | os.PathLike, normalize: bool = True) -> Dataset:
    """MNIST as ``[N, 28, 28, 1]`` float32 (module docstring) and int32 labels."""
    check(str(data_dir))
    folder = Path(data_dir)
    arrays = {}
    for key, name in FILES.items():
        magic = IMAGES_MAGIC if key.endswith("x") else LABELS_MAGIC
        arrays[key] = read_idx(folder / name, magic)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if len(x) != len(y) or x.shape[1:] != (28, 28) or int(y.max(initial=0)) > 9:
            raise DataCorruptError(
                f"mnist {split}: {len(x)} images of {x.shape[1:]} and {len(y)} labels up to "
                f"{int(y.max(initial=0))}; expected 28×28 images, one label 0–9 each. Fetch the "
                f"files again from {SOURCE}."
            )
    mean, std = (MNIST_MEAN, MNIST_STD) if normalize else (0.0, 1.0)

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x[..., None].astype(np.float32) / 255.0 - mean) / std).astype(np.float32)

    return Dataset(
        "mnist",
        scale(arrays["train_x"]),
        arrays["train_y"].astype(np.int32),
        scale(arrays["test_x"]),
        arrays["test_y"].astype(np.int32),
        num_classes=10,
        fingerprint=fingerprint(*arrays.values()),
        mean=mean,
        std=std,
    )


READERS = (Reader(FACTS, check, load_mnist),)
