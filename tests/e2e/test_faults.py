"""The fault suite (besides the kill tests of test_crash_resume.py): damaged checkpoints, the
saved config as the truth, every check before any side effect, and training that diverges."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bntt_jax import train as tr
from experiments.bntt import method as bntt_method
from experiments.core import record, run_folder
from experiments.core.checkpoints import load_checkpoint
from experiments.core.config import RESUME_SAFE_KEYS, key_names
from experiments.run import main
from tests.helpers.runs import metrics_without_timing, sets

pytestmark = pytest.mark.e2e  # the end-to-end tier

ROOT = Path(__file__).parents[2]
TINY = sets("epochs=3", "max_train_batches=3", "num_steps=4", "eval_every=1", "analyses=none")


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256 and modification time, but the lock file
    (each command that takes the lock writes its own name there: it is no part of the run)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != run_folder.LOCK)
    return {
        str(p.relative_to(folder)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} "
        f"{p.stat().st_mtime_ns}"
        for p in files
    }


def _interrupt_at(monkeypatch, point: str) -> None:
    """Make the in-process runner stop at ``point`` as a Ctrl-C would."""
    real = record.fault_point

    def fault(name: str, epoch: int) -> None:
        real(name, epoch)
        if f"{name}@{epoch}" == point:
            raise KeyboardInterrupt

    monkeypatch.setattr(record, "fault_point", fault)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted tiny run, the reference of this module."""
    out = tmp_path_factory.mktemp("faults") / "finished"
    assert main(["digits_bntt", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def interrupted(tmp_path, monkeypatch):
    """A tiny run stopped (Ctrl-C) right after epoch 3 was committed: unfinished, with
    last/2, last/3 and their best checkpoints on disk."""
    out = tmp_path / "interrupted"
    with monkeypatch.context() as m:
        _interrupt_at(m, "committed@3")
        assert main(["digits_bntt", *TINY, "--out", str(out)]) == 130
    return out


def _checkpoint_file(run: Path, key: str) -> Path:
    """The largest file of a checkpoint (its array data)."""
    files = [p for p in (run / "checkpoints" / key).rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


# --------------------------------------------------------------- damaged checkpoints
def test_ctrl_c_says_how_to_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "c"
    _interrupt_at(monkeypatch, "last_saved@2")
    assert main(["digits_bntt", *TINY, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and f"--resume --out {out}" in err
    manifest = run_folder.read_manifest(out)[0]
    assert manifest["epoch"] == 1 and not manifest["complete"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_last_checkpoint_falls_back_one_epoch(interrupted, finished, damage, capsys):
    victim = _checkpoint_file(interrupted, "last/3")
    data = bytearray(victim.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    else:
        victim.unlink()
    with pytest.raises(run_folder.CheckpointDamagedError, match=str(victim)):
        load_checkpoint(interrupted / "checkpoints" / "last" / "3")  # asked for by name
    with pytest.warns(UserWarning, match=f"{victim}.*Loading last/2, the last intact"):
        load_checkpoint(interrupted / "checkpoints" / "last")
    assert main(["--resume", "--out", str(interrupted)]) == 0
    log = (interrupted / "log.txt").read_text()
    assert str(victim) in log and "falls back to epoch 2" in log
    set_aside = [p.name for p in (interrupted / "checkpoints/last").iterdir()]
    assert any(name.startswith("3.damaged-") for name in set_aside)
    # Epoch 3 was trained again from epoch 2: the run ends as the uninterrupted one.
    assert metrics_without_timing(interrupted) == metrics_without_timing(finished)
    ours = load_checkpoint(interrupted / "checkpoints/last")
    theirs = load_checkpoint(finished / "checkpoints/last")
    for x, y in zip(jax.tree.leaves(ours.params), jax.tree.leaves(theirs.params), strict=True):
        np.testing.assert_array_equal(x, y)


def test_both_last_checkpoints_damaged_is_a_clear_error(interrupted, capsys):
    for key in ("last/3", "last/2"):
        victim = _checkpoint_file(interrupted, key)
        victim.write_bytes(victim.read_bytes()[:-7])
    before = _snapshot(interrupted)
    assert main(["--resume", "--out", str(interrupted)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no intact checkpoint" in err.lower() and "last/3" in err and "last/2" in err
    assert _snapshot(interrupted) == before  # nothing moved or written


def test_damaged_best_checkpoint_is_set_aside_and_the_run_continues(interrupted, capsys):
    manifest = run_folder.read_manifest(interrupted)[0]
    key = manifest["best"]["checkpoint"]
    victim = _checkpoint_file(interrupted, key)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x10
    victim.write_bytes(bytes(data))
    assert main(["--resume", "--out", str(interrupted)]) == 0
    log = (interrupted / "log.txt").read_text()
    assert "best checkpoint" in log and str(victim) in log and "set aside" in log
    kind, epoch = key.split("/")
    set_aside = [p.name for p in (interrupted / "checkpoints" / kind).iterdir()]
    assert any(name.startswith(f"{epoch}.damaged-") for name in set_aside)


def test_a_flipped_byte_never_loads_silently(finished, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    best = run_folder.read_manifest(run)[0]["best"]["checkpoint"]
    victim = _checkpoint_file(run, best)
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0x80
    victim.write_bytes(bytes(data))
    with pytest.raises(run_folder.CheckpointDamagedError, match=f"{victim}.*damaged"):
        load_checkpoint(run / "checkpoints" / best)  # asked for by name: never replaced
    # the run's best: the last intact checkpoint instead, with a warning naming the file and
    # how to get the best back
    with pytest.warns(UserWarning, match=f"{victim}.*Loading last/3.*re-derive"):
        net = load_checkpoint(run)
    final = load_checkpoint(run / "checkpoints" / "last" / "3")
    for x, y in zip(jax.tree.leaves(net.params), jax.tree.leaves(final.params), strict=True):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------ a damaged manifest
def _flip_epoch(text: str) -> str:  # a one-bit flip of "epoch": 3 to 2 (valid JSON)
    return text.replace('"epoch": 3,', '"epoch": 2,', 1)


def _flip_hash(text: str) -> str:  # one hex digit of a committed checkpoint hash
    i = text.index('"last/3": {')
    i = text.index(': "', text.index('"', i + 12) + 1) + 3
    return text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1 :]


@pytest.mark.parametrize(
    "damage",
    [_flip_epoch, _flip_hash, lambda t: t[: len(t) // 2]],
    ids=["epoch-flipped", "hash-flipped", "truncated"],
)
def test_a_damaged_manifest_falls_back_one_commit(interrupted, finished, damage, capsys):
    file = interrupted / record.MANIFEST
    file.write_text(damage(file.read_text()))
    assert main(["--resume", "--out", str(interrupted)]) == 0
    log = (interrupted / "log.txt").read_text()
    assert f"{file} is damaged" in log and "falls back one commit" in log and "(epoch 2" in log
    # never a silent wrong history, never an intact checkpoint set aside
    manifest = run_folder.read_manifest(interrupted)[0]
    assert [h["epoch"] for h in manifest["history"]] == [1, 2, 3]
    assert not list(interrupted.rglob("*.damaged-*"))
    assert metrics_without_timing(interrupted) == metrics_without_timing(finished)


def test_both_manifests_damaged_or_a_damaged_config_is_named(interrupted, capsys):
    for name in (record.MANIFEST, record.PREVIOUS):
        (interrupted / name).write_text((interrupted / name).read_text()[:-40])
    before = _snapshot(interrupted)
    assert main(["--resume", "--out", str(interrupted)]) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "manifest.json" in err and "manifest.previous.json" in err
    assert _snapshot(interrupted) == before
    config = interrupted / run_folder.CONFIG
    config.write_text(config.read_text()[:-10])  # no longer JSON
    assert main(["--resume", "--out", str(interrupted)]) == 2
    assert f"{config} is damaged (not valid JSON" in capsys.readouterr().err


def test_an_edited_config_is_found_by_its_committed_hash(interrupted, capsys):
    config = interrupted / run_folder.CONFIG
    config.write_text(config.read_text().replace('"lr": 0.', '"lr": 1', 1))  # still JSON
    before = _snapshot(interrupted)
    assert main(["--resume", "--out", str(interrupted)]) == 2
    assert f"{config} is damaged: its SHA-256 differs" in capsys.readouterr().err
    assert _snapshot(interrupted) == before


def test_a_best_set_aside_for_good_says_how_to_restore_it(interrupted, capsys):
    manifest = run_folder.read_manifest(interrupted)[0]
    best = manifest["best"]
    victim = _checkpoint_file(interrupted, best["checkpoint"])
    victim.write_bytes(victim.read_bytes()[:-5])
    # no epoch is left to improve on it: the run ends with its best set aside
    assert main(["--resume", "--out", str(interrupted)]) == 0
    log = (interrupted / "log.txt").read_text()
    assert "re-derive it" in log and f"checkpoints/best/{best['epoch']}" in log
    assert run_folder.read_manifest(interrupted)[0]["best"]["checkpoint"] is None
    with pytest.warns(UserWarning, match="set aside as damaged.*Loading last/3.*re-derive"):
        load_checkpoint(interrupted)


# ------------------------------------------------------------ the saved config is truth
def test_resume_uses_the_runs_own_config(tmp_path, monkeypatch):
    """The README example: a run with --set epochs/lr, then --resume without them."""
    out = tmp_path / "d"
    with monkeypatch.context() as m:
        _interrupt_at(m, "committed@1")
        args = ["digits_bntt", *TINY, "--set", "lr=0.05", "--out", str(out)]
        assert main(args) == 130
    config_bytes = (out / "config.json").read_bytes()
    assert main(["digits_bntt", "--resume", "--out", str(out)]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]  # its 3 epochs, not the entry's 30
    assert history[1]["lr"] == pytest.approx(0.05)  # its lr, not the entry's 0.1
    assert (out / "config.json").read_bytes() == config_bytes


@pytest.mark.parametrize(
    "change", ["lr=0.05", "epochs=10", "seed=1", "num_steps=5", "hidden=32,32", "norm=bn"]
)
def test_a_resume_that_would_change_the_run_is_refused(interrupted, change, capsys):
    before = _snapshot(interrupted)
    assert main(["--resume", "--out", str(interrupted), "--set", change]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--set {change} would change the run" in err
    assert "start a new run: python -m experiments.run digits_bntt --set " in err
    assert f"--set {change} " in err and err.endswith("--out NEW_FOLDER")
    assert "--set analyses=none " in err  # as a user types it, which --set parses back
    assert _snapshot(interrupted) == before


def test_a_resume_may_repeat_the_runs_values_and_move_its_data(interrupted, tmp_path):
    assert RESUME_SAFE_KEYS == ("data_dir", "analyses", "progress_every_s")
    # The same values as the run's own, and another data_dir (digits ship with scikit-learn,
    # so the fingerprint check passes).
    args = [
        "--resume",
        "--out",
        str(interrupted),
        "--set",
        "epochs=3",
        "--set",
        f"data_dir={tmp_path}",
    ]
    assert main(args) == 0
    manifest = run_folder.read_manifest(interrupted)[0]
    assert manifest["legs"][-1]["data_dir"] == str(tmp_path)


def test_resume_of_another_experiment_or_no_run_is_refused(interrupted, tmp_path, capsys):
    assert main(["cifar10_bntt", "--resume", "--out", str(interrupted)]) == 2
    assert "holds a run of digits_bntt, not cifar10_bntt" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--resume", "--out", str(tmp_path / "empty")]) == 2
    assert "holds no run" in capsys.readouterr().err
    assert main(["--resume", "--out", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()


def test_a_finished_run_is_never_modified(finished, capsys):
    before = _snapshot(finished)
    assert main(["--resume", "--out", str(finished)]) == 2
    assert "finished run" in capsys.readouterr().err
    assert main(["digits_bntt", *TINY, "--out", str(finished)]) == 2
    assert _snapshot(finished) == before


def test_wall_time_is_the_total_of_the_legs(tmp_path, monkeypatch):
    out = tmp_path / "w"
    with monkeypatch.context() as m:
        _interrupt_at(m, "committed@2")
        assert main(["digits_bntt", *TINY, "--out", str(out)]) == 130
    first_leg = run_folder.read_manifest(out)[0]["elapsed_s"]
    assert main(["--resume", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["wall_time_s"] > first_leg > 0
    assert f"{metrics['wall_time_s']:.0f} s" in (out / "report.md").read_text()


# ------------------------------------------------------- every check before side effects
BAD = [
    (["--set", "norm=bntx"], "norm=bntx", "--set norm=bntt"),
    (["--set", "num_steps=0"], "num_steps=0", "integer >= 1"),
    (["--set", "leak=1.5"], "leak=1.5", "--set leak=0.95"),
    (["--set", "seed=-1"], "seed=-1", "between 0 and"),
    (["--set", "batch_size=1"], "batch_size=1", "at least 2 samples"),
    (["--set", "arch=vgg9"], "arch=vgg9", "--set arch=mlp"),
    (["--set", "encoder=sequential"], "encoder=sequential", "--set num_steps=64"),
    (["--set", "lr=nan"], "lr=nan", "finite"),
    (["--set", "lr=inf"], "lr=inf", "finite"),
    (["--set", "momentum=1"], "momentum=1.0", "[0, 1)"),
    (["--set", "weight_decay=-1"], "weight_decay=-1.0", "[0, ∞)"),
    (["--set", "batch_size=2000"], "batch_size=2000", "1437 training examples"),
    (["--set", "hidden=0"], "hidden=0", "--set hidden=256,256"),
    (["--set", "lr_schedule=cosine"], "lr_schedule=cosine", "step, constant"),
    (["--set", "epochs=two"], "epochs=two", "expected int"),
    (["--set", "epoch=3"], "epoch=3", "did you mean epochs"),
]


def test_bad_values_fail_in_one_line_before_jax_and_write_nothing(tmp_path):
    """Each bad command in a fresh interpreter: exit 2, one line naming the key, the value
    and the fix, JAX never imported, no folder created."""
    driver = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from experiments.run import main
        out = []
        for argv in json.loads(sys.argv[1]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(argv)
            out.append([code, err.getvalue(), "jax" in sys.modules])
        print(json.dumps(out))
        """
    )
    commands = [
        ["digits_bntt", *args, "--out", str(tmp_path / f"o{i}")]
        for i, (args, _, _) in enumerate(BAD)
    ]
    commands += [
        ["cifar10_bntt", "--set", f"data_dir={tmp_path}", "--out", str(tmp_path / "cifar")],
        ["digits_bntt", "--list"],
        ["digits_bntt", "--show", "--set", "epochs=7"],
    ]
    proc = subprocess.run(
        [sys.executable, "-c", driver, json.dumps(commands)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BNTT_JAX_HUGE_PAGES": "0"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (code, err, jax_imported), (args, names, fix) in zip(results, BAD, strict=False):
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: {names}: ") and fix in err, (err, fix)
        assert not jax_imported, args
    cifar_code, cifar_err, _ = results[len(BAD)]
    assert cifar_code == 2 and "cifar-10-python.tar.gz" in cifar_err
    assert all(not r[2] for r in results)  # nothing imported JAX, not --list nor --show
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no results/


def test_show_prints_the_resolved_config_and_help_lists_every_key(capsys):
    assert main(["digits_bntt", "--show", "--set", "epochs=7", "--set", "leak=none"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["experiment"]["epochs"] == 7 and shown["network"]["leak"] == 0.99
    assert shown["network"]["hidden"] == [256, 256] and shown["network"]["in_features"] == 64
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for heading in (
        "shared keys",
        "bntt: network",
        "ttfs: network",
        "ttfs: options",
        "ann: network",
        "ann: options",
        "analysis keys",
    ):
        assert f" {heading}" in text, heading
    for name in key_names():  # every key of every method, with its default
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(name + " "))
        assert "default" in line, line
    assert "only\ndata_dir, analyses, progress_every_s may change on resume" in text


def test_out_on_a_folder_of_other_files_is_refused_untouched(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.md").write_text("my notes")
    (folder / "curves.png").write_bytes(b"\x89PNG my plot")
    before = _snapshot(folder)
    assert main(["digits_bntt", *TINY, "--out", str(folder)]) == 2
    assert "not empty and holds no run" in capsys.readouterr().err
    assert _snapshot(folder) == before


def test_a_corrupt_archive_says_so(tmp_path, capsys):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    out = tmp_path / "run"
    assert main(["cifar10_bntt", "--set", f"data_dir={tmp_path}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is corrupt" in err and "fetch it again" in err and not out.exists()


# ------------------------------------------------------------------ training diverges
def _poison_gradient(monkeypatch, layer: str, from_call: int) -> None:
    """From the ``from_call``-th step on, the gradient of ``layer`` is NaN while the loss
    stays finite (a host callback in the backward pass flips the factor)."""
    calls = [0]

    def factor() -> np.ndarray:
        calls[0] += 1
        return np.float32(np.nan if calls[0] >= from_call else 1.0)

    @jax.custom_vjp
    def poison(w):
        return w

    def bwd(_, g):
        f = jax.pure_callback(factor, jax.ShapeDtypeStruct((), jnp.float32))
        return (g * f,)

    poison.defvjp(lambda w: (w, None), bwd)
    real = tr.simulate

    def simulate(net, spikes, T, *, train=False):
        params = {**net.params, layer: jax.tree.map(poison, net.params[layer])}
        return real(net.replace(params=params), spikes, T, train=train)

    monkeypatch.setattr(tr, "simulate", simulate)
    bntt_method._train_step.cache_clear()  # trace the poisoned step


def test_nan_gradient_behind_a_finite_loss_stops_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "nan"
    _poison_gradient(monkeypatch, "fc1", from_call=5)  # epoch 2, batch 2 (3 batches/epoch)
    try:
        assert main(["digits_bntt", *TINY, "--out", str(out)]) == 1
    finally:
        bntt_method._train_step.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the gradient of fc1 became NaN or Inf at epoch 2, batch 2 (step 5)" in err
    assert "The checkpoint of epoch 1" in err and "is intact (verified)" in err
    assert "training stopped: the gradient of fc1" in (out / "log.txt").read_text()
    manifest = run_folder.read_manifest(out)[0]
    assert manifest["epoch"] == 1 and sorted(manifest["checkpoints"]) == ["best/1", "last/1"]
    assert [h["epoch"] for h in json.loads((out / "metrics.json").read_text())["history"]] == [1]
    assert sorted(p.name for p in (out / "checkpoints/last").iterdir()) == ["1"]
    net = load_checkpoint(out / "checkpoints/last")  # the kept weights are finite
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(net.params))


def test_the_finite_flags_name_each_layer_in_network_order():
    import bntt_jax as bj

    cfg = bj.NetworkConfig(arch="mlp", in_features=6, hidden=(8, 8), num_steps=3, num_classes=3)
    net = bj.init(0, cfg)
    names = tr.finite_flag_names(net)
    assert names[:4] == [
        "the loss",
        "the gradient of fc1",
        "the gradient of norm_fc1",
        "the gradient of fc2",
    ]
    assert names[-1] == "the running statistics of norm_fc2"
    # A NaN running variance in norm_fc2 (train mode normalises with batch statistics, so the
    # loss stays finite) is caught and named.
    stats = jax.tree.map(lambda a: a, net.batch_stats)
    stats["norm_fc2"] = {**stats["norm_fc2"], "var": stats["norm_fc2"]["var"].at[0, 0].set(jnp.nan)}
    state = tr.TrainState.create(
        net.replace(batch_stats=stats), tr.make_optimizer("sgd", lr=0.1, schedule="constant")
    )
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    _, m = jax.jit(tr.train_step)(state, x, np.arange(4) % 3, jax.random.key(0))
    flags = np.asarray(m["finite"])
    assert np.isfinite(float(m["loss"]))
    assert [n for n, ok in zip(names, flags, strict=True) if not ok] == [
        "the running statistics of norm_fc2"
    ]
