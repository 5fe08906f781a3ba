"""Run by tests/snn/test_parallel.py in a subprocess with 2 forced CPU devices.

Prints JSON comparing one training step (loss, gradients, running statistics, updated
parameters) on one device against the same step data-parallel over two devices.
"""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np

import bntt_jax as bj
from bntt_jax import parallel
from bntt_jax import train as tr


def main():
    assert len(jax.devices()) == 2, jax.devices()
    cfg = bj.NetworkConfig(arch="vgg9", img_size=8, in_channels=3, num_steps=3, num_classes=4)
    net = bj.init(jax.random.key(0), cfg)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.2, (8, 8, 8, 3)).astype(np.float32)
    y = (np.arange(8) % 4).astype(np.int32)
    tx = tr.make_optimizer("sgd", lr=0.1, epochs=1, steps_per_epoch=10)
    step = jax.jit(tr.train_step)
    seed = jax.random.key(1)

    one = jax.devices()[:1]
    single, m1 = step(tr.TrainState.create(net, tx), *jax.device_put((x, y), one[0]), seed)

    mesh = parallel.data_mesh()
    state2 = parallel.replicate(mesh, tr.TrainState.create(net, tx))
    xs, ys = parallel.shard_batch(mesh, x, y)
    # compiled once, then both run and read (its HLO, below)
    compiled = step.lower(state2, xs, ys, seed).compile()
    double, m2 = compiled(state2, xs, ys, seed)

    def maxrel(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-12))

    def grads(net, x, y):
        spikes = bj.poisson_encode(jax.random.key(2), x, cfg.num_steps)

        def loss(params):
            out = bj.simulate(net.replace(params=params), spikes, cfg.num_steps, train=True)
            return tr.cross_entropy(out.logits, y)

        return jax.jit(jax.grad(loss))(net.params)

    g1 = grads(net, *jax.device_put((x, y), one[0]))
    g2 = grads(parallel.replicate(mesh, net), xs, ys)

    result = {
        "grads_maxrel": max(jax.tree.leaves(jax.tree.map(lambda a, b: maxrel(a, b), g2, g1))),
        "input_sharded": len(xs.sharding.device_set) == 2,
        "loss": [float(m1["loss"]), float(m2["loss"])],
        "spikes_equal": all(float(m1[k]) == float(m2[k]) for k in m1 if k.startswith("spikes/")),
        "grad_norm": [float(m1["grad_norm"]), float(m2["grad_norm"])],
        "params_maxrel": max(
            jax.tree.leaves(jax.tree.map(maxrel, double.net.params, single.net.params))
        ),
        "stats_maxrel": max(
            jax.tree.leaves(jax.tree.map(maxrel, double.net.batch_stats, single.net.batch_stats))
        ),
        "stats_moved": not np.allclose(single.net.batch_stats["norm_fc1"]["var"], 1.0),
    }
    # XLA partitions the step over the batch: no all-gather (which the compiled CPU kernels
    # or a time-major fold of a sharded batch would force), and every convolution runs on
    # this device's T x B/2 images only.
    hlo = compiled.as_text()
    result["all_gathers"] = len(re.findall(r"all-gather(?:-start)?\(", hlo))
    result["custom_calls"] = len(re.findall(r"custom-call\(", hlo))
    result["conv_batches"] = sorted(set(re.findall(r"convolution[.\d]* = f32\[(\d+),", hlo)))
    result |= ttfs_step(mesh, one, maxrel)
    try:
        parallel.shard_batch(mesh, x[:7])
    except ValueError as err:
        result["odd_batch_error"] = str(err)
    jnp.zeros(1).block_until_ready()
    print(json.dumps(result))


def ttfs_step(mesh, one, maxrel):
    """The TTFS surrogate's training step (Eq. 9, SR on) on one device and on two."""
    from bntt_jax import ttfs
    from bntt_jax.ttfs import train as tt

    def maxabs(a, b):
        return float(np.abs(np.asarray(a) - np.asarray(b)).max())

    cfg = ttfs.TTFSConfig(arch="mlp", in_features=64, hidden=(32, 32), num_classes=4)
    net = ttfs.init(0, cfg)
    rng = np.random.default_rng(0)
    x = rng.random((8, 64), dtype=np.float32)
    y = (np.arange(8) % 4).astype(np.int32)
    step = jax.jit(lambda s, x, y, k: tt.train_step(s, x, y, k, 3, target_epoch=10))
    # SGD, so that the parameters differ as the gradients do (Adam's first step is lr·sign(g),
    # which turns a rounding-level gradient of either sign into a full step either way)
    state = tt.TrainState.create(net, tr.make_optimizer("sgd", lr=0.1, schedule="constant"))
    single, m1 = step(state, *jax.device_put((x, y), one[0]), jax.random.key(1))
    xs, ys = parallel.shard_batch(mesh, x, y)
    double, m2 = step(parallel.replicate(mesh, state), xs, ys, jax.random.key(1))
    return {
        "ttfs_loss": [float(m1["loss"]), float(m2["loss"])],
        "ttfs_same_relaxation": float(m1["relaxed"]) == float(m2["relaxed"]),
        "ttfs_spikes_equal": all(
            float(m1[k]) == float(m2[k]) for k in m1 if k.startswith("spikes/")
        ),
        # absolute: the conv biases before batch norm have a zero gradient up to rounding
        # (the norm removes the mean), so they hold only ~1e-8 noise, relative to nothing
        "ttfs_params_maxabs": max(
            jax.tree.leaves(jax.tree.map(maxabs, double.net.params, single.net.params))
        ),
        "ttfs_grad_norm": [float(m1["grad_norm"]), float(m2["grad_norm"])],
        "ttfs_stats_maxrel": max(
            jax.tree.leaves(jax.tree.map(maxrel, double.net.batch_stats, single.net.batch_stats))
        ),
    }


if __name__ == "__main__":
    main()
