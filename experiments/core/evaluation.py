"""The one batched test-set loop: every method's test, the end-of-run metrics, the conversion,
the TTFS spiking network's check and the analyses run their networks through it.

A caller gives ``fn(x, y, i, mask)``, which returns sums over batch ``i`` (``correct``,
losses, spike counts, ...) counting only the rows ``mask`` marks; :func:`over_test_set` adds
them up over the test set and reads them once. Every test image is evaluated: the last
partial batch is padded to the batch size and masked, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from bntt_jax import parallel
from experiments.core.data import Dataset

#: Keys of a batch's results that are maximised over the batches instead of summed.
MAX_PREFIX = "max_"


def _chunks(x: np.ndarray, y: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, ...]]:
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size], None


def padded_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, max_batches: int | None, devices: int = 1
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(x, y, mask)`` batches of the whole test set in order: batches of ``batch_size``
    (of the test set's size rounded up to ``devices`` where it is smaller), the last one
    padded with zero inputs and label 0 to that size and ``mask`` marking its real rows; at
    most ``max_batches``. One batch shape, so one compiled program."""
    n = len(x)
    size = batch_size if n >= batch_size else -(-n // devices) * devices
    count = -(-n // size)
    for i in range(count if max_batches is None else min(count, max_batches)):
        xb, yb = x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]
        pad = size - len(xb)
        mask = np.arange(size) < len(xb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, yb.dtype)])
        yield xb, yb, mask


def over_test_set(
    fn: Callable[[Any, Any, int, Any], dict[str, Any]],
    data: Dataset,
    batch_size: int,
    *,
    max_batches: int | None = None,
    limit: int | None = None,
    shard: bool = True,
) -> dict[str, np.ndarray]:
    """``fn(x, y, i, mask)``'s results over the test batches, summed (a key starting with
    ``max_`` maximised), as host arrays; ``{}`` when there is no batch.

    ``shard``: batches of ``batch_size`` (:func:`padded_batches`: the last one padded and
    masked), each split over the devices of the ``data`` mesh (:mod:`bntt_jax.parallel`),
    the sums staying on the device until the end; up to ``max_batches``. Without it (a
    check run on the host alone), the batches are unpadded and ``mask`` is ``None``. With
    ``limit`` the first ``limit`` test images are taken, unpadded.
    """
    mesh = parallel.data_mesh() if shard and limit is None else None
    if mesh is not None:
        devices = mesh.devices.size
        batches = padded_batches(data.test_x, data.test_y, batch_size, max_batches, devices)
    else:
        stop = len(data.test_x) if limit is None else limit
        if limit is None and max_batches is not None:
            stop = min(stop, max_batches * batch_size)
        batches = _chunks(data.test_x[:stop], data.test_y[:stop], batch_size)
    totals: dict[str, Any] = {}
    for i, (x, y, mask) in enumerate(batches):
        if mesh is not None:
            x, y, mask = parallel.shard_batch(mesh, x, y, mask)
        m = fn(x, y, i, mask)
        totals = m if not totals else {k: _combine(k, totals[k], v) for k, v in m.items()}
    return jax.tree.map(np.asarray, totals)


def test_totals(
    step: Callable[[Any, Any, int, Any], dict[str, Any]], data: Dataset, config: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``step(x, y, i, mask)`` over the test set in the config's batches (capped by
    ``max_eval_batches``): the summed totals, and the test's ``accuracy``, ``loss`` (from
    ``correct`` and ``loss_sum``) and ``count``, the images evaluated."""
    totals = over_test_set(step, data, config.eval_batch_size, max_batches=config.max_eval_batches)
    count = int(totals["count"])
    accuracy, loss = int(totals["correct"]) / count, float(totals["loss_sum"]) / count
    return totals, {"accuracy": accuracy, "loss": loss, "count": count}


def _combine(key: str, total: Any, value: Any) -> Any:
    return max(total, value) if key.startswith(MAX_PREFIX) else total + value


def host_copy(tree: Any) -> Any:
    """This process's copy of replicated arrays, on the host: what a check that runs on each
    process alone (the conversion, the TTFS spiking network) takes."""
    return jax.tree.map(
        lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else a, tree
    )
