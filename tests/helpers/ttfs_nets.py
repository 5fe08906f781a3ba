"""Shared helpers of the TTFS tests: networks with trained-looking parameters."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bntt_jax import ttfs

NARROW_VGG16 = dict(arch="vgg16", channels=(4, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 8, 8), hidden=(16, 16))


def trained_looking(config: ttfs.TTFSConfig, images: np.ndarray, seed: int = 0) -> ttfs.TTFSParams:
    """Parameters in the dtype of ``images`` with γ, β, biases, τ and t_d spread as after
    training, and running statistics equal to the statistics of ``images`` at every layer
    (so every layer's pre-activations straddle the kernel's pruned, quantised and clipped
    regions)."""
    rng = np.random.default_rng(seed)
    dtype = images.dtype
    calib = dataclasses.replace(config, bn_momentum=0.0)  # running stats := batch stats
    net = ttfs.init(seed, calib)

    def spread(path, leaf):
        name = jax.tree_util.keystr(path)
        shape = np.shape(leaf)
        if name.endswith("['bn']['scale']"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("['bn']['bias']"):
            value = rng.uniform(-0.2, 0.6, shape)
        elif name.endswith("['bias']"):
            value = rng.normal(0.0, 0.1, shape)
        elif name.endswith("['tau']"):
            value = rng.uniform(6.0, 12.0, shape)
        elif name.endswith("['t_d']"):
            value = rng.uniform(-1.0, 1.5, shape)
        else:
            value = np.asarray(leaf)
        return jnp.asarray(value, dtype)

    params = jax.tree_util.tree_map_with_path(spread, net.params)
    stats = jax.tree.map(lambda a: a.astype(dtype), net.batch_stats)
    net = net.replace(params=params, batch_stats=stats)
    stats = jax.jit(lambda n, x: ttfs.forward(n, x, train=True).batch_stats)(net, images)
    return net.replace(batch_stats=stats, config=config)
