"""The benchmarked workloads: a network's config by name, its dense forward FLOPs, and random
inputs of its shape (shared by ``benchmarks.step``, ``benchmarks.sparsity`` and
``benchmarks.profile``)."""

from __future__ import annotations

import numpy as np

import bntt_jax as bj


def network_config(arch: str, num_steps: int, img_size: int):
    if arch == "mlp":  # Sequential MNIST: FC(1,256)-FC(256,256)-FC(256,10), one pixel per step
        return bj.NetworkConfig(arch="mlp", num_steps=num_steps, in_features=1, hidden=(256, 256))
    return bj.NetworkConfig(arch=arch, num_steps=num_steps, img_size=img_size)


def forward_gflop_per_image_step(cfg) -> float:
    """Dense forward FLOPs (2 per multiply-add) of one image at one step: convs, fcs, readout.

    VGG9 on 32×32: 0.389 GFLOP.
    """
    flops = 0.0
    channels = cfg.in_channels if cfg.arch != "mlp" else None
    fan_in = cfg.in_features if cfg.arch == "mlp" else None
    for spec in cfg.layers:
        if spec.kind == "conv":
            flops += 2 * 9 * channels * spec.features * spec.size**2
            channels = spec.features
            side = {"avg2": spec.size // 2, "global": 1}.get(spec.pool, spec.size)
            fan_in = channels * side * side
        else:
            flops += 2 * fan_in * spec.features
            fan_in = spec.features
    return (flops + 2 * fan_in * cfg.num_classes) / 1e9


def inputs(cfg, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if cfg.arch == "mlp":
        x = rng.random((batch, cfg.num_steps), dtype=np.float32)  # pixel intensities
    else:
        x = rng.normal(0, 1, (batch, cfg.img_size, cfg.img_size, cfg.in_channels)).astype(
            np.float32
        )
    return x, (np.arange(batch) % cfg.num_classes).astype(np.int32)
