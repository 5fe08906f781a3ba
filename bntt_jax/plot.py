"""Plots of recorded spiking activity, for both methods: a spike raster and membrane traces
with the threshold (from ``simulate(..., record=True)``), spikes per layer and step (from any
``simulate``), and the TTFS network's first-spike times (from :func:`bntt_jax.ttfs.simulate`).

Each function draws into ``ax`` (a new figure's if ``None``) and returns it; matplotlib is
imported on first use. Arrays are time-major ``[T, B, ...]`` as :func:`bntt_jax.simulate`
returns them; ``sample`` picks one of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _axes(ax: Any) -> Any:
    """``ax``, or the axes of a new figure laid out so that nothing is cut when it is saved."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # on first use: plotting is optional

    return plt.subplots(figsize=(6, 3.5), layout="constrained")[1]


def _step_ticks(ax: Any) -> None:
    """Time steps are whole numbers: no tick at 2.5."""
    from matplotlib.ticker import MaxNLocator  # on first use, as above

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def raster(spikes: Any, *, sample: int = 0, max_neurons: int | None = 200, ax: Any = None) -> Any:
    """A spike raster of one layer: a dot at ``(t, neuron)`` for every spike of ``sample``.

    ``spikes``: ``[T, B, ...]`` (``out.spikes[layer]``); the neurons are flattened in
    channels-last order, the first ``max_neurons`` of them shown (``None``: all)."""
    o = np.asarray(spikes)[:, sample].reshape(len(spikes), -1)
    if max_neurons is not None:
        o = o[:, :max_neurons]
    t, neuron = np.nonzero(o > 0)
    ax = _axes(ax)
    ax.scatter(t + 1, neuron, s=4, marker="|", color="k")
    ax.set(
        xlabel="time step t",
        ylabel="neuron",
        xlim=(0.5, len(o) + 0.5),
        title=f"spikes of sample {sample} ({int(o.sum())} shown)",
    )
    _step_ticks(ax)
    return ax


def membrane_traces(
    membranes: Any,
    threshold: float,
    *,
    sample: int = 0,
    neurons: Sequence[int] = (0, 1, 2, 3),
    ax: Any = None,
) -> Any:
    """Membrane potentials ``u_t`` (before the reset, Eq. 4) of a few ``neurons`` of one
    layer, with the firing ``threshold`` θ and a marker on every spike: a neuron spikes at
    every step its trace exceeds θ (``u_t > θ``, :func:`bntt_jax.spike`), and its membrane is
    reset after it.

    ``membranes``: ``[T, B, ...]`` (``out.membranes[layer]``)."""
    u = np.asarray(membranes)[:, sample].reshape(len(membranes), -1)
    steps = np.arange(1, len(u) + 1)
    ax = _axes(ax)
    fired_t, fired_u = [], []
    for n in neurons:
        ax.plot(steps, u[:, n], marker=".", lw=1, label=f"neuron {n}")
        fired = u[:, n] > threshold
        fired_t.append(steps[fired])
        fired_u.append(u[fired, n])
    ax.axhline(threshold, color="r", ls="--", lw=0.9, label=f"threshold θ = {threshold:g}")
    ax.scatter(
        np.concatenate(fired_t),
        np.concatenate(fired_u),
        marker="^",
        s=36,
        facecolors="none",
        edgecolors="r",
        zorder=3,
        label="spike (u_t > θ)",
    )
    ax.set(xlabel="time step t", ylabel="membrane u_t", title=f"membranes of sample {sample}")
    _step_ticks(ax)
    ax.legend(fontsize=7)
    return ax


def spikes_per_step(spike_counts: dict[str, Any], *, ax: Any = None) -> Any:
    """Spikes of every layer per time step, averaged over the batch (BNTT paper, Fig. 1).

    ``spike_counts``: ``{layer: [T, B]}`` (``out.spike_counts``)."""
    ax = _axes(ax)
    for layer, counts in spike_counts.items():
        counts = np.asarray(counts)
        ax.plot(np.arange(1, len(counts) + 1), counts.mean(axis=1), label=layer)
    ax.set(xlabel="time step t", ylabel="spikes per sample", title="spikes per layer and step")
    _step_ticks(ax)
    ax.legend(fontsize=7, ncol=2)
    return ax


def first_spike_times(
    spike_times: Any, *, sample: int = 0, max_neurons: int | None = 200, ax: Any = None
) -> Any:
    """A TTFS layer's first-spike times (Eq. 1): a dot at ``(t, neuron)`` for every neuron of
    ``sample`` that fires, at the step within its window when it does; silent neurons
    (``-1``) are left out.

    ``spike_times``: ``[B, ...]`` int (``snn.spike_times[layer]`` of
    :func:`bntt_jax.ttfs.simulate`)."""
    times = np.asarray(spike_times)[sample].reshape(-1)
    if max_neurons is not None:
        times = times[:max_neurons]
    neuron = np.flatnonzero(times >= 0)
    ax = _axes(ax)
    ax.scatter(times[neuron], neuron, s=6, color="k")
    title = f"first spikes of sample {sample} ({len(neuron)} of {len(times)} fire)"
    ax.set(xlabel="first-spike time within the window", ylabel="neuron", title=title)
    _step_ticks(ax)
    return ax
