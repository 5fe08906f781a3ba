"""Fixtures of the experiment tests."""

import json

import pytest

from experiments.core import calibration, estimates


@pytest.fixture(autouse=True)
def reference_machine(tmp_path_factory, monkeypatch):
    """``--show``'s estimates as on the reference machine: a calibration equal to the one in
    ``timings.json`` (no few-second measurement in a test, and no dependence on how loaded the
    test machine is). Tests of the calibration itself undo it."""
    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    reference = json.loads(estimates.TIMINGS.read_text())["calibration"]
    path.write_text(json.dumps({**reference, "measured_at": "the reference machine"}))
    monkeypatch.setattr(calibration, "cache_file", lambda: path)
