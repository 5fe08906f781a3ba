"""The functional API of the TTFS surrogate network, over the Flax modules of
:mod:`bntt_jax.ttfs.models`: ``init`` and ``forward``, its parameters and its forward pass.

:class:`TTFSParams` holds the Flax ``params`` and ``batch_stats`` trees plus the static
:class:`TTFSConfig`; it is a pytree, so it goes straight into ``jax.jit``, optax and orbax.
"""

from __future__ import annotations

import functools
import math
import typing
from typing import Any, NamedTuple

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bntt_jax.checks import check_finite, check_unit_range, is_traced
from bntt_jax.initialization import variables_from_one_draw
from bntt_jax.ttfs.config import TTFSConfig
from bntt_jax.ttfs.models import TTFSNetwork, kernel_parameters


@flax.struct.dataclass
class TTFSParams:
    """A TTFS network's arrays and the architecture they belong to.

    Attributes:
      params: Flax ``params``: per layer ``conv``/``dense`` (kernel, bias), ``bn`` (γ =
        ``scale``, β = ``bias``) and ``temporal`` (τ = ``tau``, t_d), the input kernel
        ``input`` (with ``input_coding='ttfs'``) and the output layer ``out``.
      batch_stats: the batch norms' running mean and variance.
      config: the :class:`TTFSConfig` (static: not a leaf).
    """

    params: dict[str, Any]
    batch_stats: dict[str, Any]
    config: TTFSConfig = flax.struct.field(pytree_node=False)

    def variables(self) -> dict[str, Any]:
        return {"params": self.params, "batch_stats": self.batch_stats}


class SurrogateOutput(NamedTuple):
    """What :func:`forward` returns.

    Attributes:
      logits: ``[B, classes]``, the output layer's pre-activation.
      z: ``{kernel: pre-activation}`` of every temporal kernel (the image for ``'input'``).
      t: ``{kernel: spike times}``, float, integer-valued, ``T + 1`` where no spike.
      batch_stats: the updated running statistics in train mode, else ``None``.
      p_tb: ``{layer: P_TB}``, Eq. 14 summed over the layer's channels (TB, Sec. 5).
    """

    logits: jax.Array
    z: dict[str, jax.Array]
    t: dict[str, jax.Array]
    # typing.Any, not Any: the API docs resolve a NamedTuple field's annotation by import
    batch_stats: dict[str, typing.Any] | None
    p_tb: dict[str, jax.Array]


def _config(config: TTFSConfig | None, kwargs: dict[str, Any], where: str) -> TTFSConfig:
    if "T" in kwargs:
        if "time_window" in kwargs:
            raise TypeError(f"{where}: pass T or time_window (the same thing), not both.")
        kwargs["time_window"] = kwargs.pop("T")
    if config is None:
        return TTFSConfig(**kwargs)
    if kwargs:
        raise TypeError(f"{where}: pass either a TTFSConfig or its fields as keywords, not both.")
    if not isinstance(config, TTFSConfig):
        raise TypeError(f"{where}: config must be a TTFSConfig, got {type(config).__name__}.")
    return config


def init(
    key: jax.Array | int = 0, config: TTFSConfig | None = None, **config_kwargs: Any
) -> TTFSParams:
    """Initialise a TTFS network: ``init(0, arch='vgg16', T=32)``, ``init(key, config)``.

    Kernels are Glorot-uniform (the authors' Keras default), biases 0, γ = 1, β = 0, running
    mean 0 and variance 1, and every temporal kernel τ = ``tau0``, t_d = ``t_d0`` (the paper:
    10 and 0, so ẑ_M,0 = 1). ``key``: a ``jax.random`` key or an int seed. The kernels are
    consecutive slices of one uniform draw; ``TTFSNetwork(config).init(key, x)`` gives the same
    shapes and distributions with Flax's per-parameter keys.
    """
    config = _config(config, config_kwargs, "ttfs.init()")
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        key = jax.random.key(int(key))
    elif not hasattr(key, "dtype"):
        raise TypeError(
            f"ttfs.init(): key must be a jax.random key or an int seed, got {type(key).__name__}."
        )
    variables = _init(key, config)
    return TTFSParams(variables["params"], variables["batch_stats"], config)


@functools.cache
def variable_shapes(config: TTFSConfig) -> dict[str, Any]:
    """The ``params`` and ``batch_stats`` shapes a network of ``config`` has (Flax's ``init``
    traced once per config; nothing computed)."""
    x = jax.ShapeDtypeStruct((1, *config.input_shape), jnp.float32)
    shapes = jax.eval_shape(
        lambda k, x: TTFSNetwork(config).init(k, x, train=False), jax.random.key(0), x
    )
    return {"params": shapes["params"], "batch_stats": shapes["batch_stats"]}


@functools.partial(jax.jit, static_argnums=1)
def _init(key: jax.Array, config: TTFSConfig) -> dict[str, Any]:
    """The variables of :func:`init`: Glorot-uniform kernels (Xavier with gain 1) sliced from
    one uniform draw, so initialising is one small program (tracing Flax's ``init`` through
    VGG-16 and compiling it took seconds)."""
    fill = {"bias": 0.0, "scale": 1.0, "tau": config.tau0, "t_d": config.t_d0}
    return variables_from_one_draw(
        key, variable_shapes(config), gain=1.0, fill=fill, where="ttfs.init()"
    )


def check_params(where: str, net: Any) -> None:
    """Refuse anything but :class:`TTFSParams` whose arrays match their config's network."""
    if not isinstance(net, TTFSParams):
        hint = (
            " (BNTT parameters: use bntt_jax.simulate)"
            if type(net).__name__ == "NetworkParams"
            else ""
        )
        raise TypeError(
            f"{where}: expected TTFSParams from bntt_jax.ttfs.init(), got "
            f"{type(net).__name__}{hint}."
        )
    want = variable_shapes(net.config)
    have = {"params": net.params, "batch_stats": net.batch_stats}
    want_s = jax.tree_util.tree_flatten_with_path(want)[0]
    have_s = jax.tree_util.tree_flatten_with_path(have)[0]
    want_d = {jax.tree_util.keystr(p): tuple(v.shape) for p, v in want_s}
    have_d = {jax.tree_util.keystr(p): tuple(np.shape(v)) for p, v in have_s}
    if want_d != have_d:
        missing = sorted(set(want_d) - set(have_d))
        extra = sorted(set(have_d) - set(want_d))
        wrong = [k for k in want_d if k in have_d and want_d[k] != have_d[k]]
        detail = (
            f"missing {missing[0]}"
            if missing
            else f"unexpected {extra[0]}"
            if extra
            else f"{wrong[0]} has shape {have_d[wrong[0]]}, the network needs {want_d[wrong[0]]}"
        )
        raise ValueError(
            f"{where}: these parameters are not those of the network their config describes "
            f"({net.config.arch}): {detail}. Build them with bntt_jax.ttfs.init(key, config)."
        )
    check_kernels(where, net)


def check_kernels(where: str, net: TTFSParams) -> None:
    """Every τ must be finite and > 0 and every t_d finite (Eq. 3 has no kernel otherwise);
    checked on concrete parameters only (not inside a trace)."""
    for name, (tau, t_d) in kernel_parameters(net.params, net.config).items():
        if is_traced(tau) or is_traced(t_d):
            return
        tau_v, t_d_v = float(np.asarray(tau)), float(np.asarray(t_d))
        if not (np.isfinite(tau_v) and tau_v > 0 and np.isfinite(t_d_v)):
            raise ValueError(
                f"{where}: the temporal kernel of {name} has τ = {tau_v}, t_d = {t_d_v}; "
                "Eq. 3 needs a finite τ > 0 and a finite t_d. Fix the parameters (a diverged "
                "training run?) or initialise anew with bntt_jax.ttfs.init."
            )


def network_input(where: str, config: TTFSConfig, images: Any) -> Any:
    """``images`` checked as :func:`check_images` does; an MLP also takes images of any shape
    with ``in_features`` values per sample (e.g. CIFAR's 32×32×3), flattened."""
    shape = tuple(np.shape(images))
    if config.arch == "mlp" and len(shape) > 2 and math.prod(shape[1:]) == config.in_features:
        images = images.reshape(shape[0], -1)
    check_images(where, config, images)
    return images


def check_images(where: str, config: TTFSConfig, images: Any) -> None:
    """``images`` must be ``[B, *input_shape]`` with B ≥ 1 (and, outside a trace, finite
    intensities in [0, 1]: TTFS coding turns them into spike times)."""
    shape = tuple(np.shape(images))
    if len(shape) != 1 + len(config.input_shape) or shape[1:] != config.input_shape or not shape[0]:
        raise ValueError(
            f"{where}: images must have shape [batch, {', '.join(map(str, config.input_shape))}] "
            f"for this {config.arch}; got {shape}."
        )
    check_finite(where, "images", images)
    check_unit_range(where, "images", images)


def forward(
    net: TTFSParams,
    images: jax.Array,
    *,
    train: bool = False,
    relaxed: jax.Array | None = None,
    rng: jax.Array | None = None,
) -> SurrogateOutput:
    """The surrogate model's forward pass (Sec. 3, Eq. 5): ``images`` ``[B, ...]`` → logits.

    ``train``: batch statistics, updated running statistics and dropout (needs ``rng``);
    else running statistics. ``relaxed``: the SR draw, a ``[layers]`` bool vector
    (:func:`bntt_jax.ttfs.relaxed_layers`), training only.
    """
    check_params("ttfs.forward()", net)
    images = network_input("ttfs.forward()", net.config, images)
    if relaxed is not None:
        chex.assert_shape(relaxed, (len(net.config.layers),))
    model = TTFSNetwork(net.config)
    rngs = {"dropout": rng} if (train and net.config.dropout) else None
    if train and net.config.dropout and rng is None:
        raise ValueError("ttfs.forward(): dropout in train mode needs rng=<a jax.random key>.")
    if train:
        (logits, aux), updates = model.apply(
            net.variables(),
            images,
            train=True,
            relaxed=relaxed,
            rngs=rngs,
            mutable=["batch_stats"],
        )
        return SurrogateOutput(logits, aux["z"], aux["t"], updates["batch_stats"], aux["p_tb"])
    logits, aux = model.apply(net.variables(), images, train=False, relaxed=relaxed)
    return SurrogateOutput(logits, aux["z"], aux["t"], None, aux["p_tb"])
