"""MNIST from its four canonical gzipped IDX files (Sequential MNIST, journal Table 3): the
values as written, row-major one pixel per step, and missing or damaged files named."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from bntt_jax.train import encode
from experiments.core.data import DataCorruptError, DataMissingError, load_dataset, mnist
from experiments.run import main
from tests.helpers.data import write_fake_mnist, write_idx


def test_the_idx_files_read_back_as_written(tmp_path):
    train_x, train_y, test_x, test_y = write_fake_mnist(tmp_path)
    raw = load_dataset("mnist", str(tmp_path), normalize=False)
    np.testing.assert_array_equal(raw.train_x[..., 0], train_x / np.float32(255))
    np.testing.assert_array_equal(raw.test_y, test_y)
    assert raw.train_x.shape == (12, 28, 28, 1) and raw.train_y.dtype == np.int32
    data = load_dataset("mnist", str(tmp_path))  # the usual MNIST mean and std
    expected = (test_x / np.float32(255) - 0.1307) / 0.3081
    np.testing.assert_allclose(data.test_x[..., 0], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data.to_intensities(data.test_x), raw.test_x, atol=1e-6)


def test_sequential_mnist_presents_the_pixels_row_by_row(tmp_path):
    write_fake_mnist(tmp_path)
    data = load_dataset("mnist", str(tmp_path), normalize=False)
    spikes = encode(None, data.test_x[:2], 784, "sequential")  # [784, B, 1]
    for t in (0, 1, 27, 28, 29, 783):
        r, c = divmod(t, 28)
        np.testing.assert_array_equal(spikes[t, :, 0], data.test_x[:2, r, c, 0])


def test_missing_files_are_named_with_where_to_get_them(tmp_path, capsys):
    write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataMissingError, match="no t10k-labels-idx1-ubyte.gz in .*--set data_dir"):
        load_dataset("mnist", str(tmp_path))
    out = tmp_path / "run"
    assert main(["smnist_bntt", "--set", f"data_dir={tmp_path}", "--out", str(out)]) == 2
    assert "t10k-labels-idx1-ubyte.gz" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("damage", ["magic", "truncated", "not gzip", "labels"])
def test_damaged_files_say_so(damage, tmp_path):
    write_fake_mnist(tmp_path)
    path = tmp_path / mnist.FILES["train_x"]
    if damage == "magic":  # a labels file where the images belong
        write_idx(path, mnist.LABELS_MAGIC, np.zeros(12, np.uint8))
        match = "magic number 2049, expected 2051"
    elif damage == "truncated":
        with gzip.open(path, "rb") as f:
            raw = f.read()
        with gzip.open(path, "wb") as f:
            f.write(raw[:-100])
        match = "truncated"
    elif damage == "not gzip":
        path.write_bytes(b"<html>not found</html>")
        match = "not a gzip file"
    else:  # eleven labels for twelve images
        write_idx(tmp_path / mnist.FILES["train_y"], mnist.LABELS_MAGIC, np.zeros(11, np.uint8))
        match = "12 images of .* and 11 labels"
    with pytest.raises(DataCorruptError, match=match):
        load_dataset("mnist", str(tmp_path))
