"""TTFS speed: the VGG-16 surrogate's training step against the same network with plain ReLU,
and the spiking simulation's images per second.

    python -m benchmarks.ttfs                     # VGG-16, CIFAR shapes, train batch 64
    python -m benchmarks.ttfs --batch 512 --sim-batch 64 --json   # e.g. on a GPU

Both training steps are the same VGG-16 (13 3×3 convs with biases, batch norm with γ and β,
2×2 max pooling, FC 512-512-10), the same Adam with L2 on the kernels, the same batch; the
TTFS step (``bntt_jax.ttfs.train_step``) replaces each ReLU by the temporal kernel's encoder
and decoder and adds SR, TR and TB (Eq. 9). Each is jitted, warmed up, and timed as the median
of ``--steps`` steps with ``block_until_ready``, the two alternating so that both see the same
machine state. The spiking network (``bntt_jax.ttfs.simulate``: T + 1 integration steps per
layer, a conv on each step's spikes) is timed the same way.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from typing import Any

import numpy as np


def _relu_vgg16(config: Any) -> Any:
    import flax.linen as nn  # JAX: after the target and XLA flags are set

    from bntt_jax.ttfs.models import KERNEL_INIT

    class ReLUVGG16(nn.Module):
        """VGG-16 exactly as the TTFS surrogate's, with ReLU where the kernel is."""

        @nn.compact
        def __call__(self, x, train: bool):
            for spec in config.layers:
                if spec.kind == "dense" and x.ndim > 2:
                    x = x.reshape(x.shape[0], -1)
                if spec.kind == "conv":
                    x = nn.Conv(spec.features, (3, 3), padding=1, kernel_init=KERNEL_INIT)(x)
                else:
                    x = nn.Dense(spec.features, kernel_init=KERNEL_INIT)(x)
                x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
                x = nn.relu(x)
                if spec.pool:
                    x = nn.max_pool(x, (2, 2), strides=(2, 2))
            return nn.Dense(config.num_classes, kernel_init=KERNEL_INIT)(x.reshape(len(x), -1))

    return ReLUVGG16()


def _median_seconds(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="training batch")
    parser.add_argument("--sim-batch", type=int, default=16, help="spiking-simulation batch")
    parser.add_argument("--T", type=int, default=32, help="time window per layer")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=1.0, help="scale VGG-16's widths")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args(argv)

    import jax  # JAX: after the target and XLA flags are set
    import jax.numpy as jnp

    from bntt_jax import ttfs
    from bntt_jax.ttfs import train as tt

    config = _vgg16_config(args.T, args.img_size, args.width)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((args.batch, *config.input_shape), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, args.batch))

    # --- the TTFS surrogate step (Eq. 9, SR on: epoch 0 of e_tar 50)
    state = tt.TrainState.create(ttfs.init(0, config), tt.make_optimizer())
    ttfs_step = jax.jit(functools.partial(tt.train_step, target_epoch=50))
    key = jax.random.key(0)

    def run_ttfs():
        nonlocal state
        state, m = ttfs_step(state, x, y, key, 0)
        jax.block_until_ready(m["loss"])

    ttfs_first = _median_seconds(run_ttfs, 1)  # the first call compiles
    run_relu, relu_first = _relu_vgg16_step(config, x, y)  # the same VGG-16 with ReLU
    ttfs_times, relu_times = [], []
    for _ in range(args.steps):  # alternate, one step each
        ttfs_times.append(_median_seconds(run_ttfs, 1))
        relu_times.append(_median_seconds(run_relu, 1))
    ttfs_s, relu_s = statistics.median(ttfs_times), statistics.median(relu_times)

    # --- the spiking network
    xs = jnp.asarray(rng.random((args.sim_batch, *config.input_shape), dtype=np.float32))
    net = state.net

    def run_snn():
        jax.block_until_ready(ttfs.simulate(net, xs).logits)

    sim_first = _median_seconds(run_snn, 1)
    sim_s = _median_seconds(run_snn, max(1, args.steps // 2))
    device = str(jax.devices()[0].device_kind)
    firsts = {"ttfs": ttfs_first, "relu": relu_first, "sim": sim_first}
    result = _result(args, config, device, ttfs_s, relu_s, sim_s, firsts)
    print(json.dumps(result) if args.json else _summary(result))
    return 0


def _vgg16_config(time_window: int, img_size: int, width: float) -> Any:
    """The TTFS paper's VGG-16 with every width scaled by ``width``."""
    from bntt_jax import ttfs  # JAX-free config; imported with the rest of the library
    from bntt_jax.ttfs.config import VGG16_CHANNELS, VGG16_HIDDEN

    def scaled(widths):
        return tuple(max(1, round(w * width)) for w in widths)

    channels, hidden = scaled(VGG16_CHANNELS), scaled(VGG16_HIDDEN)
    return ttfs.TTFSConfig(
        arch="vgg16", time_window=time_window, img_size=img_size, channels=channels, hidden=hidden
    )


def _relu_vgg16_step(config: Any, x: Any, y: Any) -> tuple[Any, float]:
    """A training step of the same VGG-16 with ReLU and the same optimiser, as a function that
    runs one step, and its first call's seconds (the compilation)."""
    import jax  # JAX: after the target and XLA flags are set
    import optax

    from bntt_jax.ttfs import train as tt

    model = _relu_vgg16(config)
    variables = model.init(jax.random.key(0), x[:1], train=False)
    tx = tt.make_optimizer()
    carry = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    @jax.jit
    def relu_step(carry, x, y):
        params, stats, opt = carry

        def loss_fn(p):
            logits, upd = model.apply(
                {"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, upd["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), stats, opt), loss

    def run_relu():
        nonlocal carry
        carry, loss = relu_step(carry, x, y)
        jax.block_until_ready(loss)

    return run_relu, _median_seconds(run_relu, 1)


def _result(
    args: argparse.Namespace,
    config: Any,
    device: str,
    ttfs_s: float,
    relu_s: float,
    sim_s: float,
    firsts: dict[str, float],
) -> dict[str, Any]:
    """The measurement as one record (the ``--json`` line)."""
    return {
        "device": device,
        "arch": "vgg16",
        "width": args.width,
        "img_size": args.img_size,
        "T": args.T,
        "batch": args.batch,
        "ttfs_step_s": ttfs_s,
        "relu_step_s": relu_s,
        "ratio": ttfs_s / relu_s,
        "ttfs_first_call_s": firsts["ttfs"],
        "relu_first_call_s": firsts["relu"],
        "sim_batch": args.sim_batch,
        "sim_s": sim_s,
        "sim_images_per_s": args.sim_batch / sim_s,
        "sim_first_call_s": firsts["sim"],
        "latency_steps": config.latency,
    }


def _summary(r: dict[str, Any]) -> str:
    return (
        f"VGG-16 (width ×{r['width']}, {r['img_size']}×{r['img_size']}, T={r['T']}) on "
        f"{r['device']}, batch {r['batch']}:\n"
        f"  TTFS surrogate training step {r['ttfs_step_s']:.3f} s, ReLU VGG-16 step "
        f"{r['relu_step_s']:.3f} s: ratio {r['ratio']:.2f}\n"
        f"  spiking network ({r['latency_steps']} steps): {r['sim_images_per_s']:.2f} images/s "
        f"(batch {r['sim_batch']}, {r['sim_s']:.2f} s)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
