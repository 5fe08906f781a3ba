"""Data parallelism over all devices with ``jax.jit`` and ``NamedSharding``.

A 1-D ``data`` mesh: batches are split over it, parameters and statistics are replicated.
The compiler turns the batch means of BNTT into all-reduces, so the statistics (and hence the
loss, the gradients and the running averages) are those of the *global* batch, not of each
device's share: N devices compute the same function as one device.

What is equal, precisely: the same mathematics, summed in a different order. One training
step on N devices gives the same loss, the same spikes and the same running statistics as on
one device, and gradients and updated parameters equal to float32 rounding (about 1e-7
relative). Over many steps those rounding differences are not damped: once a membrane
potential lies within rounding of the threshold, a spike flips and the two runs diverge like
runs with different summation orders, so a whole run on N devices ends at an accuracy within
run-to-run noise of the one-device run, not at the same digits. A run is bit-reproducible for
a fixed device layout (devices per process and processes), and N processes with one device
each compute exactly what one process with N devices does.

Multi-host runs call ``jax.distributed.initialize()`` first and use the same code: every
process passes the same global batch and places only its own devices' rows.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over ``devices`` (default: all devices).

    Its axis is ``Auto``: sharding propagates through the layer-major reshapes without
    annotations.
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh(
        (len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=devices
    )


def check_batch_size(mesh: Mesh, batch_size: int) -> None:
    """A clear error when a batch does not split evenly over the devices."""
    n = mesh.shape[DATA_AXIS]
    if batch_size % n:
        raise ValueError(
            f"batch size {batch_size} does not divide over the {n} devices of the data mesh; "
            f"use a multiple of {n} (e.g. {batch_size - batch_size % n or n})."
        )


def shard_batch(mesh: Mesh, *arrays: np.ndarray | jax.Array) -> tuple[jax.Array, ...]:
    """Place arrays split along their leading (batch) axis over the ``data`` mesh.

    Every process passes the same global batch; each places only the rows of its own
    devices (``jax.make_array_from_callback``), so the same code runs on one device, on
    several, and on several processes.
    """
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    out = []
    for a in arrays:
        check_batch_size(mesh, a.shape[0])
        out.append(_place(a, sharding))
    return tuple(out)


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Place a pytree (parameters, optimiser state) replicated on every device of the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda a: _place(a, sharding), tree)


def _place(a: Any, sharding: NamedSharding) -> jax.Array:
    if jax.process_count() == 1:
        return jax.device_put(a, sharding)
    host = np.asarray(jax.device_get(a) if isinstance(a, jax.Array) else a)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
