"""TensorBoard event files for a run's per-epoch metrics, written without TensorFlow.

Every commit of an epoch rewrites ``events.out.tfevents.0.bntt-jax`` in the run's folder from
the committed history (like ``metrics.json``, a view of the commit record, replaced whole), so
``tensorboard --logdir results/`` shows every run side by side, each under its folder's name,
and a resumed or crashed run never holds an epoch twice. Each history number is a scalar at
its epoch: ``train_loss`` as ``train/loss``, ``test_accuracy`` as ``test/accuracy``, the
others by their key.

The format is TensorBoard's: TFRecord framing (a little-endian ``uint64`` length, its masked
CRC-32C, the payload, the payload's masked CRC-32C) around ``tensorflow.Event`` protocol
buffers (``wall_time`` field 1, ``step`` 2, ``file_version`` 3, ``summary`` 5 of repeated
``Summary.Value``: ``tag`` 1, ``simple_value`` 2), encoded here by hand. No JAX.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from experiments.core.files import write_synced

#: The event file's name: one per run folder, rewritten whole at every commit.
EVENT_FILE = "events.out.tfevents.0.bntt-jax"
_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_POLY if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _table()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    """TFRecord's masked CRC: rotated right by 15 bits, plus a constant."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the payload, its masked CRC."""
    length = struct.pack("<Q", len(payload))
    return (
        length
        + struct.pack("<I", _masked(crc32c(length)))
        + payload
        + struct.pack("<I", _masked(crc32c(payload)))
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, body: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    return key + (_varint(len(body)) + body if wire == 2 else body)


def event(wall_time: float, step: int = 0, scalars: dict[str, float] | None = None) -> bytes:
    """A ``tensorflow.Event`` with ``scalars`` as a summary; none: the file-version event."""
    out = _field(1, 1, struct.pack("<d", wall_time))
    if scalars is None:
        return out + _field(3, 2, b"brain.Event:2")
    out += _field(2, 0, _varint(step))
    values = b"".join(
        _field(1, 2, _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", value)))
        for tag, value in scalars.items()
    )
    return out + _field(5, 2, values)


def tag(key: str) -> str:
    """A history key as TensorBoard groups it: ``train_loss`` → ``train/loss``."""
    for split in ("train", "test"):
        if key.startswith(f"{split}_"):
            return f"{split}/{key[len(split) + 1 :]}"
    return key


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of one history record (nested ones as ``key/inner``), by tag; ``epoch``
    is the event's step, not a scalar."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if key == "epoch" or isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            out[tag(key)] = float(value)
        elif isinstance(value, dict):
            out |= {
                f"{tag(key)}/{k}": float(v)
                for k, v in value.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return out


def write_history(out: Path, history: list[dict[str, Any]], start: float) -> Path:
    """Rewrite the run folder ``out``'s event file from its ``history`` (one event per epoch,
    at ``start`` plus the epochs' summed ``epoch_time_s``)."""
    records = [tfrecord(event(start))]
    wall = start
    for record in history:
        wall += float(record.get("epoch_time_s", 0.0))
        records.append(tfrecord(event(wall, int(record["epoch"]), epoch_scalars(record))))
    return write_synced(Path(out) / EVENT_FILE, b"".join(records))
