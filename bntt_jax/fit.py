"""``fit``: the training loop of :mod:`bntt_jax.train` on your own arrays, in one call.

Each epoch shuffles the training set with ``numpy.random.default_rng(seed + epoch)``, cuts it
into full batches (the last partial batch is dropped, as the authors' loaders do) and runs one
:func:`bntt_jax.train_step` (BPTT, Eq. 6) per batch, the encoder key of step ``s`` being
``fold_in(key(seed), s)``; with test arrays, it evaluates after every epoch
(:func:`bntt_jax.eval_step`, running statistics, in batches of ``batch_size``, with the same
encoder draws every epoch). For checkpoints, resume, reports and
analyses, use the experiment runner (``python -m experiments.run``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from bntt_jax.checks import check_finite, check_label_shape, check_labels
from bntt_jax.functional import NetworkParams
from bntt_jax.train import TrainState, eval_step, make_optimizer, train_step


def fit(
    net: NetworkParams,
    x_train: Any,
    y_train: Any,
    *,
    epochs: int,
    batch_size: int = 32,
    optimizer: str = "adam",
    lr: float = 1e-3,
    encoder: str = "poisson",
    seed: int = 0,
    x_test: Any = None,
    y_test: Any = None,
    verbose: bool = False,
) -> tuple[NetworkParams, list[dict[str, float]]]:
    """Train ``net`` on ``(x_train, y_train)`` for ``epochs`` (module docstring).

    Args:
      net: the network to start from (:func:`bntt_jax.init`).
      x_train: ``[N, ...]`` inputs, a batch axis first.
      y_train: ``[N]`` integer labels ``0 … K−1``.
      optimizer: :func:`bntt_jax.make_optimizer`'s name, ``"adam"`` or ``"sgd"``.
      lr: its learning rate, constant.
      encoder: ``"poisson"``, ``"direct"``, ``"sequential"`` or ``"frames"``.
      x_test: ``[M, ...]`` inputs evaluated after every epoch when given.
      y_test: their labels, given with ``x_test``.
      verbose: print one line per epoch.

    Returns:
      The trained network and one record per epoch: ``epoch``, ``loss`` (the mean over its
      batches), ``train_accuracy`` and, with test arrays, ``test_accuracy``.
    """
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if (x_test is None) != (y_test is None):
        given, missing = ("x_test", "y_test") if y_test is None else ("y_test", "x_test")
        raise ValueError(f"fit(): {given} given without {missing}; pass both, or neither.")
    _check_split(net, "train", x_train, y_train)
    if x_test is not None:
        x_test, y_test = np.asarray(x_test), np.asarray(y_test)
        _check_split(net, "test", x_test, y_test)
    batches = _full_batches(len(x_train), epochs, batch_size)
    state = TrainState.create(net, make_optimizer(optimizer, lr=lr, schedule="constant"))
    step = jax.jit(train_step, static_argnames="encoder")
    evaluate = jax.jit(eval_step, static_argnames="encoder")
    seed_key = jax.random.key(seed)
    test_key = jax.random.fold_in(seed_key, 2**31 - 1)  # the same test spikes every epoch
    history = []
    for epoch in range(1, int(epochs) + 1):
        order = np.random.default_rng(seed + epoch).permutation(len(x_train))
        batch_indices = [order[i * batch_size : (i + 1) * batch_size] for i in range(batches)]
        train = functools.partial(step, seed_key=seed_key, encoder=encoder)
        state, record = _train_epoch(train, state, x_train, y_train, batch_indices)
        record = {"epoch": epoch, **record}
        if x_test is not None:
            test = functools.partial(evaluate, state.net, key=test_key, encoder=encoder)
            record["test_accuracy"] = _accuracy(test, x_test, y_test, batch_size)
        history.append(record)
        if verbose:
            print(
                ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in record.items()
                )
            )
    return state.net, history


def _check_split(net: NetworkParams, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """One label per sample, each a class of ``net``, and finite inputs: checked on the whole
    arrays before the first step (inside the compiled step their values are not seen)."""
    if x.ndim == 0:
        raise ValueError(f"fit(): x_{split} must have a batch axis first, [N, ...]; got a scalar.")
    check_label_shape("fit()", f"y_{split}", y, len(x))
    check_labels(f"fit(): y_{split}", y, net.config.num_classes)
    check_finite("fit()", f"x_{split}", x)


def _full_batches(samples: int, epochs: int, batch_size: int) -> int:
    """How many full batches an epoch of ``samples`` has; refuses none, or a count < 1."""
    if int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(f"fit(): epochs and batch_size must be >= 1, got {epochs}, {batch_size}.")
    if samples // int(batch_size) == 0:
        raise ValueError(
            f"fit(): {samples} training samples make no full batch of {batch_size}; "
            f"pass batch_size={max(1, samples)} or less."
        )
    return samples // int(batch_size)


def _train_epoch(train: Any, state: TrainState, x: np.ndarray, y: np.ndarray, batches: list):
    """One epoch of ``train(state, x, y)`` over the ``batches`` (index arrays): the state after
    it and the epoch's mean ``loss`` and ``train_accuracy``."""
    losses, correct = [], []  # device scalars: read once per epoch, not per step
    for idx in batches:
        state, metrics = train(state, x[idx], y[idx])
        losses.append(metrics["loss"])
        correct.append(metrics["accuracy"])
    losses, correct = jax.device_get((losses, correct))
    return state, {"loss": float(np.mean(losses)), "train_accuracy": float(np.mean(correct))}


def _accuracy(test: Any, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """The fraction of ``x`` that ``test(x, y)`` classifies correctly, batch by batch."""
    correct = [
        test(x[i : i + batch_size], y[i : i + batch_size])["correct"]
        for i in range(0, len(x), batch_size)
    ]
    return float(np.sum(jax.device_get(correct))) / len(x)
