"""``init`` and ``simulate``: the notebook-level entry points of the engine.

``params`` is a :class:`NetworkParams`: the Flax ``params`` and ``batch_stats`` trees plus
the static :class:`NetworkConfig`, so ``simulate(params, spikes, T)`` needs nothing else.
It is a pytree (the config is static aux data), so it goes straight into ``jax.jit``,
``jax.grad``, optax and orbax.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bntt_jax.config import NetworkConfig
from bntt_jax.fused import eval_apply
from bntt_jax.models import SpikingNetwork


@flax.struct.dataclass
class NetworkParams:
    """Parameters of a spiking network, with the architecture they belong to.

    Attributes:
      params: Flax ``params`` collection (conv/fc kernels, γ's).
      batch_stats: Flax ``batch_stats`` collection (running μ, σ² per step); ``{}`` for
        ``norm='layernorm'`` or ``'none'``.
      config: the :class:`NetworkConfig` (static: not a leaf).
    """

    params: dict[str, Any]
    batch_stats: dict[str, Any]
    config: NetworkConfig = flax.struct.field(pytree_node=False)

    @property
    def num_steps(self) -> int:
        """The number of time steps the parameters have (the largest usable ``T``)."""
        return self.config.num_steps

    def variables(self) -> dict[str, Any]:
        """The Flax variables dict for ``SpikingNetwork(config).apply``."""
        return {"params": self.params, "batch_stats": self.batch_stats}


class SimulateOutput(NamedTuple):
    """What :func:`simulate` returns.

    Attributes:
      logits: ``[B, classes]``, the readout ``(1/T)·Σ_t W·o_t``.
      spike_counts: ``{layer: [T, B] int32}``, spikes of every spiking layer per time step
        and per sample, in layer order (``conv1`` … ``fc1``).
      batch_stats: in train mode the updated running statistics (put them back with
        ``params.replace(batch_stats=out.batch_stats)``); ``None`` in evaluation.
    """

    logits: jax.Array
    spike_counts: dict[str, jax.Array]
    batch_stats: dict[str, Any] | None


def init(
    key: jax.Array, config: NetworkConfig | None = None, **config_kwargs: Any
) -> NetworkParams:
    """Initialise a network: ``init(key, arch='vgg9', num_steps=25)`` or ``init(key, config)``.

    Weights are Xavier-uniform with gain 2, γ = 1, running mean 0 and variance 1, as in the
    authors' code. Keyword arguments are :class:`NetworkConfig` fields.
    """
    if config is None:
        config = NetworkConfig(**config_kwargs)
    elif config_kwargs:
        raise TypeError("init(): pass either a NetworkConfig or its fields as keywords, not both.")
    elif not isinstance(config, NetworkConfig):
        raise TypeError(f"init(): config must be a NetworkConfig, got {type(config).__name__}.")
    variables = _init_variables(key, config)
    return NetworkParams(
        params=variables["params"], batch_stats=variables.get("batch_stats", {}), config=config
    )


@partial(jax.jit, static_argnums=1)
def _init_variables(key: jax.Array, config: NetworkConfig) -> dict[str, Any]:
    dummy = jnp.zeros((1, 2) + config.input_shape, jnp.float32)
    return SpikingNetwork(config).init(key, dummy, train=False)


def simulate(
    params: NetworkParams, spikes: jax.Array, T: int | None = None, *, train: bool = False
) -> SimulateOutput:
    """Run the spiking network on time-major input spikes.

    Args:
      params: a :class:`NetworkParams` from :func:`init`, training, or
        :func:`bntt_jax.from_torch`.
      spikes: ``[T', B, H, W, C]`` (VGG) or ``[T', B, features]`` (MLP), floating or bool,
        e.g. from :func:`bntt_jax.poisson_encode`.
      T: the number of steps to run, ``1 ≤ T ≤ min(T', params.num_steps)``; default ``T'``.
        A ``T`` shorter than the parameters' steps is a temporal early exit: the first T
        steps run with their own γᵗ and statistics and the readout averages over those T.
      train: use batch statistics (Eq. 9, Algorithm 1) and return updated running
        statistics; otherwise use each step's running statistics.

    Returns:
      A :class:`SimulateOutput` ``(logits, spike_counts, batch_stats)``.

    Raises:
      TypeError / ValueError naming the problem for wrong params, rank, shape, channel
      count, dtype, or a T out of range.
    """
    spikes, T = _check_inputs(params, spikes, T, train)
    return _simulate(params, spikes, T, train)


@partial(jax.jit, static_argnums=(2, 3))
def _simulate(params: NetworkParams, spikes: jax.Array, T: int, train: bool) -> SimulateOutput:
    model = SpikingNetwork(params.config)
    if train:
        (logits, counts, _), updates = model.apply(
            params.variables(), spikes[:T], train=True, mutable=["batch_stats"]
        )
        return SimulateOutput(logits, counts, updates.get("batch_stats", {}))
    logits, counts, _ = eval_apply(params.variables(), params.config, spikes[:T])
    return SimulateOutput(logits, counts, None)


def _check_inputs(params: Any, spikes: Any, T: Any, train: bool) -> tuple[jax.Array, int]:
    """Validate ``simulate``'s arguments before tracing; return (spikes, T)."""
    if not isinstance(params, NetworkParams):
        hint = ""
        if isinstance(params, dict) and "params" in params:
            hint = (
                " A raw Flax variables dict lacks the architecture: wrap it as "
                "NetworkParams(params=v['params'], batch_stats=v.get('batch_stats', {}), "
                "config=NetworkConfig(...))."
            )
        raise TypeError(
            "simulate(): params must be a bntt_jax.NetworkParams (from bntt_jax.init, a "
            f"training checkpoint or bntt_jax.from_torch), got {type(params).__name__}.{hint}"
        )
    cfg = params.config
    if not hasattr(spikes, "shape") or not hasattr(spikes, "dtype"):
        spikes = np.asarray(spikes)
    dtype = np.dtype(spikes.dtype)
    if dtype == np.bool_:
        spikes = jnp.asarray(spikes, jnp.float32)
    elif not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"simulate(): spikes must be floating or bool, got dtype {dtype}; cast them with "
            "spikes.astype(jnp.float32)."
        )
    expected = cfg.input_shape
    layout = "[T, B, H, W, C]" if cfg.arch != "mlp" else "[T, B, features]"
    if spikes.ndim != 2 + len(expected):
        raise ValueError(
            f"simulate(): {cfg.arch} expects time-major spikes of rank {2 + len(expected)} "
            f"{layout}, got rank {spikes.ndim} with shape {tuple(spikes.shape)}."
            + (
                " For a single sample add the batch axis: spikes[:, None]."
                if spikes.ndim == 1 + len(expected)
                else ""
            )
        )
    sample = tuple(spikes.shape[2:])
    if sample != expected:
        if cfg.arch != "mlp" and sample[:2] == expected[:2]:
            problem = f"{sample[2]} input channels, but the network has {expected[2]}"
            if sample[0] == expected[2]:
                problem += " (channels-first input? the layout is channels-last [T, B, H, W, C])"
        elif cfg.arch != "mlp" and sample[-1] == expected[0] and sample[0] == expected[2]:
            problem = "a channels-first sample; the layout is channels-last [T, B, H, W, C]"
        else:
            problem = f"samples of shape {sample}, but the network takes {expected}"
        raise ValueError(f"simulate(): spikes of shape {tuple(spikes.shape)} have {problem}.")
    available = int(spikes.shape[0])
    if T is None:
        T = available
    if isinstance(T, bool) or not isinstance(T, int | np.integer):
        raise TypeError(f"simulate(): T must be a Python int, got {type(T).__name__}.")
    T = int(T)
    if T < 1:
        raise ValueError(f"simulate(): T must be >= 1, got {T}.")
    if T > cfg.num_steps:
        raise ValueError(
            f"simulate(): T={T} is beyond the {cfg.num_steps} time steps these parameters have "
            f"(BNTT keeps one γᵗ and statistics per step); use T <= {cfg.num_steps}."
        )
    if T > available:
        raise ValueError(
            f"simulate(): T={T} but spikes hold only {available} time steps (leading axis)."
        )
    if train and cfg.norm in ("bntt", "bn") and spikes.shape[1] < 2:
        raise ValueError(
            "simulate(train=True): batch statistics need a batch of at least 2 samples, got "
            f"{spikes.shape[1]}."
        )
    return spikes, T
