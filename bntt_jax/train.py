"""Training: pure ``train_step`` / ``eval_step`` over :class:`NetworkParams`, and the optimisers.

The loss is the cross-entropy of Eq. 5 on the readout ``(1/T)·Σ_t W·o_t``, back-propagated
through time with the surrogate of Eq. 8 (Eq. 6). Inputs are Poisson-encoded *inside* the
step with a key derived from ``(seed, step)``, so a run is reproducible and the same on one or
many devices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bntt_jax.checks import check_finite, check_label_shape, check_labels, check_network
from bntt_jax.constants import ENCODERS, LR_SCHEDULES, OPTIMIZERS
from bntt_jax.encoding import direct_encode, frames_encode, poisson_encode, sequential_encode
from bntt_jax.functional import NetworkParams, simulate
from bntt_jax.models import eval_apply


def step_decay_schedule(
    lr: float,
    epochs: int,
    steps_per_epoch: int,
    fractions: Sequence[float] = (0.5, 0.7, 0.9),
    factor: float = 0.1,
) -> optax.Schedule:
    """Learning rate ÷10 at 50%, 70% and 90% of the epochs (BNTT paper, Sec. 4.1).

    As the authors' ``adjust_learning_rate``: the division happens at the end of epoch
    ``⌊f·epochs⌋`` (0-based), so it applies from the next epoch on. (Their check compares
    ``epoch == f·epochs`` exactly and silently skips non-integer products; we decay anyway.)
    """
    boundaries = {
        (math.floor(f * epochs) + 1) * steps_per_epoch: factor
        for f in fractions
        if math.floor(f * epochs) + 1 < epochs
    }
    return optax.piecewise_constant_schedule(lr, boundaries)


def lr_schedule(
    lr: float,
    schedule: str = "step",
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> optax.Schedule:
    """The learning rate per optimiser step: ``'step'`` (:func:`step_decay_schedule`, the
    BNTT papers' ÷10 at 50/70/90 % of the epochs; needs ``epochs`` and ``steps_per_epoch``)
    or ``'constant'`` (``lr`` throughout; the TTFS paper's Adam runs)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {LR_SCHEDULES}.")
    if schedule == "constant":
        return optax.constant_schedule(lr)
    if epochs is None or steps_per_epoch is None:
        raise ValueError(
            "lr_schedule('step') divides the rate at fractions of the run: pass epochs= and "
            "steps_per_epoch=, or use schedule='constant'."
        )
    return step_decay_schedule(lr, epochs, steps_per_epoch)


def make_optimizer(
    name: str = "sgd",
    *,
    lr: float = 0.3,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    schedule: str = "step",
    decay_mask: Any = None,
) -> optax.GradientTransformation:
    """SGD with momentum and *coupled* weight decay (PyTorch's ``SGD(weight_decay=)``), or Adam.

    Coupled decay adds ``wd·θ`` to the gradient before momentum, on every parameter including
    γᵗ, as the authors' ``optim.SGD(model.parameters(), weight_decay=1e-4)``. Adam gets the
    same coupled L2 term (PyTorch ``Adam(weight_decay=)``); the TTFS paper uses Adam.
    ``schedule`` is ``'step'`` (the default, ÷10 at 50/70/90 % of ``epochs``) or
    ``'constant'``; see :func:`lr_schedule`. ``decay_mask``: optax's ``mask`` (a callable of
    the parameters, or a tree of bools) to decay only some parameters (default: all).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}.")
    if (
        not (math.isfinite(lr) and lr > 0)
        or not (math.isfinite(weight_decay) and weight_decay >= 0)
        or not 0 <= momentum < 1
    ):
        raise ValueError(
            f"need a finite lr > 0, a finite weight_decay >= 0 and 0 <= momentum < 1; got "
            f"lr={lr}, weight_decay={weight_decay}, momentum={momentum}."
        )
    rate = lr_schedule(lr, schedule, epochs=epochs, steps_per_epoch=steps_per_epoch)
    base = optax.sgd(rate, momentum=momentum) if name == "sgd" else optax.adam(rate)
    return optax.chain(optax.add_decayed_weights(weight_decay, mask=decay_mask), base)


@flax.struct.dataclass
class TrainState:
    """Everything a training step changes: the step count, the network, the optimiser state."""

    step: jax.Array
    net: NetworkParams
    opt_state: Any
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    @classmethod
    def create(cls, net: NetworkParams, tx: optax.GradientTransformation) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), net=net, opt_state=tx.init(net.params), tx=tx)


def encode(key: jax.Array, inputs: jax.Array, num_steps: int, encoder: str) -> jax.Array:
    """Time-major input spikes ``[T, B, ...]`` for ``inputs`` ``[B, ...]`` (frames: ``[B, T,
    ...]``)."""
    if encoder == "poisson":
        return poisson_encode(key, inputs, num_steps)
    if encoder == "direct":
        return direct_encode(inputs, num_steps)
    if encoder == "sequential":
        inputs = inputs.reshape(inputs.shape[0], -1)  # a sample of any shape, value by value
        if inputs.shape[1] != num_steps:
            raise ValueError(
                f"sequential input has {inputs.shape[1]} values per sample, the network "
                f"{num_steps} steps: they must match."
            )
        return sequential_encode(inputs)
    if encoder == "frames":
        return frames_encode(inputs, num_steps)
    raise ValueError(f"unknown encoder {encoder!r}; choose one of {ENCODERS}.")


def step_key(seed_key: jax.Array, step: jax.Array) -> jax.Array:
    """The encoder key of one training step: ``fold_in(key(seed), step)``."""
    return jax.random.fold_in(seed_key, step)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy of Eq. 5 on the readout."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def train_step(
    state: TrainState,
    inputs: jax.Array,
    labels: jax.Array,
    seed_key: jax.Array,
    *,
    encoder: str = "poisson",
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One BPTT step (Eq. 6) on a batch: encode, simulate in train mode, update.

    Returns the new state and metrics: ``loss``, ``accuracy``, ``grad_norm``, the mean
    spikes per sample of every layer (``spikes/<layer>``) and ``finite``, a bool vector that
    says whether the loss and each layer's gradient, updated parameters and running
    statistics are finite (in the order of :func:`finite_flag_names`). Pure: jit it, and
    shard ``inputs`` and ``labels`` over a ``data`` mesh axis for data parallelism. Called
    outside a trace, it refuses NaN/Inf ``inputs`` (:mod:`bntt_jax.checks`).
    """
    inputs = _sequence(inputs, encoder)
    _check_batch("train_step()", inputs, labels, state.net, frames=encoder == "frames")
    num_steps = state.net.config.num_steps
    spikes = encode(step_key(seed_key, state.step), inputs, num_steps, encoder)

    def loss_fn(params):
        out = simulate(state.net.replace(params=params), spikes, num_steps, train=True)
        return cross_entropy(out.logits, labels), out

    (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.net.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.net.params)
    params = optax.apply_updates(state.net.params, updates)
    net = state.net.replace(params=params, batch_stats=out.batch_stats)
    metrics = {
        "loss": loss,
        "accuracy": jnp.mean(jnp.argmax(out.logits, -1) == labels),
        "grad_norm": optax.tree.norm(grads),
        "finite": finite_flags(_layer_order(state.net), loss, grads, params, out.batch_stats),
    }
    metrics |= {f"spikes/{k}": v.sum(0).mean() for k, v in out.spike_counts.items()}
    return state.replace(step=state.step + 1, net=net, opt_state=opt_state), metrics


def _layer_order(net: NetworkParams) -> list[str]:
    """Top-level parameter groups in network order (layer, its norm, …, readout)."""
    order = [n for spec in net.config.layers for n in (spec.name, f"norm_{spec.name}")]
    order.append(net.config.readout_name)
    return [k for k in order if k in net.params] + [k for k in net.params if k not in order]


def finite_flag_names(net: NetworkParams) -> list[str]:
    """What each entry of :func:`train_step`'s ``finite`` metric checks, in order: the loss,
    then each layer's gradient, parameters and running statistics, in network order."""
    return flag_names(_layer_order(net), net.batch_stats)


def flag_names(order: Sequence[str], batch_stats: Any) -> list[str]:
    """The names of :func:`finite_flags`' entries for parameter groups ``order``."""
    stats = [k for k in order if k in batch_stats]
    return (
        ["the loss"]
        + [f"the gradient of {k}" for k in order]
        + [f"the parameters of {k}" for k in order]
        + [f"the running statistics of {k}" for k in stats]
    )


def finite_flags(
    order: Sequence[str], loss: jax.Array, grads: Any, params: Any, batch_stats: Any
) -> jax.Array:
    """A bool vector: is the loss finite, then each group's gradient, parameters and running
    statistics (groups in ``order``; named by :func:`flag_names`)."""

    def finite(tree: Any) -> jax.Array:
        leaves = jax.tree.leaves(tree)
        return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in leaves]))

    flags = [jnp.isfinite(loss)]
    flags += [finite(grads[k]) for k in order]
    flags += [finite(params[k]) for k in order]
    flags += [finite(batch_stats[k]) for k in order if k in batch_stats]
    return jnp.stack(flags)


def _sequence(inputs: Any, encoder: str) -> Any:
    """A batch for the sequential encoder as ``[B, L]``: each sample's values in row-major
    order (an image pixel by pixel, as Sequential MNIST presents it)."""
    if encoder == "sequential" and getattr(inputs, "ndim", 2) > 2:
        return inputs.reshape(inputs.shape[0], -1)
    return inputs


def _check_batch(
    where: str, inputs: Any, labels: Any, net: Any = None, rank: bool = True, frames: bool = False
) -> None:
    """A batch of the wrong rank (spikes ``[T, B, ...]`` where a batch ``[B, ...]`` belongs;
    ``frames``: ``[B, T, ...]``), an empty batch, labels that are no class of ``net``, NaN/Inf
    inputs, and NaN/Inf weights or negative running variances of ``net`` are refused (values:
    concrete arrays only)."""
    want = 1 + frames + (len(net.config.input_shape) if net is not None else 0)
    if net is not None and rank and inputs.ndim != want:
        hint = " (time-major spikes? this step encodes its batch itself)" * (
            inputs.ndim == want + 1
        )
        raise ValueError(
            f"{where}: inputs must be a batch [B, ...] of rank {want} (samples of shape "
            f"{(net.config.num_steps,) * frames + net.config.input_shape}); got shape "
            f"{tuple(inputs.shape)}{hint}."
        )
    if inputs.shape[0] == 0:
        raise ValueError(f"{where}: need a non-empty batch; got inputs of shape {inputs.shape}.")
    check_label_shape(where, "labels", labels, inputs.shape[0])
    if net is not None:
        check_labels(where, labels, net.config.num_classes)
        check_network(where, net.params, net.batch_stats)
    check_finite(where, "inputs", inputs)


def eval_step(
    net: NetworkParams,
    inputs: jax.Array,
    labels: jax.Array,
    key: jax.Array,
    *,
    encoder: str = "poisson",
    exit_steps: Sequence[int] = (),
    mask: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """Evaluate a batch with running statistics; sums (not means), to add up over batches.

    Returns ``correct``, ``loss_sum``, ``count``, the spikes of every layer summed over the
    batch per step (``spikes/<layer>``: ``[T]``) and, for every ``t`` in ``exit_steps``, the
    correct predictions of an early exit at ``t`` (``correct@t``), ``1 ≤ t ≤ T``. ``mask``
    ``[B]`` (bool) counts only its true rows in every sum: a last batch padded to the batch
    size (each image is evaluated alone with the running statistics, so the padding changes
    nothing else). Called outside a trace, it refuses NaN/Inf ``inputs``
    (:mod:`bntt_jax.checks`).
    """
    num_steps = net.config.num_steps
    bad = [t for t in exit_steps if not isinstance(t, int | np.integer) or not 1 <= t <= num_steps]
    if bad:
        raise ValueError(
            f"eval_step(): exit steps must be ints in 1..{num_steps} (the network's T), got {bad}."
        )
    inputs = _sequence(inputs, encoder)
    _check_batch("eval_step()", inputs, labels, net, frames=encoder == "frames")
    spikes = encode(key, inputs, num_steps, encoder)
    # The model itself (not simulate) also returns the per-step readout terms W·o_t, so one
    # run gives every exit: the readout of an exit at t averages the first t terms.
    logits, counts, steps = eval_apply(net.variables(), net.config, spikes)
    keep = batch_mask("eval_step()", mask, labels.shape[0])
    metrics = masked_sums(logits, labels, keep)
    metrics |= {f"spikes/{k}": (v * keep).sum(1) for k, v in counts.items()}
    cumulative = jnp.cumsum(steps, axis=0)
    for t in exit_steps:
        early_logits = cumulative[int(t) - 1] / int(t)
        metrics[f"correct@{int(t)}"] = jnp.sum((jnp.argmax(early_logits, -1) == labels) & keep)
    return metrics


def batch_mask(where: str, mask: Any, batch: int) -> jax.Array:
    """``mask`` as a ``[batch]`` bool array (every row when ``None``)."""
    if mask is None:
        return jnp.ones(batch, bool)
    if tuple(np.shape(mask)) != (batch,):
        raise ValueError(
            f"{where}: mask must be one bool per input, shape ({batch},); got shape "
            f"{tuple(np.shape(mask))}."
        )
    return jnp.asarray(mask, bool)


def masked_sums(logits: jax.Array, labels: jax.Array, keep: jax.Array) -> dict[str, jax.Array]:
    """``correct``, ``loss_sum`` (Eq. 5's cross-entropy) and ``count`` over the rows ``keep``
    marks. The loss is the batch mean times B, as it was before masks (every row kept: the
    same number to the last bit)."""
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {
        "correct": jnp.sum((jnp.argmax(logits, -1) == labels) & keep),
        "loss_sum": jnp.mean(losses * keep) * labels.shape[0],
        "count": jnp.sum(keep, dtype=jnp.int32),
    }
