"""Tiny-ImageNet from its release folder: labels by wnids.txt and val_annotations.txt, images
decoded once and read back from the cache, a changed folder decoded again, and missing or
damaged releases named."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.core.data import DataCorruptError, DataMissingError, load_dataset
from experiments.core.data import tiny_imagenet as tiny
from experiments.run import main
from tests.helpers.data import write_fake_tiny_imagenet


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_release_reads_as_planted_and_is_cached(tmp_path, cache, monkeypatch):
    planted = write_fake_tiny_imagenet(tmp_path)
    data = load_dataset("tiny_imagenet", str(tmp_path), normalize=False)
    assert data.train_x.shape == (6, 64, 64, 3) and data.test_x.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(data.train_y, [0, 0, 1, 1, 2, 2])  # wnids.txt order
    np.testing.assert_array_equal(data.test_y, [0, 1, 2, 0])  # val_annotations.txt
    train = [v for p, v in planted.items() if "train" in p.parts]
    val = [v for p, v in planted.items() if "val" in p.parts]
    for x, (colour, _) in zip((*data.train_x, *data.test_x), train + val, strict=True):
        np.testing.assert_allclose(x.reshape(-1, 3).mean(0) * 255, colour, atol=3)  # JPEG
    assert len(list(cache.glob("tiny-imagenet-*.npz"))) == 1

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(tiny, "_decode", no_decoding)  # a second run reads the cache
    again = load_dataset("tiny_imagenet", str(tmp_path))
    np.testing.assert_array_equal(again.train_y, data.train_y)
    expected = (data.test_x - tiny.MEAN) / tiny.STD
    np.testing.assert_allclose(again.test_x, expected, rtol=1e-5, atol=1e-5)
    assert again.fingerprint == data.fingerprint
    # a changed release is decoded again
    image = next(p for p in planted if "val" in p.parts)
    image.write_bytes(next(p for p in planted if "train" in p.parts).read_bytes())
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset("tiny_imagenet", str(tmp_path))


def test_a_missing_release_says_where_to_get_it(tmp_path, capsys):
    with pytest.raises(DataMissingError, match=r"tiny-imagenet-200\.zip, unzip it into"):
        load_dataset("tiny_imagenet", str(tmp_path))
    out = tmp_path / "run"
    args = ["tiny_imagenet_bntt", "--set", f"data_dir={tmp_path}", "--out", str(out)]
    assert main(args) == 2
    assert "tiny-imagenet-200" in capsys.readouterr().err and not out.exists()


def test_a_damaged_release_says_so(tmp_path, cache):
    write_fake_tiny_imagenet(tmp_path)
    annotations = tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn99\t0\t0\t63\t63\n")
    with pytest.raises(DataCorruptError, match="line 1.*a wnid of wnids.txt"):
        load_dataset("tiny_imagenet", str(tmp_path))
    write_fake_tiny_imagenet(tmp_path / "other")
    broken = tmp_path / "other" / "tiny-imagenet-200" / "train" / "n02" / "images" / "n02_1.JPEG"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataCorruptError, match="cannot decode .*n02_1.JPEG"):
        load_dataset("tiny_imagenet", str(tmp_path / "other"))
