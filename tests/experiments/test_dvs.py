"""CIFAR10-DVS: jAER DVS128 recordings decoded (rows, columns, polarities, times), binned into
20 intervals of 42×42 frames as Appendix C says, split 9:1 per class (or as test_per_class
says), cached, and missing or damaged recordings named."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.core.config import ConfigError, ExperimentConfig
from experiments.core.data import DataCorruptError, DataMissingError, dvs, load_dataset
from experiments.run import main
from tests.helpers.data import write_fake_dvs


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BNTT_JAX_CACHE", str(tmp_path / "cache"))


def test_a_recording_decodes_to_its_events(tmp_path):
    events = [(10, 0, 0, 0), (20, 127, 5, 1), (35, 64, 127, 0)]
    path = next(iter(write_fake_dvs(tmp_path, indices=(7,), events=events)))
    t, row, column, channel = dvs.read_aedat(path)
    assert list(zip(t, row, column, channel, strict=True)) == events


def test_events_are_binned_by_time_and_downsampled_by_summing():
    # span 0 … 1999 µs in 20 intervals of 100 µs; 128 pixels into 42 bins: r·42 // 128
    t = np.array([0, 99, 100, 1999, 1999])
    row, column = np.array([0, 3, 4, 127, 127]), np.array([0, 0, 0, 127, 127])
    channel = np.array([0, 0, 1, 1, 1])
    frames = dvs.bin_events(t, row, column, channel)
    assert frames.shape == (20, 42, 42, 2) and frames.dtype == np.uint16
    assert frames[0, 0, 0, 0] == 2  # rows 0 and 3 share bin 0 (3·42 // 128 = 0)
    assert frames[1, 1, 0, 1] == 1  # t = 100: interval 1; row 4: bin 1
    assert frames[19, 41, 41, 1] == 2  # the last events, the last bin
    assert frames.sum() == 5  # every event counted once


def test_the_release_splits_nine_to_one_and_is_cached(tmp_path, cache, monkeypatch):
    write_fake_dvs(tmp_path, indices=(0, 1, 100, 101, 102))
    data = load_dataset("cifar10_dvs", str(tmp_path))
    assert data.train_x.shape == (30, 20, 42, 42, 2) and data.test_x.shape == (20, 20, 42, 42, 2)
    np.testing.assert_array_equal(data.test_y, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(data.train_y, np.repeat(np.arange(10), 3))
    assert data.train_x.sum(axis=(1, 2, 3, 4)).tolist() == [4.0] * 30  # four events each
    # class 3, recording 0: its first event (t = 3000, row 3, column 0, ON) is in interval
    # (3000 − 3000)·20 // span = 0 (the recording starts there), bin (0, 0)
    assert data.test_x[6, 0, 0, 0, 0] == 1

    def no_decoding(path):
        raise AssertionError("decoded again")

    monkeypatch.setattr(dvs, "read_aedat", no_decoding)
    again = load_dataset("cifar10_dvs", str(tmp_path))
    np.testing.assert_array_equal(again.train_x, data.train_x)
    assert again.fingerprint == data.fingerprint
    # another split comes from the same cache: recordings 0, 1 and 100 held out, 101 and 102 left
    other = load_dataset("cifar10_dvs", str(tmp_path), test_per_class=101)
    assert len(other.test_x) == 30 and len(other.train_x) == 20
    np.testing.assert_array_equal(other.test_x[0::3], data.test_x[0::2])  # each class's 0
    np.testing.assert_array_equal(other.test_x[2::3], data.train_x[0::3])  # each class's 100
    np.testing.assert_array_equal(other.train_y, np.repeat(np.arange(10), 2))
    assert other.fingerprint != data.fingerprint


def test_the_split_is_a_config_value_named_in_the_report(capsys, tmp_path):
    keys = dict(
        dataset="cifar10_dvs",
        arch="custom",
        plan="c8,p,f16",
        encoder="frames",
        num_steps=20,
        batch_size=64,
        eval_batch_size=100,
    )
    config = ExperimentConfig.from_flat(keys)
    assert (
        config.dataset_label == "cifar10_dvs (test: recordings 0–99 of each class, 9,000 / 1,000)"
    )
    config = ExperimentConfig.from_flat({**keys, "test_per_class": 200})
    assert (config.facts.train_size, config.facts.test_size) == (8_000, 2_000)
    assert "recordings 0–199 of each class, 8,000 / 2,000" in config.dataset_label
    with pytest.raises(ConfigError, match="test_per_class=1000: each class .* 1000 recordings"):
        ExperimentConfig.from_flat({**keys, "test_per_class": 1000})
    out = tmp_path / "run"
    assert main(["digits_bntt", "--set", "test_per_class=10", "--out", str(out)]) == 2
    assert "digits comes with its own test set" in capsys.readouterr().err and not out.exists()


def test_missing_or_damaged_recordings_say_so(tmp_path, cache, capsys):
    with pytest.raises(DataMissingError, match="no airplane, automobile.*figshare"):
        load_dataset("cifar10_dvs", str(tmp_path))
    out = tmp_path / "run"
    assert main(["dvs_cifar10_bntt", "--set", f"data_dir={tmp_path}", "--out", str(out)]) == 2
    assert "CIFAR10-DVS" in capsys.readouterr().err and not out.exists()
    written = write_fake_dvs(tmp_path)
    path = next(iter(written))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataCorruptError, match="not whole 8-byte records"):
        load_dataset("cifar10_dvs", str(tmp_path))
