"""Data: the canonical CIFAR archives (tiny fakes written here), tfds, augmentation, errors;
the digits split and its cache."""

import time
import zipfile

import numpy as np
import pytest

from experiments.core import data as D
from experiments.core.data import cifar, digits
from experiments.core.data.digits import load_digits
from experiments.run import main
from tests.helpers.data import write_fake_cifar


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_archive_reader_layout(tmp_path, name):
    archive = write_fake_cifar(tmp_path / cifar._CIFAR[name]["archive"], name)
    train_x, train_y, test_x, test_y = cifar.read_cifar_archive(archive, name)
    assert train_x.shape == (20, 32, 32, 3) and train_x.dtype == np.uint8
    assert test_x.shape == (8, 32, 32, 3)
    r, c = 5, 17
    assert train_x[3, r, c, 0] == (r * 32 + c) % 256  # rows, then columns, channels last
    assert train_x[3, r, c, 2] == 255 - (r * 32 + c) % 256
    assert train_x[13, 0, 0, 1] == 13  # images in file order across the batch files
    assert list(train_y[:6]) == [0, 1, 2, 3, 4, 5] and list(test_y) == list(range(8))


def test_normalisation_is_the_authors(tmp_path):
    write_fake_cifar(tmp_path / "cifar-10-python.tar.gz", "cifar10")
    ds = D.load_dataset("cifar10", str(tmp_path))
    raw = cifar.read_cifar_archive(tmp_path / "cifar-10-python.tar.gz", "cifar10")[0]
    expected = (raw[7, 2, 9] / 255.0 - [0.4914, 0.4822, 0.4465]) / [0.2023, 0.1994, 0.2010]
    np.testing.assert_allclose(ds.train_x[7, 2, 9], expected, rtol=1e-5)
    assert ds.num_classes == 10 and ds.input_shape == (32, 32, 3) and ds.augment is not None


def test_intensities_without_normalisation(tmp_path):
    # normalize=False (TTFS input coding): pixel/255 in [0, 1]; crops pad with 0 intensity.
    write_fake_cifar(tmp_path / "cifar-10-python.tar.gz", "cifar10")
    ds = D.load_dataset("cifar10", str(tmp_path), normalize=False)
    raw = cifar.read_cifar_archive(tmp_path / "cifar-10-python.tar.gz", "cifar10")[0]
    np.testing.assert_array_equal(ds.train_x[7, 2, 9], (raw[7, 2, 9] / 255.0).astype(np.float32))
    padded = ds.augment(np.random.default_rng(0), np.ones((64, 32, 32, 3), np.float32))
    assert set(np.unique(padded)) == {0.0, 1.0}  # shifted crops show the zero padding
    digits = load_digits(normalize=False)
    assert digits.train_x.min() == 0.0 and digits.train_x.max() == 1.0
    assert digits.fingerprint == load_digits().fingerprint  # the same raw data
    # a dataset maps its inputs back to intensities and forth (the robustness analyses add
    # noise and FGSM steps to intensities): per channel for CIFAR, one mean/std for digits
    standard = D.load_dataset("cifar10", str(tmp_path))
    np.testing.assert_allclose(standard.to_intensities(standard.test_x), ds.test_x, atol=1e-6)
    np.testing.assert_allclose(standard.from_intensities(ds.test_x), standard.test_x, atol=1e-5)
    np.testing.assert_array_equal(ds.to_intensities(ds.test_x), ds.test_x)  # mean 0, std 1
    np.testing.assert_allclose(
        load_digits().to_intensities(load_digits().test_x), digits.test_x, atol=1e-6
    )


def test_random_crop_with_padding_and_flip():
    rng = np.random.default_rng(0)
    batch = np.random.default_rng(1).normal(size=(64, 32, 32, 3)).astype(np.float32)
    out = cifar.cifar_augment(rng, batch)
    assert out.shape == batch.shape
    fill = -cifar.CIFAR_MEAN / cifar.CIFAR_STD
    # Replay the draws: every output is the padded image cropped at (dy, dx), maybe flipped.
    rng = np.random.default_rng(0)
    dy, dx = rng.integers(0, 9, size=(2, 64))
    flip = rng.random(64) < 0.5
    padded = np.broadcast_to(fill, (64, 40, 40, 3)).copy()
    padded[:, 4:36, 4:36] = batch
    for i in range(64):
        crop = padded[i, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        np.testing.assert_array_equal(out[i], crop[:, ::-1] if flip[i] else crop)
    assert 10 < flip.sum() < 54 and (dy != 4).any()


def test_missing_data_fails_fast_and_says_what_to_do(tmp_path):
    start = time.perf_counter()
    with pytest.raises(D.DataMissingError) as err:
        D.load_dataset("cifar10", str(tmp_path))
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "cifar-10-python.tar.gz" in message and str(tmp_path) in message
    assert "https://" in message and "--set data_dir" in message


def test_missing_data_through_the_cli_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["cifar10_bntt", "--set", f"data_dir={tmp_path}", "--out", str(out)]) == 2
    assert "no " in capsys.readouterr().err and not out.exists()


def test_tfds_data_source(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")  # the 'data' extra, part of 'test'
    (tmp_path / "cifar10").mkdir()  # a prepared tfds directory stands here
    with tfds.testing.mock_data(num_examples=6):
        ds = D.load_dataset("cifar10", str(tmp_path))
    assert ds.train_x.shape == (6, 32, 32, 3) and ds.train_x.dtype == np.float32
    assert ds.train_y.shape == (6,) and ds.test_x.shape == (6, 32, 32, 3)


def test_cifar10_bntt_starts_training_with_the_archive(tmp_path):
    write_fake_cifar(tmp_path / "cifar-10-python.tar.gz", "cifar10")
    out = tmp_path / "run"
    tiny = [
        "epochs=1",
        "num_steps=2",
        "batch_size=4",
        "eval_batch_size=4",
        "max_train_batches=1",
        "max_eval_batches=1",
        "analyses=none",  # a VGG9's analyses: tests/experiments/test_import_torch.py
    ]
    args = ["cifar10_bntt", "--set", f"data_dir={tmp_path}", "--out", str(out)]
    for item in tiny:
        args += ["--set", item]
    assert main(args) == 0
    assert (out / "metrics.json").exists() and (out / "report.md").exists()
    assert "| test accuracy (T = 2, on 4 test images) | " in (out / "report.md").read_text()
    assert "90.50%" in (out / "report.md").read_text()  # the paper's number beside ours


def test_the_digits_split_is_made_once_and_read_back_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path))
    made = digits.split()  # scikit-learn's stratified split, seed 0
    first = digits.cached_split()  # made and written
    assert digits.cache_file().parent == tmp_path and digits.cache_file().is_file()
    again = digits.cached_split()  # read back
    for a, b, c in zip(made, first, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
        assert a.dtype == c.dtype
    digits.cache_file().write_bytes(b"not an npz")  # damaged: made again, and replaced
    for a, c in zip(made, digits.cached_split(), strict=True):
        np.testing.assert_array_equal(a, c)
    assert zipfile.is_zipfile(digits.cache_file())
    assert load_digits().fingerprint == D.fingerprint(made[0], made[2], made[1], made[3])
