"""One checksummed file per trained network: save and load give back the same object, and any
change to the file is refused."""

from __future__ import annotations

import io
import json
import zipfile

import jax
import numpy as np
import pytest

import bntt_jax as bj
from bntt_jax import ttfs
from bntt_jax.baselines import ann
from tests.helpers.pages import run_block


def _networks():
    bntt = bj.init(0, arch="mlp", in_features=6, num_classes=3, hidden=(8, 5), T=4)
    stats = jax.tree.map(lambda x: x + 0.25, bntt.batch_stats)  # not the initial values
    return {
        "bntt": bntt.replace(batch_stats=stats),
        "bntt-none": bj.init(
            1, arch="mlp", in_features=6, num_classes=3, hidden=(8,), T=3, norm="none"
        ),
        "ttfs": ttfs.init(0, arch="mlp", in_features=6, num_classes=3, hidden=(8,), T=8),
        "ann": ann.init(
            0,
            bj.NetworkConfig(
                arch="mlp", in_features=6, num_classes=3, hidden=(8,), num_steps=1, norm="bn"
            ),
        ),
    }


@pytest.mark.parametrize("name", ["bntt", "bntt-none", "ttfs", "ann"])
def test_save_then_load_gives_the_same_network(name, tmp_path):
    net = _networks()[name]
    path = bj.save(tmp_path / "net", net)  # any file name: no suffix is added
    assert path == tmp_path / "net" and path.is_file()
    back = bj.load(path)
    assert type(back) is type(net) and back.config == net.config
    for collection in ("params", "batch_stats"):
        ours, theirs = getattr(back, collection), getattr(net, collection)
        assert jax.tree.structure(ours) == jax.tree.structure(theirs)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    if name.startswith("bntt"):  # and it computes the same
        spikes = np.random.default_rng(0).random((net.config.num_steps, 2, 6)) < 0.5
        np.testing.assert_array_equal(
            bj.simulate(back, spikes).logits, bj.simulate(net, spikes).logits
        )


def test_any_change_to_the_file_is_refused(tmp_path):
    net = _networks()["bntt"]
    path = bj.save(tmp_path / "net.npz", net)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    # one bit of one weight flipped, the archive otherwise valid
    name = next(n for n in members if n.startswith("params/fc1"))
    array = np.load(io.BytesIO(members[name]))
    array.view(np.uint32).flat[3] ^= 1
    buffer = io.BytesIO()
    np.save(buffer, array)
    flipped = tmp_path / "flipped.npz"
    with zipfile.ZipFile(flipped, "w") as z:
        for n, data in members.items():
            z.writestr(n, buffer.getvalue() if n == name else data)
    with pytest.raises(ValueError, match="flipped.npz is damaged: its checksum"):
        bj.load(flipped)
    # the config edited (T)
    meta = json.loads(np.load(path)["__meta__"].tobytes())
    meta["config"]["num_steps"] = 5
    edited = tmp_path / "edited.npz"
    arrays = dict(np.load(path).items())
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(edited, **arrays)
    with pytest.raises(ValueError, match="edited.npz is damaged"):
        bj.load(edited)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated.npz is damaged or no bntt-jax network"):
        bj.load(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="no bntt-jax network file"):
        bj.load(other)
    with pytest.raises(FileNotFoundError, match="no file at"):
        bj.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="expected NetworkParams, TTFSParams or ANNParams"):
        bj.save(tmp_path / "x.npz", net.params)


def test_the_readme_block_runs_on_its_own():
    namespace = run_block("bj.save(")  # its own imports: nothing else
    assert namespace["path"].is_file() and type(namespace["same"]) is bj.NetworkParams
