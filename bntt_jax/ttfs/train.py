"""Training the TTFS surrogate model: pure ``train_step`` / ``eval_step`` (Park & Yoon, Sec. 3–5,
Table 3).

The loss is Eq. 9, ``L_CE + λ_TR·REG_TR − λ_TB·P_TB``, on the surrogate's logits; τ and t_d of
every kernel are trained with the weights (Eq. 6), stochastic relaxation (Sec. 4) draws its
per-layer switches from the step's key and the epoch. The step and optimiser state are those
of the BNTT engine (:class:`bntt_jax.train.TrainState`), so the runner, checkpoints and data
parallelism carry over unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from bntt_jax import train as bntt_train
from bntt_jax.train import (
    TrainState,
    batch_mask,
    finite_flags,
    flag_names,
    masked_sums,
    step_key,
)
from bntt_jax.ttfs.functional import TTFSParams, forward
from bntt_jax.ttfs.kernel import kernel_errors, representation_range
from bntt_jax.ttfs.losses import kernel_regularization, total_loss
from bntt_jax.ttfs.models import kernel_parameters
from bntt_jax.ttfs.relaxation import relaxed_layers

__all__ = ["TrainState", "eval_step", "finite_flag_names", "make_optimizer", "train_step"]


def weight_kernels(params: Any) -> Any:
    """The decay mask of Table 3's L2 weight regularisation: conv and dense kernels only
    (not biases, γ, β, τ or t_d)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: str(getattr(path[-1], "key", "")) == "kernel", params
    )


def make_optimizer(
    lr: float = 1e-3, weight_decay: float = 1e-4, **kwargs: Any
) -> optax.GradientTransformation:
    """Table 3: Adam, lr 1e-3, constant, with L2 weight regularisation on the conv and dense
    kernels (coupled, coefficient ``weight_decay``: the authors' code's λ = 1e-4)."""
    kwargs.setdefault("schedule", "constant")
    return bntt_train.make_optimizer(
        "adam", lr=lr, weight_decay=weight_decay, decay_mask=weight_kernels, **kwargs
    )


def _order(net: TTFSParams) -> list[str]:
    return [*net.config.kernel_names, "out"]


def finite_flag_names(net: TTFSParams) -> list[str]:
    """What each entry of :func:`train_step`'s ``finite`` metric checks, in order."""
    return flag_names(_order(net), net.batch_stats)


def kernel_regularization_of(params: Any, config: Any) -> jax.Array:
    """REG_TR (Sec. 4) over every kernel of a params tree, against the config's τ₀, t_d,0."""
    kernels = kernel_parameters(params, config)
    return kernel_regularization(
        [tau for tau, _ in kernels.values()],
        [t_d for _, t_d in kernels.values()],
        config.tau0,
        config.t_d0,
    )


def train_step(
    state: TrainState,
    images: jax.Array,
    labels: jax.Array,
    seed_key: jax.Array,
    epoch: jax.Array | int,
    *,
    target_epoch: int | None = 50,
    lambda_tr: float = 1e-5,
    lambda_tb: float = 1e-5,
    kernel_train_start: int = 0,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One training step of the surrogate on a batch (Eq. 9).

    ``epoch`` (0-based) feeds SR's ``p(e)`` (``target_epoch`` e_tar; ``None``: no SR) and
    holds τ and t_d still before ``kernel_train_start``. Returns the new state and metrics:
    ``loss`` and its terms (``loss_ce``, ``reg_tr``, ``p_tb``), ``accuracy``, ``grad_norm``,
    ``relaxed`` (fraction of layers on SR's ReLU path), and per kernel ``tau/<k>``,
    ``t_d/<k>``, ``z_min/<k>``, ``z_max/<k>``, the mean kernel errors of Eq. 10–12
    ``error_max/<k>``, ``error_min/<k>``, ``error_precision/<k>``, the spikes per sample
    ``spikes/<k>``, and ``finite`` (see :func:`finite_flag_names`). Pure: jit it.
    """
    net, c = state.net, state.net.config
    bntt_train._check_batch("ttfs.train_step()", images, labels, net, rank=False)
    k_sr, k_drop = jax.random.split(step_key(seed_key, state.step))
    relaxed = relaxed_layers(k_sr, epoch, target_epoch, len(c.layers))

    def loss_fn(params):
        out = forward(net.replace(params=params), images, train=True, relaxed=relaxed, rng=k_drop)
        reg = kernel_regularization_of(params, c)
        p_tb = sum(out.p_tb.values())  # each TB batch norm's P_TB (Eq. 14)
        loss, terms = total_loss(out.logits, labels, reg, p_tb, lambda_tr, lambda_tb)
        return loss, (out, terms)

    (loss, (out, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
    if kernel_train_start:
        frozen = jnp.asarray(epoch) < kernel_train_start
        grads = _freeze_kernels(grads, c, frozen)
    updates, opt_state = state.tx.update(grads, state.opt_state, net.params)
    params = optax.apply_updates(net.params, updates)
    new_net = net.replace(params=params, batch_stats=out.batch_stats)
    metrics = {
        "loss": loss,
        **terms,
        "accuracy": jnp.mean(jnp.argmax(out.logits, -1) == labels),
        "grad_norm": optax.tree.norm(grads),
        "relaxed": relaxed.mean(),
        "finite": finite_flags(_order(net), loss, grads, params, out.batch_stats),
    }
    metrics |= kernel_metrics(net, out)
    return state.replace(step=state.step + 1, net=new_net, opt_state=opt_state), metrics


def _freeze_kernels(grads: Any, config: Any, frozen: jax.Array) -> Any:
    grads = dict(grads)
    for name in config.kernel_names:
        if name == "input":
            grads[name] = jax.tree.map(lambda g: jnp.where(frozen, 0.0, g), grads[name])
        else:
            layer = dict(grads[name])
            layer["temporal"] = jax.tree.map(lambda g: jnp.where(frozen, 0.0, g), layer["temporal"])
            grads[name] = layer
    return grads


def kernel_metrics(net: TTFSParams, out: Any) -> dict[str, jax.Array]:
    """Per kernel: τ, t_d, ẑ_m, ẑ_M, the mean kernel errors (Eq. 10–12) and spikes per sample."""
    c = net.config
    metrics = {}
    for name, (tau, t_d) in kernel_parameters(net.params, c).items():
        z = out.z[name]
        z_min, z_max = representation_range(tau, t_d, c.time_window)
        errors = kernel_errors(z, tau, t_d, c.time_window, c.theta0, c.rounding)
        metrics |= {f"tau/{name}": tau, f"t_d/{name}": t_d}
        metrics |= {f"z_min/{name}": z_min, f"z_max/{name}": z_max}
        metrics |= {f"error_{kind}/{name}": jnp.mean(v) for kind, v in errors.items()}
        fired = (out.t[name] <= c.time_window).reshape(z.shape[0], -1)
        metrics[f"spikes/{name}"] = fired.sum(-1).mean()
    return metrics


def eval_step(
    net: TTFSParams, images: jax.Array, labels: jax.Array, mask: jax.Array | None = None
) -> dict[str, jax.Array]:
    """Evaluate a batch with running statistics, no SR; sums over the batch, to add up:
    ``correct``, ``loss_sum`` (cross-entropy), ``count`` and ``spikes/<kernel>`` (spikes of
    each layer, which the spiking network reproduces exactly); ``mask`` ``[B]`` counts only
    its true rows (a padded last batch)."""
    bntt_train._check_batch("ttfs.eval_step()", images, labels, net, rank=False)
    keep = batch_mask("ttfs.eval_step()", mask, labels.shape[0])
    out = forward(net, images)
    metrics = masked_sums(out.logits, labels, keep)
    for name, t in out.t.items():
        rows = keep.reshape((-1,) + (1,) * (t.ndim - 1))
        metrics[f"spikes/{name}"] = jnp.sum((t <= net.config.time_window) & rows)
    return metrics
