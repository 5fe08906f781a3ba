"""simulate(..., record=True): every layer's membranes and spikes, checked against the LIF
recurrence written out by hand (Eq. 4: u_t = λ·m_{t-1} + I_t, o_t = [u_t ≥ θ], soft reset
m_t = u_t − θ·o_t), and the plots drawn from them."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax import ttfs
from tests.helpers.pages import run_block

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def recorded():
    net = bj.init(0, arch="mlp", in_features=10, num_classes=3, hidden=(16,), T=6, norm="none")
    spikes = (np.random.default_rng(0).random((6, 4, 10)) < 0.5).astype(np.float32)
    return net, spikes, bj.simulate(net, spikes, record=True)


def test_recorded_membranes_and_spikes_follow_the_lif_recurrence(recorded):
    net, spikes, out = recorded
    cfg = net.config
    w = np.asarray(net.params["fc1"]["kernel"], np.float64)
    m = np.zeros((4, 16))
    us, os = [], []
    for t in range(cfg.num_steps):  # Eq. 4 by hand, soft reset
        u = cfg.leak * m + spikes[t].astype(np.float64) @ w
        o = (u >= cfg.threshold).astype(np.float64)
        m = u - cfg.threshold * o
        us.append(u)
        os.append(o)
    assert set(out.membranes) == set(out.spikes) == {"fc1"}
    assert out.membranes["fc1"].shape == out.spikes["fc1"].shape == (6, 4, 16)
    np.testing.assert_allclose(out.membranes["fc1"], np.stack(us), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out.spikes["fc1"], np.stack(os))
    # the counts and logits are those of the simulation without recording
    plain = bj.simulate(net, spikes)
    np.testing.assert_array_equal(out.spikes["fc1"].sum(-1), plain.spike_counts["fc1"])
    np.testing.assert_allclose(out.logits, plain.logits, rtol=1e-6, atol=1e-6)
    assert type(plain) is bj.SimulateOutput and type(out) is bj.RecordedOutput
    _, _, stats = plain  # a plain simulate still unpacks as three
    assert stats is None


def test_recording_in_train_mode_keeps_the_batch_statistics():
    net = bj.init(1, arch="mlp", in_features=10, num_classes=3, hidden=(16,), T=4)  # BNTT
    spikes = (np.random.default_rng(1).random((4, 8, 10)) < 0.5).astype(np.float32)
    out = bj.simulate(net, spikes, train=True, record=True)
    plain = bj.simulate(net, spikes, train=True)
    np.testing.assert_allclose(out.logits, plain.logits, rtol=1e-6, atol=1e-6)
    for a, b in zip(
        np.asarray(out.batch_stats["norm_fc1"]["var"]),
        np.asarray(plain.batch_stats["norm_fc1"]["var"]),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    theta = net.config.threshold
    np.testing.assert_array_equal(out.spikes["fc1"], out.membranes["fc1"] >= theta)


def test_plots_draw_what_was_recorded(recorded):
    net, _, out = recorded
    ax = bj.plot.raster(out.spikes["fc1"], sample=1)
    dots = ax.collections[0].get_offsets()
    assert len(dots) == int(out.spikes["fc1"][:, 1].sum())  # one dot per spike of sample 1
    t, n = np.nonzero(np.asarray(out.spikes["fc1"][:, 1]))
    np.testing.assert_array_equal(np.asarray(dots), np.stack([t + 1, n], axis=1))
    ax = bj.plot.membrane_traces(out.membranes["fc1"], net.config.threshold, neurons=(0, 5))
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[1].get_ydata(), out.membranes["fc1"][:, 0, 5])
    assert lines[-1].get_ydata()[0] == net.config.threshold  # the threshold line
    # a marker on every spike of the traced neurons, at (t, u_t)
    u = np.asarray(out.membranes["fc1"][:, 0])
    markers = np.asarray(ax.collections[0].get_offsets())
    expected = [(t + 1, u[t, n]) for n in (0, 5) for t in range(len(u)) if u[t, n] > 1.0]
    assert len(expected) == int(out.spikes["fc1"][:, 0][:, [0, 5]].sum())  # the spikes
    np.testing.assert_allclose(markers, np.array(expected, np.float32).reshape(-1, 2), rtol=1e-6)
    ax = bj.plot.spikes_per_step(out.spike_counts)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), out.spike_counts["fc1"].mean(1))


def test_time_axes_tick_whole_steps_and_saved_figures_keep_their_labels(recorded, tmp_path):
    """A 6-step raster ticks at whole steps (no 2.5); a saved figure holds its axis labels and
    title whole inside the image (drawn, their extents lie within the figure's)."""
    net, _, out = recorded
    axes = [
        bj.plot.raster(out.spikes["fc1"]),
        bj.plot.membrane_traces(out.membranes["fc1"], net.config.threshold),
        bj.plot.spikes_per_step(out.spike_counts),
    ]
    for ax in axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        fig = ax.figure
        fig.savefig(tmp_path / "figure.png")
        renderer = fig.canvas.get_renderer()
        for text in (ax.xaxis.label, ax.yaxis.label, ax.title):
            box = text.get_window_extent(renderer)
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, text.get_text()
            assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, text.get_text()


def test_ttfs_first_spike_times_are_plotted():
    net = ttfs.init(0, arch="mlp", in_features=6, num_classes=3, hidden=(8,), T=8)
    pixels = np.random.default_rng(0).random((2, 6), dtype=np.float32)
    snn = ttfs.simulate(net, pixels)
    times = np.asarray(snn.spike_times["fc1"])
    ax = bj.plot.first_spike_times(times, sample=1)
    dots = np.asarray(ax.collections[0].get_offsets())
    fired = np.flatnonzero(times[1] >= 0)
    np.testing.assert_array_equal(dots, np.stack([times[1][fired], fired], axis=1))


def test_the_readme_block_runs_on_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves its figures where it runs
    namespace = run_block("bj.plot.raster")  # its own imports: nothing else
    for name in ("raster.png", "membranes.png", "spikes_per_step.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    rec = namespace["rec"]
    assert rec.membranes["fc1"].shape == (20, 4, 128)
    assert len(namespace["ax"].collections[0].get_offsets()) == int(rec.spikes["fc1"][:, 0].sum())


def test_a_recording_larger_than_the_free_memory_is_refused_before_it_starts(recorded, monkeypatch):
    """2·T·B·N·4 bytes recorded (T = 6, B = 4, N = 16: 3,072 bytes), twice that with the
    forward: refused where less is free, naming the sizes and the fix; run where it fits."""
    from bntt_jax import checks

    net, spikes, _ = recorded
    monkeypatch.setattr(checks, "available_bytes", lambda: 6000)
    with pytest.raises(
        ValueError,
        match=r"simulate\(record=True\): recording 6 steps of 4 samples \(16 spiking neurons: "
        r"3.1 kB of membranes and spikes.*needs about 6.1 kB, but 6.0 kB are free here\. "
        r"Record fewer samples",
    ):
        bj.simulate(net, spikes, record=True)
    monkeypatch.setattr(checks, "available_bytes", lambda: 6144)  # exactly enough
    assert bj.simulate(net, spikes, record=True).membranes["fc1"].shape == (6, 4, 16)
