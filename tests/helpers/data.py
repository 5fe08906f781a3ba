"""Tiny datasets written in their canonical release formats, for the readers' tests."""

from __future__ import annotations

import io
import pickle
import tarfile

import numpy as np

from experiments.core.data import cifar


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
