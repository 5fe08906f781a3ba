"""A dataset of your own: one ``.npz`` file, given as ``--set dataset=PATH.npz``.

The file holds four arrays (``np.savez(path, x_train=..., y_train=..., x_test=...,
y_test=...)``):

* ``x_train``, ``x_test``: inputs, feature vectors ``[N, F]`` or images ``[N, H, W, C]``, as
  intensities in [0, 1] (floating) or ``uint8`` pixels (divided by 255); or event frames
  ``[N, T, H, W, C]`` (events pre-binned into T frames, BNTT paper Appendix C), counts of any
  dtype, presented one frame per step as they are (``encoder=frames``, ``num_steps=T``);
* ``y_train``, ``y_test``: integer labels ``0 … K−1`` ``[N]``; K is the largest label + 1.

A run on it is named by the file, fingerprinted (a resumed run or an analysis checks that it
sees the same arrays), standardised with the training set's statistics (per channel for
images) and analysed like a built-in dataset. The facts a config needs (shapes, classes,
sizes) are read from the arrays' headers and labels only, so a bad file fails before anything
is written, in well under a second; :func:`load` then checks the values (NaN, range).
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np

from experiments.core.data.dataset import (
    ARRAY_KEYS,
    DataCorruptError,
    DataMissingError,
    Dataset,
    DatasetFacts,
    check_labels,
    check_shapes,
)

SUFFIX = ".npz"
FORMAT = (
    "np.savez(PATH.npz, x_train=..., y_train=..., x_test=..., y_test=...): inputs [N, F] or "
    "[N, H, W, C] in [0, 1] (or uint8), or event frames [N, T, H, W, C], integer labels [N]"
)


def is_path(name: object) -> bool:
    """Whether a ``dataset`` value names a file of your own rather than a built-in dataset."""
    return isinstance(name, str) and name.endswith(SUFFIX)


def label(name: str) -> str:
    """How reports name a dataset: a file by its name, a built-in one by its own."""
    return Path(name).name if is_path(name) else name


def check(path: str) -> None:
    """The file exists (read nothing else)."""
    if not Path(path).is_file():
        raise DataMissingError(f"no dataset file {path}.")


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype, from the ``.npy`` headers inside the archive."""
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            for key in ARRAY_KEYS:
                if f"{key}.npy" not in names:
                    found = ", ".join(sorted(n.removesuffix(".npy") for n in names)) or "nothing"
                    raise DataCorruptError(
                        f"{path.name}: no array {key!r} (it holds {found}); write it with {FORMAT}."
                    )
                with archive.open(f"{key}.npy") as f:
                    major, _ = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                out[key] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        if isinstance(err, DataCorruptError):
            raise
        raise DataCorruptError(f"{path.name} is not a NumPy .npz archive ({err}).") from err
    return out


@functools.cache
def _facts(path: str, stamp: tuple[int, int]) -> DatasetFacts:
    file = Path(path)
    headers = _headers(file)
    check_shapes(
        file.name, {k: v[0] for k, v in headers.items()}, {k: v[1] for k, v in headers.items()}
    )
    with np.load(file) as saved:
        k = check_labels(file.name, saved["y_train"], saved["y_test"], None)
    shapes = {key: value[0] for key, value in headers.items()}
    return DatasetFacts(
        label(path), shapes["x_train"][1:], k, shapes["x_train"][0], shapes["x_test"][0]
    )


def facts(path: str) -> DatasetFacts:
    """The file's :class:`DatasetFacts` (headers and labels read; cached per file version)."""
    check(path)
    stat = Path(path).stat()
    return _facts(str(path), (stat.st_mtime_ns, stat.st_size))


def load(path: str, normalize: bool = True) -> Dataset:
    """The file's arrays, checked and (``normalize``) standardised
    (:meth:`Dataset.from_arrays`)."""
    info = facts(path)
    with np.load(path) as saved:
        arrays = [saved[key] for key in ARRAY_KEYS]
    return Dataset.from_arrays(
        *arrays, name=info.name, normalize=normalize, num_classes=info.num_classes
    )
