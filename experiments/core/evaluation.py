"""The one batched test-set loop: every method's test, the end-of-run metrics, the conversion,
the TTFS spiking network's check and the analyses run their networks through it.

A caller gives ``fn(x, y, i)``, which returns sums over batch ``i`` (``correct``, losses,
spike counts, ...); :func:`over_test_set` adds them up over the test set and reads them once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from bntt_jax import parallel
from experiments.core.data import Dataset, iterate

#: Keys of a batch's results that are maximised over the batches instead of summed.
MAX_PREFIX = "max_"


def _chunks(x: np.ndarray, y: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size]


def over_test_set(
    fn: Callable[[Any, Any, int], dict[str, Any]],
    data: Dataset,
    batch_size: int,
    *,
    max_batches: int | None = None,
    limit: int | None = None,
    shard: bool = True,
) -> dict[str, np.ndarray]:
    """``fn(x, y, i)``'s results over the test batches, summed (a key starting with
    ``max_`` maximised), as host arrays; ``{}`` when there is no batch.

    Batches of ``batch_size`` drop the last partial one (as the authors' loaders), up to
    ``max_batches``; with ``limit`` the first ``limit`` test images are taken instead, the
    last partial batch included. ``shard``: each batch is split over the devices of the
    ``data`` mesh (:mod:`bntt_jax.parallel`), and the sums stay on the device until the end.
    """
    if limit is None:
        batches = iterate(data.test_x, data.test_y, batch_size, max_batches=max_batches)
    else:
        batches = _chunks(data.test_x[:limit], data.test_y[:limit], batch_size)
    mesh = parallel.data_mesh() if shard else None
    totals: dict[str, Any] = {}
    for i, (x, y) in enumerate(batches):
        if mesh is not None:
            x, y = parallel.shard_batch(mesh, x, y)
        m = fn(x, y, i)
        totals = m if not totals else {k: _combine(k, totals[k], v) for k, v in m.items()}
    return jax.tree.map(np.asarray, totals)


def test_totals(
    step: Callable[[Any, Any, int], dict[str, Any]], data: Dataset, config: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``step(x, y, i)`` over the test set in the config's batches (capped by
    ``max_eval_batches``): the summed totals, and the test's ``accuracy``, ``loss`` (from
    ``correct`` and ``loss_sum``) and image ``count``."""
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
