"""Tiny datasets written in their canonical release formats, for the readers' tests."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import numpy as np

from experiments.core.data import cifar, mnist


def _planted_images(n, offset):
    """Images whose pixel values encode (image, channel, row, column): R = (r·32 + c) % 256,
    G = image index + offset, B = 255 − R."""
    plane = (np.arange(1024) % 256).astype(np.uint8)
    rows = []
    for i in range(n):
        rows.append(
            np.concatenate([plane, np.full(1024, (i + offset) % 256, np.uint8), 255 - plane])
        )
    return np.stack(rows)


def write_fake_cifar(path, name, n_train=(4, 4, 4, 4, 4), n_test=8):
    """Write an archive in the canonical cifar-*-python.tar.gz layout (pickled dicts)."""
    spec = cifar._CIFAR[name]
    label_key = spec["label"].decode()
    files = {}
    offset = 0
    members = spec["train"] if name == "cifar10" else ["train"]
    sizes = n_train if name == "cifar10" else (sum(n_train),)
    for member, n in zip(members, sizes, strict=True):
        files[member] = {
            b"data": _planted_images(n, offset),
            label_key.encode(): [(offset + i) % spec["classes"] for i in range(n)],
        }
        offset += n
    files[spec["test"][0]] = {
        b"data": _planted_images(n_test, 200),
        label_key.encode(): list(range(n_test)),
    }
    with tarfile.open(path, "w:gz") as tar:
        for member, content in files.items():
            blob = pickle.dumps(content)
            info = tarfile.TarInfo(f"{spec['folder']}/{member}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def write_idx(path, magic, array):
    """A gzipped IDX file: big-endian magic, then each dimension, then the uint8 values."""
    header = int(magic).to_bytes(4, "big") + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + np.asarray(array, np.uint8).tobytes())


def write_fake_mnist(folder, n_train=12, n_test=6):
    """The four MNIST files in ``folder``: image i's pixel (r, c) is (i + r·28 + c) % 256,
    its label i % 10. Returns ``(train_x, train_y, test_x, test_y)`` as written (uint8)."""

    def images(n, offset):
        grid = np.arange(28 * 28).reshape(28, 28)
        return np.stack([(grid + i + offset) % 256 for i in range(n)]).astype(np.uint8)

    arrays = (images(n_train, 0), np.arange(n_train) % 10, images(n_test, 100),
              (np.arange(n_test) + 3) % 10)  # fmt: skip
    for (key, name), array in zip(mnist.FILES.items(), arrays, strict=True):
        magic = mnist.IMAGES_MAGIC if key.endswith("x") else mnist.LABELS_MAGIC
        write_idx(folder / name, magic, array)
    return arrays
