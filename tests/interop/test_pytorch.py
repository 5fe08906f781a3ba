"""from_torch / to_torch, and a VGG9 built from known arrays against NumPy in the authors'
own layout (NCHW activations, OIHW kernels, (C, H, W)-flattened fc1)."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bntt_jax as bj

VGG9_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256)]


def authors_vgg9_state_dict(num_steps=3, img_size=16, num_classes=10, in_channels=3, seed=0):
    """A random state_dict with the authors' keys and shapes (their model.py naming)."""
    rng = np.random.default_rng(seed)
    sd = {}
    convs = [(in_channels, 64)] + VGG9_CONVS[1:]
    bn_lists = [(f"bntt{i + 1}", c_out) for i, (_, c_out) in enumerate(convs)] + [("bntt_fc", 1024)]
    for i, (c_in, c_out) in enumerate(convs):
        sd[f"conv{i + 1}.weight"] = rng.normal(0, np.sqrt(2.0 / (9 * c_in)), (c_out, c_in, 3, 3))
    fc_in = (img_size // 8) ** 2 * 256
    sd["fc1.weight"] = rng.normal(0, np.sqrt(2.0 / fc_in), (1024, fc_in))
    sd["fc2.weight"] = rng.normal(0, np.sqrt(1.0 / 1024), (num_classes, 1024))
    for name, c in bn_lists:
        for t in range(num_steps):
            sd[f"{name}.{t}.weight"] = rng.uniform(0.5, 1.5, c)
            sd[f"{name}.{t}.running_mean"] = rng.normal(0, 0.2, c)
            sd[f"{name}.{t}.running_var"] = rng.uniform(0.5, 2.0, c)
            sd[f"{name}.{t}.num_batches_tracked"] = np.array(7, np.int64)
    return {k: (v.astype(np.float32) if v.dtype != np.int64 else v) for k, v in sd.items()}


def numpy_conv3x3(x, w):
    """PyTorch Conv2d(k=3, stride=1, padding=1, bias=False): x [B, C, H, W], w [O, C, 3, 3]."""
    _, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = 0.0
    for i in range(3):
        for j in range(3):
            out = out + np.einsum("bchw,oc->bohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return out


def numpy_bn(z, weight, mean, var, train, eps=1e-4):
    """BatchNorm2d/1d without bias: batch statistics in training, running ones otherwise."""
    axes = (0, 2, 3) if z.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if z.ndim == 4 else (1, -1)
    if train:
        mean, var = z.mean(axis=axes), z.var(axis=axes)
    return weight.reshape(shape) * (z - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)


def numpy_vgg9(sd, spikes_nchw, leak, train):
    """The authors' SNN_VGG9_BNTT.forward in NumPy (float64), time-major, NCHW."""
    num_t, b = spikes_nchw.shape[:2]
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    pools = {2, 4, 7}
    mem = {}
    counts = {f"conv{i}": [] for i in range(1, 8)} | {"fc1": []}
    acc = 0.0
    for t in range(num_t):
        x = spikes_nchw[t]
        for i in range(1, 8):
            z = numpy_bn(
                numpy_conv3x3(x, sd[f"conv{i}.weight"]),
                sd[f"bntt{i}.{t}.weight"],
                sd[f"bntt{i}.{t}.running_mean"],
                sd[f"bntt{i}.{t}.running_var"],
                train,
            )
            u = leak * mem.get(i, 0.0) + z
            o = (u / 1.0 - 1.0 > 0).astype(np.float64)
            mem[i] = u - 1.0 * o
            counts[f"conv{i}"].append(o.reshape(b, -1).sum(-1))
            if i in pools:
                bb, c, h, w = o.shape
                o = o.reshape(bb, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
            x = o
        x = x.reshape(b, -1)  # PyTorch flattens (C, H, W)
        z = numpy_bn(
            x @ sd["fc1.weight"].T,
            sd[f"bntt_fc.{t}.weight"],
            sd[f"bntt_fc.{t}.running_mean"],
            sd[f"bntt_fc.{t}.running_var"],
            train,
        )
        u = leak * mem.get("fc", 0.0) + z
        o = (u - 1.0 > 0).astype(np.float64)
        mem["fc"] = u - o
        counts["fc1"].append(o.sum(-1))
        acc = acc + o @ sd["fc2.weight"].T
    return acc / num_t, {k: np.stack(v) for k, v in counts.items()}


@pytest.mark.parametrize("train", [False, True])
def test_vgg9_from_known_arrays_matches_numpy(train):
    sd = authors_vgg9_state_dict()
    net = bj.from_torch(sd, arch="vgg9", leak=0.95)
    assert net.config.img_size == 16 and net.config.num_steps == 3 and net.config.in_channels == 3
    rng = np.random.default_rng(1)
    image = rng.normal(0, 1.2, (2, 16, 16, 3))
    spikes = np.asarray(bj.poisson_encode(jax.random.key(0), jnp.asarray(image), 3), np.float64)
    logits_ref, counts_ref = numpy_vgg9(sd, spikes.transpose(0, 1, 4, 2, 3), 0.95, train)
    with jax.enable_x64(True):
        out = bj.simulate(net, jnp.asarray(spikes), 3, train=train)
        logits = np.asarray(out.logits)
        counts = {k: np.asarray(v) for k, v in out.spike_counts.items()}
    np.testing.assert_allclose(logits, logits_ref, rtol=1e-9, atol=1e-9)
    for name, ref in counts_ref.items():
        np.testing.assert_array_equal(counts[name], ref, err_msg=name)
        assert ref.sum() > 0, name  # every layer fires in this case


def test_round_trip_torch_to_jax_to_torch():
    sd = authors_vgg9_state_dict(num_steps=4)
    back = bj.to_torch(bj.from_torch(sd, arch="vgg9"))
    assert set(back) == set(sd)
    for key, value in sd.items():
        if key.endswith("num_batches_tracked"):
            assert back[key].dtype == np.int64  # written as 0: unused with momentum 0.1
            continue
        np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.parametrize("arch,img_size", [("vgg9", 32), ("vgg11", 32), ("vgg11", 64)])
def test_round_trip_jax_to_torch_to_jax(arch, img_size):
    net = bj.init(jax.random.key(0), arch=arch, num_steps=2, num_classes=7, img_size=img_size)
    sd = bj.to_torch(net)
    assert sd["conv1.weight"].shape == (64, 3, 3, 3) and sd["fc2.weight"].shape[0] == 7
    assert "bntt_fc.1.running_var" in sd and "bntt_fc.2.weight" not in sd
    back = bj.from_torch(sd, arch=arch, img_size=img_size)
    assert back.config == net.config
    jax.tree.map(np.testing.assert_array_equal, back.params, net.params)
    jax.tree.map(np.testing.assert_array_equal, back.batch_stats, net.batch_stats)


def test_checkpoint_dict_and_dataparallel_prefix():
    sd = authors_vgg9_state_dict(num_steps=2, img_size=8)
    wrapped = {
        "global_step": 3,
        "accuracy": 50.0,
        "state_dict": {f"module.{k}": v for k, v in sd.items()},
    }
    a, b = bj.from_torch(wrapped, arch="vgg9"), bj.from_torch(sd, arch="vgg9")
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)


def test_conversion_errors():
    sd = authors_vgg9_state_dict(num_steps=2, img_size=8)
    with pytest.raises(ValueError, match="arch must be one of"):
        bj.from_torch(sd, arch="resnet")
    missing = {k: v for k, v in sd.items() if k != "bntt3.1.running_var"}
    with pytest.raises(KeyError, match="bntt3.1.running_var"):
        bj.from_torch(missing, arch="vgg9")
    wrong = dict(sd, **{"conv2.weight": np.zeros((64, 32, 3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"'conv2.weight' has shape \(64, 32, 3, 3\)"):
        bj.from_torch(wrong, arch="vgg9")
    extra = dict(sd, **{"conv1.bias": np.zeros(64, np.float32)})
    with pytest.raises(KeyError, match="unexpected keys.*conv1.bias"):
        bj.from_torch(extra, arch="vgg9")
    gap = {k: v for k, v in sd.items() if not k.startswith("bntt1.0.")}
    with pytest.raises(KeyError, match="found steps"):
        bj.from_torch(gap, arch="vgg9")
    with pytest.raises(KeyError, match="no 'fc1.weight'"):
        bj.from_torch({k: v for k, v in sd.items() if k != "fc1.weight"}, arch="vgg9")
    with pytest.raises(TypeError, match="state_dict mapping"):
        bj.from_torch([1, 2], arch="vgg9")
    with pytest.raises(ValueError, match="BNTT VGG9/VGG11 only"):
        bj.to_torch(bj.init(jax.random.key(0), arch="mlp", num_steps=2))


def test_path_without_torch_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # make `import torch` fail
    with pytest.raises(ImportError, match="needs PyTorch"):
        bj.from_torch(tmp_path / "model.pth.tar", arch="vgg9")


def test_pth_tar_file_with_torch(tmp_path):
    torch = pytest.importorskip("torch")  # torch is a benchmark extra, not a dependency
    sd = authors_vgg9_state_dict(num_steps=2, img_size=8)
    path = tmp_path / "cifar10vgg9_bestmodel.pth.tar"
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    torch.save({"global_step": 1, "state_dict": state, "accuracy": 10.0}, path)
    a, b = bj.from_torch(path, arch="vgg9"), bj.from_torch(sd, arch="vgg9")
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)


def test_damaged_checkpoints_are_refused_by_name():
    sd = authors_vgg9_state_dict(num_steps=2, img_size=8)
    nan = dict(
        sd,
        **{"conv5.weight": np.where(np.arange(9).reshape(3, 3) == 4, np.nan, sd["conv5.weight"])},
    )
    with pytest.raises(ValueError, match=r"'conv5.weight' holds 32768 NaN or Inf values"):
        bj.from_torch(nan, arch="vgg9")
    var = sd["bntt2.1.running_var"].copy()
    var[7] = -0.5
    with pytest.raises(ValueError, match=r"'bntt2.1.running_var' has negative running variances"):
        bj.from_torch(dict(sd, **{"bntt2.1.running_var": var}), arch="vgg9")
