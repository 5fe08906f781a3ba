"""TensorBoard event files, read back by a decoder written here from the format's spec
(TFRecord framing, the Event and Summary protocol buffers), independent of the writer."""

from __future__ import annotations

import json
import struct

import pytest

from experiments.core import tensorboard
from experiments.run import main
from tests.helpers.runs import sets


def _crc32c_bitwise(data: bytes) -> int:
    """CRC-32C bit by bit (no table), the Castagnoli polynomial reflected."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rotated = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rotated << 15) | (rotated >> 17)) & 0xFFFFFFFF


def _records(blob: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(blob):
        (length,) = struct.unpack_from("<Q", blob, i)
        (length_crc,) = struct.unpack_from("<I", blob, i + 8)
        assert _unmask(length_crc) == _crc32c_bitwise(blob[i : i + 8])
        payload = blob[i + 12 : i + 12 + length]
        (payload_crc,) = struct.unpack_from("<I", blob, i + 12 + length)
        assert _unmask(payload_crc) == _crc32c_bitwise(payload)
        out.append(payload)
        i += 16 + length
    return out


def _fields(message: bytes) -> list[tuple[int, object]]:
    """(field number, value) pairs of a protocol buffer: varints as ints, 64-bit as double,
    32-bit as float, length-delimited as bytes."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        value, shift = 0, 0
        while True:
            byte = message[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(message):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 1:
            out.append((number, struct.unpack_from("<d", message, i)[0]))
            i += 8
        elif wire == 5:
            out.append((number, struct.unpack_from("<f", message, i)[0]))
            i += 4
        else:
            length = varint()
            out.append((number, message[i : i + length]))
            i += length
    return out


def _scalars(path) -> tuple[list[float], dict[int, dict[str, float]]]:
    """The events' wall times and ``{step: {tag: value}}``; the first event the version."""
    events = [dict(_fields(r)) for r in _records(path.read_bytes())]
    assert events[0][3] == b"brain.Event:2"
    steps = {}
    for e in events[1:]:
        values = [dict(_fields(v)) for n, v in _fields(e[5]) if n == 1]
        steps[e.get(2, 0)] = {v[1].decode(): v[2] for v in values}
    return [e[1] for e in events], steps


def test_the_crc_is_castagnolis():
    assert tensorboard.crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert tensorboard.crc32c(b"") == 0 and _crc32c_bitwise(b"123456789") == 0xE3069283


def test_a_run_writes_its_epochs_as_tensorboard_scalars(tmp_path):
    tiny = sets("epochs=3", "max_train_batches=2", "num_steps=4", "eval_every=1", "analyses=none")
    out = tmp_path / "run"
    assert main(["digits_bntt", *tiny, "--out", str(out)]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    walls, steps = _scalars(out / tensorboard.EVENT_FILE)
    assert sorted(steps) == [1, 2, 3] and walls == sorted(walls)
    for record in history:
        scalars = steps[record["epoch"]]
        assert scalars["train/loss"] == pytest.approx(record["train_loss"], rel=1e-6)
        assert scalars["train/accuracy"] == pytest.approx(record["train_accuracy"], rel=1e-6)
        assert scalars["test/accuracy"] == pytest.approx(record["test_accuracy"], rel=1e-6)
        assert scalars["lr"] == pytest.approx(record["lr"], rel=1e-6)
