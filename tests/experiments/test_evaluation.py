"""Every test image is evaluated: the last evaluation batch is padded and masked, never
dropped, and a padded batch counts exactly what the unpadded images would."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax.baselines import ann
from experiments.core.evaluation import padded_batches
from experiments.run import main
from tests.experiments.test_own_data import _arrays
from tests.helpers.runs import sets


def test_the_last_batch_is_padded_and_masked():
    x = np.arange(108, dtype=np.float32)[:, None] + 1  # every row non-zero: padding is 0
    y = np.arange(108) % 3
    batches = list(padded_batches(x, y, 50, None))
    assert [b[0].shape for b in batches] == [(50, 1)] * 3  # one shape, one program
    assert [int(m.sum()) for _, _, m in batches] == [50, 50, 8]
    xs = np.concatenate([b[0][m] for b in batches for m in [b[2]]])
    np.testing.assert_array_equal(xs, x)  # every image once, in order
    assert not batches[-1][0][8:].any() and not batches[-1][1][8:].any()
    # a test set smaller than the batch: one batch of its size, rounded up to the devices
    (small,) = padded_batches(x[:7], y[:7], 512, None, devices=4)
    assert small[0].shape == (8, 1) and small[2].tolist() == [True] * 7 + [False]
    assert len(list(padded_batches(x, y, 50, 2))) == 2  # max_batches caps them


def test_a_masked_padded_batch_counts_what_its_real_rows_give(rows=5):
    """``eval_step`` on 5 images padded to 12 with a mask equals ``eval_step`` on the 5
    (deterministic encoder: the same spikes), for the BNTT network, the ANN and TTFS."""
    rng = np.random.default_rng(0)
    x = rng.random((12, 6), dtype=np.float32)
    y = (np.arange(12) % 3).astype(np.int32)
    mask = np.arange(12) < rows
    net = bj.init(0, arch="mlp", in_features=6, hidden=(16,), num_classes=3, T=4)
    key = jax.random.key(1)
    pairs = [
        (
            bj.eval_step(net, x[:rows], y[:rows], key, encoder="direct", exit_steps=(2,)),
            bj.eval_step(net, x, y, key, encoder="direct", exit_steps=(2,), mask=mask),
        )
    ]
    a = ann.init(
        jax.random.key(0),
        bj.NetworkConfig(arch="mlp", in_features=6, hidden=(16,), num_classes=3, norm="bn"),
    )
    pairs.append((ann.eval_step(a, x[:rows], y[:rows]), ann.eval_step(a, x, y, mask)))
    t = bj.ttfs.init(0, bj.ttfs.TTFSConfig(arch="mlp", in_features=6, hidden=(16,), num_classes=3))
    pairs.append((bj.ttfs.eval_step(t, x[:rows], y[:rows]), bj.ttfs.eval_step(t, x, y, mask)))
    for alone, masked in pairs:
        assert set(alone) == set(masked)
        for k in alone:
            np.testing.assert_allclose(masked[k], alone[k], rtol=1e-6, err_msg=k)
        assert int(masked["count"]) == rows
    with pytest.raises(ValueError, match=r"mask must be one bool per input, shape \(12,\)"):
        bj.eval_step(net, x, y, key, encoder="direct", mask=mask[:5])


@pytest.mark.e2e  # three whole runs
def test_a_small_test_set_evaluates_whole_without_eval_batch_size(tmp_path):
    """108 test images: the entry's evaluation batch (360) needs no change, and batches of 50
    (the last padded to 8 of 50) give the same metrics as one batch of 108 (direct coding:
    the same spikes whatever the batching)."""
    path = tmp_path / "mine.npz"
    np.savez(path, **_arrays(n_train=64, n_test=108, shape=(6,)))
    tiny = sets("epochs=1", "max_train_batches=2", "num_steps=4", "encoder=direct")
    tiny += ["--set", f"dataset={path}", "--set", "batch_size=16", "--set", "analyses=none"]
    metrics = {}
    for batch in (None, 50, 108):
        out = tmp_path / f"run{batch}"
        extra = [] if batch is None else ["--set", f"eval_batch_size={batch}"]
        assert main(["digits_bntt", *tiny, *extra, "--out", str(out)]) == 0
        metrics[batch] = json.loads((out / "metrics.json").read_text())
        assert metrics[batch]["num_test_images"] == 108
        assert "on 108 test images" in (out / "report.md").read_text()
    for key in ("test_accuracy", "spikes_per_image", "spike_rate"):
        assert metrics[50][key] == pytest.approx(metrics[108][key], rel=1e-6), key
        assert metrics[None][key] == pytest.approx(metrics[108][key], rel=1e-6), key
