"""Tiny-ImageNet from its release folder ``tiny-imagenet-200/`` in the data directory (BNTT
paper, Table 1: VGG11 at 64×64, 200 classes), decoded once into a cache.

The release holds ``wnids.txt`` (the 200 class ids, one per line: their order is the label
order), ``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` with
``val/val_annotations.txt`` (tab-separated: file, wnid, bounding box). Its ``test`` split has
no labels, so the held-out set is ``val`` (10,000 images), as in the papers. Images are 64×64
RGB (a few are greyscale JPEGs: converted to RGB).

Decoding 110,000 JPEGs takes minutes, so the arrays (uint8) are kept in the cache directory
(``$BNTT_JAX_CACHE``), keyed by the folder's path and a signature of its file listing (names,
sizes, modification times): a later run reads them in seconds, and a changed folder is decoded
again. Inputs are standardised with ImageNet's per-channel mean and standard deviation and
augmented as the CIFAR runs are (random crop with padding 4, horizontal flip).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from experiments.core.data.cifar import pad_crop_flip
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

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
FACTS = DatasetFacts("tiny_imagenet", (64, 64, 3), 200, 100_000, 10_000)
#: ImageNet's per-channel statistics (the usual ones; the papers give none for Tiny-ImageNet).
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
_KEYS = ("train_x", "train_y", "test_x", "test_y")


def check(data_dir: str) -> None:
    """The release folder with its class list must be in ``data_dir`` (nothing else is read)."""
    root = Path(data_dir) / FOLDER
    if not (root / "wnids.txt").is_file():
        raise DataMissingError(
            f"tiny_imagenet: no {root / 'wnids.txt'}. Nothing is downloaded here. On a machine "
            f"with internet, fetch {URL}, unzip it into {Path(data_dir).absolute()} (it makes "
            f"{FOLDER}/), or point --set data_dir=... at the folder that holds {FOLDER}/."
        )


def _listing(root: Path) -> tuple[list[str], list[tuple[Path, str]], list[tuple[Path, str]]]:
    """``(wnids, [(train image, wnid)], [(val image, wnid)])`` in a fixed order."""
    wnids = [w.strip() for w in (root / "wnids.txt").read_text().splitlines() if w.strip()]
    known = set(wnids)
    train = []
    for wnid in wnids:
        folder = root / "train" / wnid / "images"
        if not folder.is_dir():
            raise DataCorruptError(
                f"tiny_imagenet: no {folder}: an incomplete release? Unzip {URL} again."
            )
        train += [
            (folder / name, wnid) for name in sorted(os.listdir(folder)) if name.endswith(".JPEG")
        ]
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DataCorruptError(f"tiny_imagenet: no {annotations}; unzip {URL} again.")
    val = []
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in known:
            raise DataCorruptError(
                f"{annotations}, line {number}: {line[:80]!r} is not 'file, "
                "wnid, box' with a wnid of wnids.txt."
            )
        val.append((root / "val" / "images" / fields[0], fields[1]))
    return wnids, train, val


def _decode(files: list[tuple[Path, str]], labels: dict[str, int]) -> tuple[np.ndarray, ...]:
    from PIL import Image  # the [data] extra: needed once, to decode the release

    x = np.empty((len(files), 64, 64, 3), np.uint8)
    for i, (path, _) in enumerate(files):
        try:
            with Image.open(path) as image:
                x[i] = np.asarray(image.convert("RGB").resize((64, 64)))
        except (OSError, ValueError) as err:
            raise DataCorruptError(
                f"tiny_imagenet: cannot decode {path} ({err}); unzip {URL} again."
            ) from None
    return x, np.array([labels[wnid] for _, wnid in files], np.int32)


def read_release(data_dir: str | os.PathLike) -> tuple[np.ndarray, ...]:
    """``(train_x, train_y, test_x, test_y)``, uint8 images and int32 labels, from the cache
    when it holds this folder's arrays, else decoded and cached (module docstring)."""
    check(str(data_dir))
    root = Path(data_dir) / FOLDER
    wnids, train, val = _listing(root)
    signature = listing_signature(root, train + val, (root / "wnids.txt").read_bytes())
    cache = cache_root() / f"tiny-imagenet-{signature}.npz"
    cached = read_npz(cache, _KEYS)
    if cached is not None:
        return cached
    try:
        import PIL  # noqa: F401  (the [data] extra: only a first run decodes JPEGs)
    except ImportError as err:
        raise DataMissingError(
            'tiny_imagenet: decoding the JPEGs needs pillow: pip install -e ".[data]"'
        ) from err
    labels = {wnid: i for i, wnid in enumerate(wnids)}
    arrays = (*_decode(train, labels), *_decode(val, labels))
    write_npz_atomically(cache, dict(zip(_KEYS, arrays, strict=True)))
    return arrays


def load_tiny_imagenet(data_dir: str | os.PathLike, normalize: bool = True) -> Dataset:
    """Tiny-ImageNet standardised with ImageNet's statistics (``normalize``), else intensities
    in [0, 1]; augmented with random crops (padding 4) and flips."""
    train_x, train_y, test_x, test_y = read_release(data_dir)
    mean, std = (MEAN, STD) if normalize else (np.zeros(3, np.float32), np.ones(3, np.float32))

    def scale(x: np.ndarray) -> np.ndarray:  # in place: one float32 copy of 4.9 GB, not four
        out = x.astype(np.float32)
        out /= 255.0
        out -= mean
        out /= std
        return out

    return Dataset(
        "tiny_imagenet",
        scale(train_x),
        train_y,
        scale(test_x),
        test_y,
        num_classes=200,
        augment=partial(pad_crop_flip, fill=-mean / std),
        fingerprint=fingerprint(train_x, train_y, test_x, test_y),
        mean=mean if normalize else 0.0,
        std=std if normalize else 1.0,
    )


READERS = (Reader(FACTS, check, load_tiny_imagenet),)
