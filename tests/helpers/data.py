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

    arrays = (
        images(n_train, 0),
        np.arange(n_train) % 10,
        images(n_test, 100),
        (np.arange(n_test) + 3) % 10,
    )
    for (key, name), array in zip(mnist.FILES.items(), arrays, strict=True):
        magic = mnist.IMAGES_MAGIC if key.endswith("x") else mnist.LABELS_MAGIC
        write_idx(folder / name, magic, array)
    return arrays


def write_fake_tiny_imagenet(data_dir, wnids=("n01", "n02", "n03"), per_class=2, n_val=4):
    """A ``tiny-imagenet-200/`` release: image k of class c is one flat colour
    (40·c + 10·k, 255 − 40·c, 7·k) as a JPEG (the val images: class k % classes, colour
    index 100 + k; the last one greyscale). Returns ``{path: (colour, label)}``."""
    from PIL import Image  # the [data] extra, part of [test]

    root = folder = data_dir / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    planted = {}

    def save(path, colour, label, grey=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (64, 64), colour)
        (image.convert("L") if grey else image).save(path, "JPEG", quality=95)
        luma = (colour[0] * 299 + colour[1] * 587 + colour[2] * 114) / 1000  # PIL's "L"
        planted[path] = ((luma,) * 3 if grey else colour, label)

    for c, wnid in enumerate(wnids):
        for k in range(per_class):
            save(
                root / "train" / wnid / "images" / f"{wnid}_{k}.JPEG",
                (40 * c + 10 * k, 255 - 40 * c, 7 * k),
                c,
            )
    lines = []
    for k in range(n_val):
        c = k % len(wnids)
        save(
            root / "val" / "images" / f"val_{k}.JPEG",
            (100 + k, 50, 200 - k),
            c,
            grey=k == n_val - 1,
        )
        lines.append(f"val_{k}.JPEG\t{wnids[c]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return planted


def write_fake_dvs(data_dir, indices=(0, 100), events=None):
    """A ``CIFAR10-DVS/<class>/cifar10_<class>_<i>.aedat`` release in jAER's DVS128 format: a
    '#' header, then big-endian (address, timestamp) records. ``events`` is a list of
    ``(t µs, row, column, channel)`` (default: four planted per recording, depending on
    the class and index). Returns ``{path: events}``."""
    from experiments.core.data import dvs

    written = {}
    for label, name in enumerate(dvs.CLASSES):
        folder = data_dir / dvs.FOLDER / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in indices:
            planted = events or [
                (1000 * label, label, 0, 0),
                (5000, 127, 127, 1),
                (7000 + index, 64, 3 * label, index % 2),
                (20_000 + 1000 * label, 0, 127, 0),
            ]
            records = []
            for t, row, column, channel in planted:
                address = ((127 - row) << 8) | ((127 - column) << 1) | channel
                records.append(np.array([address, t], ">u4").tobytes())
            path = folder / f"cifar10_{name}_{index}.aedat"
            path.write_bytes(
                b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + b"".join(records)
            )
            written[path] = planted
    return written
