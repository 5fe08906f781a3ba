"""A dataset of your own: ``Dataset.from_arrays`` and ``--set dataset=PATH.npz``. Standardised
as the built-in ones, named by its file, and every bad array a clear error before anything is
written."""

from __future__ import annotations

import re

import numpy as np
import pytest

from experiments.core.data import DataCorruptError, Dataset, dataset_facts, load_dataset
from experiments.run import main

RNG = np.random.default_rng(0)


def _arrays(n_train=40, n_test=20, shape=(8, 8, 2), classes=3):
    return dict(
        x_train=RNG.random((n_train, *shape), dtype=np.float32),
        y_train=np.arange(n_train) % classes,
        x_test=RNG.random((n_test, *shape), dtype=np.float32),
        y_test=np.arange(n_test) % classes,
    )


def test_from_arrays_standardises_per_channel_with_the_training_statistics():
    a = _arrays()
    a["x_train"][..., 1] *= 0.5  # the two channels differ
    data = Dataset.from_arrays(**a, name="mine")
    x = a["x_train"].astype(np.float64)
    mean, std = x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(data.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(data.std, std, rtol=1e-6)
    np.testing.assert_allclose(data.train_x, (x - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.test_x, (a["x_test"] - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.to_intensities(data.test_x), a["x_test"], atol=1e-6)
    assert data.num_classes == 3 and data.train_y.dtype == np.int32


def test_uint8_pixels_are_intensities_over_255():
    a = _arrays(shape=(4,))
    pixels = {
        **a,
        "x_train": (a["x_train"] * 255).astype(np.uint8),
        "x_test": (a["x_test"] * 255).astype(np.uint8),
    }
    data = Dataset.from_arrays(**pixels, normalize=False)
    np.testing.assert_array_equal(data.train_x, pixels["x_train"].astype(np.float32) / 255)


def test_a_file_reads_as_its_arrays_and_is_named_by_it(tmp_path):
    a = _arrays()
    path = tmp_path / "mine.npz"
    np.savez(path, **a)
    facts = dataset_facts(str(path))
    assert (facts.name, facts.input_shape, facts.num_classes) == ("mine.npz", (8, 8, 2), 3)
    assert (facts.train_size, facts.test_size) == (40, 20)
    data = load_dataset(str(path), "unused")
    same = Dataset.from_arrays(**a, name="mine.npz")
    np.testing.assert_array_equal(data.train_x, same.train_x)
    assert data.fingerprint == same.fingerprint and data.name == "mine.npz"
    np.savez(path, **{**a, "y_test": a["y_test"][::-1].copy()})  # the same file, new labels
    assert load_dataset(str(path), "unused").fingerprint != same.fingerprint


def _bad(name):
    a = _arrays(shape=(6,))
    if name == "rank":
        return {**a, "x_train": a["x_train"][:, 0]}
    if name == "label rank":
        return {**a, "y_train": a["y_train"][:, None]}
    if name == "lengths":
        return {**a, "y_test": a["y_test"][:-1]}
    if name == "negative label":
        return {**a, "y_train": a["y_train"] - 1}
    if name == "float labels":
        return {**a, "y_test": a["y_test"].astype(np.float32)}
    if name == "nan":
        x = a["x_test"].copy()
        x[3, 2] = np.nan
        return {**a, "x_test": x}
    if name == "range":
        return {**a, "x_train": a["x_train"] * 255}
    if name == "sample shapes":
        return {**a, "x_test": a["x_test"][:, :5]}
    if name == "huge label":  # one stray label of 2³¹ − 1 in the test set
        return {**a, "y_test": np.concatenate([a["y_test"][:-1], [2**31 - 1]]).astype(np.int64)}
    if name == "huge train label":  # 2³¹ − 1 in the training set: no [K] array may be made
        return {**a, "y_train": np.concatenate([[2**31 - 1], a["y_train"][1:]]).astype(np.int64)}
    if name == "gap":  # classes 0, 1, 2 and 100000: 99,997 classes without an example
        return {**a, "y_train": np.where(a["y_train"] == 2, 100000, a["y_train"])}
    if name == "one class":
        return {**a, "y_train": 0 * a["y_train"], "y_test": 0 * a["y_test"]}
    raise AssertionError(name)


BAD = {
    "rank": r"x_train has shape \(40,\); inputs are \[N, features\] or \[N, H, W, C\]",
    "label rank": r"y_train has shape \(40, 1\); labels are one integer per sample",
    "lengths": "x_test holds 20 samples but y_test 19 labels",
    "negative label": "a label is -1; labels are 0 … K−1",
    "float labels": "y_test has dtype float32; labels are integers",
    "nan": "x_test holds 1 NaN or Inf values",
    "range": r"x_train spans \[[0-9.]+, 2[0-9.]+\]; inputs are intensities in \[0, 1\]",
    "sample shapes": r"x_train samples have shape \(6,\) but x_test samples \(5,\)",
    "one class": "at least two classes",
    "huge label": r"the largest label, 2147483647, would make 2147483648 classes and y_train "
    r"holds 3 distinct labels \(class 3 has no training example\)",
    "huge train label": r"the largest label, 2147483647, would make 2147483648 classes and "
    r"y_train holds 4 distinct labels \(class 3 has no training example\)",
    "gap": r"the largest label, 100000, would make 100001 classes and y_train holds 3 distinct "
    r"labels \(class 2 has no training example\)",
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_arrays_are_named_before_anything_is_written(name, tmp_path, capsys):
    path, out = tmp_path / "bad.npz", tmp_path / "run"
    np.savez(path, **_bad(name))
    args = ["--set", f"dataset={path}", "--set", "batch_size=8", "--set", "eval_batch_size=10"]
    assert main(["digits_bntt", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "batch" not in err
    assert not out.exists()
    with pytest.raises(DataCorruptError, match=BAD[name]):
        Dataset.from_arrays(**_bad(name))


def test_a_file_that_is_not_the_format_says_so(tmp_path, capsys):
    missing_key = tmp_path / "keys.npz"
    np.savez(missing_key, x_train=np.zeros((2, 3)), y_train=np.zeros(2, int))
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a zip")
    for path, message in (
        (missing_key, "no array 'x_test' (it holds x_train, y_train)"),
        (garbage, "garbage.npz is not a NumPy .npz archive"),
        (tmp_path / "absent.npz", "no dataset file"),
    ):
        assert main(["digits_bntt", "--set", f"dataset={path}", "--show"]) == 2
        assert message in capsys.readouterr().err


def _frames(n=30, t=4, dtype=np.uint16):
    return RNG.poisson(0.7, (n, t, 8, 8, 2)).astype(dtype)


def test_event_frames_are_kept_as_counts(tmp_path):
    a = dict(
        x_train=_frames(), y_train=np.arange(30) % 3, x_test=_frames(12), y_test=np.arange(12) % 3
    )
    data = Dataset.from_arrays(**a)  # normalize=True leaves event frames as they are
    np.testing.assert_array_equal(data.train_x, a["x_train"].astype(np.float32))
    assert (data.mean, data.std) == (0.0, 1.0)
    path = tmp_path / "events.npz"
    np.savez(path, **a)
    assert dataset_facts(str(path)).input_shape == (4, 8, 8, 2)


FRAME_ERRORS = [
    (["--set", "encoder=poisson"], "holds event frames of shape (4, 8, 8, 2)"),
    (["--set", "encoder=frames", "--set", "num_steps=5"], "holds 4 event frames per sample"),
    (
        ["--set", "encoder=frames", "--set", "num_steps=4", "--set", "arch=mlp"],
        "mlp takes feature vectors",
    ),
]


@pytest.mark.parametrize("args,message", FRAME_ERRORS)
def test_event_frames_need_the_frames_encoder_and_their_step_count(args, message, tmp_path, capsys):
    path = tmp_path / "events.npz"
    np.savez(
        path,
        x_train=_frames(),
        y_train=np.arange(30) % 3,
        x_test=_frames(12),
        y_test=np.arange(12) % 3,
    )
    common = [
        "--set",
        f"dataset={path}",
        "--set",
        "batch_size=8",
        "--set",
        "eval_batch_size=6",
        "--set",
        "arch=vgg9",
        "--show",
    ]
    assert main(["digits_bntt", *common, *args]) == 2
    assert message in capsys.readouterr().err
    assert main(["digits_ann", *common]) == 2  # the ANN takes no frames
    assert "which the BNTT method's network takes one frame per step" in capsys.readouterr().err


def test_the_frames_encoder_needs_frames(tmp_path, capsys):
    path = tmp_path / "images.npz"
    np.savez(path, **_arrays())
    args = [
        "--set",
        f"dataset={path}",
        "--set",
        "encoder=frames",
        "--set",
        "arch=vgg9",
        "--set",
        "batch_size=8",
        "--set",
        "eval_batch_size=10",
        "--show",
    ]
    assert main(["digits_bntt", *args]) == 2
    assert "the frames encoder presents event frames" in capsys.readouterr().err


@pytest.mark.parametrize(
    "plan,match",
    [
        ("c0", r"word 1 \('c0'\).*at least 1 channel"),
        ("c8,p,p", r"word 3 \('p'\).*a pool follows a convolution"),
        ("p,p", r"word 1 \('p'\).*a pool follows a convolution"),
        (
            ",".join(["f8"] * 10_000),
            r"plan=f8,f8.*… \(29999 characters\): the plan has 10000 words",
        ),
    ],
)
def test_a_bad_plan_on_images_names_its_word_not_the_input_kind(plan, match, tmp_path, capsys):
    """The plan's own problem, not "custom takes feature vectors" (which a plan that fails to
    parse cannot say), in one line and before any folder."""
    path, out = tmp_path / "images.npz", tmp_path / "run"
    np.savez(path, **_arrays())
    args = ["--set", f"dataset={path}", "--set", "arch=custom", "--set", f"plan={plan}"]
    assert main(["digits_bntt", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "feature vectors" not in err, err[:300]
    assert len(err.strip().splitlines()) == 1 and len(err) < 1000 and not out.exists()
