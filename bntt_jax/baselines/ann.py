"""The non-spiking ANN the BNTT papers compare against (Table 3: the VGG9 ANN, 91.5 % on
CIFAR-10; the network ANN-to-SNN conversion starts from).

It has the spiking network's topology (:class:`bntt_jax.NetworkConfig`: VGG9, VGG11 or an
MLP; 3×3 convs and linear layers without bias; 2×2 average pooling, global average pooling in
VGG11; a linear readout), with ReLU in place of the LIF neurons and, with ``norm="bn"``, a
standard batch norm (γ and β, PyTorch's ε 1e-5 and momentum 0.1; Flax's running variance,
from the biased batch variance) after each conv and hidden linear layer; ``norm="none"``
leaves it out. Weights are He-normal (``variance_scaling(2, "fan_in")``, the usual ReLU
initialisation). One forward pass is one inference: no time.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from bntt_jax.config import NetworkConfig
from bntt_jax.train import (
    TrainState,
    batch_mask,
    cross_entropy,
    finite_flags,
    flag_names,
    masked_sums,
)

#: The normalisations an ANN takes.
ANN_NORMS = ("bn", "none")
#: Batch-norm ε (PyTorch's default).
BN_EPS = 1e-5


@flax.struct.dataclass
class ANNParams:
    """Parameters of an ANN with the architecture they belong to (``config`` is static)."""

    params: dict[str, Any]
    batch_stats: dict[str, Any]
    config: NetworkConfig = flax.struct.field(pytree_node=False)

    def variables(self) -> dict[str, Any]:
        return {"params": self.params, "batch_stats": self.batch_stats}


class ANNNetwork(nn.Module):
    """The ANN of ``config``: ``logits = ANNNetwork(config).apply(variables, x, train)``."""

    config: NetworkConfig

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = self.config
        init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
        if not c.takes_images:
            x = x.reshape(x.shape[0], -1)
        for spec in c.layers:
            if spec.kind == "conv":
                x = nn.Conv(
                    spec.features,
                    (3, 3),
                    padding="SAME",
                    use_bias=False,
                    kernel_init=init,
                    name=spec.name,
                )(x)
            else:
                x = x.reshape(x.shape[0], -1)
                x = nn.Dense(spec.features, use_bias=False, kernel_init=init, name=spec.name)(x)
            if c.norm == "bn":
                x = nn.BatchNorm(
                    use_running_average=not train,
                    momentum=1.0 - c.momentum,
                    epsilon=BN_EPS,
                    name=f"norm_{spec.name}",
                )(x)
            x = nn.relu(x)
            if spec.pool == "avg2":
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
            elif spec.pool == "global":
                x = x.mean(axis=(1, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(c.num_classes, use_bias=False, kernel_init=init, name=c.readout_name)(x)


def check_config(config: NetworkConfig) -> None:
    if config.norm not in ANN_NORMS:
        raise ValueError(
            f"an ANN takes norm in {ANN_NORMS}, got {config.norm!r}: per-step BNTT and "
            "layer norm belong to the spiking network."
        )


def init(key: jax.Array | int, config: NetworkConfig) -> ANNParams:
    """Initialise the ANN of ``config`` (running mean 0, variance 1)."""
    check_config(config)
    key = jax.random.key(key) if isinstance(key, int) else key
    x = jnp.zeros((1, *config.input_shape), jnp.float32)
    variables = ANNNetwork(config).init(key, x, train=False)
    return ANNParams(dict(variables["params"]), dict(variables.get("batch_stats", {})), config)


def forward(net: ANNParams, x: jax.Array) -> jax.Array:
    """Logits ``[B, classes]`` with the running statistics (evaluation). An MLP takes inputs
    of any shape with ``in_features`` values (images are flattened)."""
    if not net.config.takes_images:
        x = x.reshape(x.shape[0], -1)
    chex.assert_shape(x, (None, *net.config.input_shape))
    return ANNNetwork(net.config).apply(net.variables(), x, train=False)


def _order(net: ANNParams) -> list[str]:
    return (
        [spec.name for spec in net.config.layers]
        + [net.config.readout_name]
        + [f"norm_{spec.name}" for spec in net.config.layers if net.config.norm == "bn"]
    )


def finite_flag_names(net: ANNParams) -> list[str]:
    """What each entry of :func:`train_step`'s ``finite`` metric checks, in order."""
    return flag_names(_order(net), net.batch_stats)


def train_step(
    state: TrainState, x: jax.Array, labels: jax.Array
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One step of cross-entropy on a batch with batch statistics; returns the new state and
    ``loss``, ``accuracy`` and ``finite`` (:func:`finite_flag_names`). Pure: jit it."""
    net = state.net

    def loss_fn(params):
        logits, updates = ANNNetwork(net.config).apply(
            {"params": params, "batch_stats": net.batch_stats},
            x,
            train=True,
            mutable=["batch_stats"],
        )
        return cross_entropy(logits, labels), (logits, updates.get("batch_stats", {}))

    (loss, (logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, net.params)
    params = optax.apply_updates(net.params, updates)
    metrics = {
        "loss": loss,
        "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
        "finite": finite_flags(_order(net), loss, grads, params, stats),
    }
    new_net = net.replace(params=params, batch_stats=stats)
    return state.replace(step=state.step + 1, net=new_net, opt_state=opt_state), metrics


def eval_step(
    net: ANNParams, x: jax.Array, labels: jax.Array, mask: jax.Array | None = None
) -> dict[str, jax.Array]:
    """Sums over a batch (to add up over batches): ``correct``, ``loss_sum``, ``count``;
    ``mask`` ``[B]`` counts only its true rows (a padded last batch, as
    :func:`bntt_jax.eval_step`'s)."""
    logits = forward(net, x)
    return masked_sums(logits, labels, batch_mask("ann.eval_step()", mask, labels.shape[0]))
