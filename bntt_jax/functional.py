"""The functional API of the BNTT network, over the Flax modules of :mod:`bntt_jax.models`:
``init`` and ``simulate``, the notebook-level entry points of the engine.

``params`` is a :class:`NetworkParams`: the Flax ``params`` and ``batch_stats`` trees plus
the static :class:`NetworkConfig`, so ``simulate(params, spikes, T)`` needs nothing else.
It is a pytree (the config is static aux data), so it goes straight into ``jax.jit``,
``jax.grad``, optax and orbax.
"""

from __future__ import annotations

import functools
import typing
from functools import partial
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from bntt_jax.checks import check_finite, check_fits, check_network, size
from bntt_jax.config import NetworkConfig
from bntt_jax.initialization import variables_from_one_draw
from bntt_jax.models import SpikingNetwork, eval_apply


@flax.struct.dataclass
class NetworkParams:
    """Parameters of a spiking network, with the architecture they belong to.

    Attributes:
      params: Flax ``params`` collection (conv/fc weights, each Flax's ``kernel``; γ's).
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
    # typing.Any, not Any: the API docs resolve a NamedTuple field's annotation by import
    batch_stats: dict[str, typing.Any] | None


class RecordedOutput(NamedTuple):
    """What ``simulate(..., record=True)`` returns: :class:`SimulateOutput`'s three fields,
    then every spiking layer's state.

    Attributes:
      logits, spike_counts, batch_stats: as :class:`SimulateOutput`.
      membranes: ``{layer: [T, B, ...]}``, the membrane potential ``u_t`` before the reset
        (Eq. 4): the value compared with the threshold.
      spikes: ``{layer: [T, B, ...]}``, the spikes ``o_t`` (0 or 1, before pooling).
    """

    logits: jax.Array
    spike_counts: dict[str, jax.Array]
    # typing.Any, not Any: the API docs resolve a NamedTuple field's annotation by import
    batch_stats: dict[str, typing.Any] | None
    membranes: dict[str, jax.Array]
    spikes: dict[str, jax.Array]


def init(
    key: jax.Array | int = 0, config: NetworkConfig | None = None, **config_kwargs: Any
) -> NetworkParams:
    """Initialise a network: ``init(0, arch='vgg9', T=25)``, ``init(key, config)``.

    Args:
      key: a ``jax.random`` key, or an int seed (``init(0, ...)`` is ``init(key(0), ...)``).
      config: a :class:`NetworkConfig`; or give its fields as keywords instead. ``T`` is
        accepted for ``num_steps``.

    Weights are Xavier-uniform with gain 2 (``U(−b, b)``, ``b = 2·sqrt(6 / (fan_in +
    fan_out))``), γ = 1, running mean 0 and variance 1, as in the authors' code. All weights
    are consecutive slices of one uniform draw from ``key``, so initialising costs one small
    compiled program whatever the network (a VGG9 in well under a second on a 2-core CPU,
    where tracing Flax's ``init`` through the forward pass and compiling one random program
    per kernel took seconds). ``SpikingNetwork(config).init(key, x)`` gives the same shapes and
    distributions with Flax's per-parameter keys. Pure: ``jax.jit``/``jax.vmap`` it freely.
    """
    if "T" in config_kwargs:
        if "num_steps" in config_kwargs:
            raise TypeError("init(): pass T or num_steps (the same thing), not both.")
        config_kwargs["num_steps"] = config_kwargs.pop("T")
    if config is None:
        config = NetworkConfig(**config_kwargs)
    elif config_kwargs:
        raise TypeError("init(): pass either a NetworkConfig or its fields as keywords, not both.")
    elif not isinstance(config, NetworkConfig):
        raise TypeError(f"init(): config must be a NetworkConfig, got {type(config).__name__}.")
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        key = jax.random.key(int(key))
    elif not hasattr(key, "dtype"):
        raise TypeError(
            f"init(): key must be a jax.random key or an int seed, got {type(key).__name__}."
        )
    variables = _init_variables(key, config)
    return NetworkParams(
        params=variables["params"], batch_stats=variables["batch_stats"], config=config
    )


@functools.cache
def variable_shapes(config: NetworkConfig) -> dict[str, Any]:
    """``{'params': ..., 'batch_stats': ...}`` as ``jax.ShapeDtypeStruct`` trees: the arrays
    a network of ``config`` has (Flax's ``init`` traced once per config, nothing computed)."""
    dummy = jax.ShapeDtypeStruct((1, 2) + config.input_shape, jnp.float32)
    shapes = jax.eval_shape(
        lambda key, x: SpikingNetwork(config).init(key, x, train=False), jax.random.key(0), dummy
    )
    return {"params": shapes["params"], "batch_stats": shapes.get("batch_stats", {})}


@partial(jax.jit, static_argnums=1)
def _init_variables(key: jax.Array, config: NetworkConfig) -> dict[str, Any]:
    return variables_from_one_draw(
        key,
        variable_shapes(config),
        gain=2.0,
        fill=config.normalization.initial_values,
        where="init()",
    )


def simulate(
    params: NetworkParams,
    spikes: jax.Array,
    T: int | None = None,
    *,
    train: bool = False,
    record: bool = False,
) -> SimulateOutput | RecordedOutput:
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
      record: also return every spiking layer's membranes and spikes ``[T, B, ...]``
        (``out.membranes``, ``out.spikes``). They cost ``2·T·B·N·4`` bytes for ``N`` spiking
        neurons (VGG9 on CIFAR, ``N`` = 246,784: 1.6 GB at T = 25, B = 32; the 64-256-256-10
        digits MLP: 3.3 MB), on top of the simulation; without ``record`` only
        ``[T, B]`` spike counts are kept. It runs the module's own forward, not the fused
        CPU layers: the same spikes, and logits equal to float32 rounding.

    Returns:
      A :class:`SimulateOutput` ``(logits, spike_counts, batch_stats)``; with ``record``, a
      :class:`RecordedOutput` that adds ``membranes`` and ``spikes``.

    Raises:
      TypeError: wrong params (a missing, extra or mis-shaped array) or dtype, naming it.
      ValueError: a wrong rank, shape or channel count, an empty batch, NaN or Inf in the
        spikes, a T out of range, or a recording that does not fit in the free memory, each
        named. The value check (NaN/Inf) runs on concrete spikes only, not under
        ``jax.jit``/``jax.grad`` tracing; see :mod:`bntt_jax.checks` for its cost.
    """
    spikes, T = _check_inputs(params, spikes, T, train)
    if record:
        _check_record_fits(params.config, T, spikes.shape[1])
        return _recorded(params, spikes, T, train)
    return _simulate(params, spikes, T, train)


def _check_record_fits(config: NetworkConfig, T: int, batch: int) -> None:
    """The recording's ``2·T·B·N·4`` bytes (membranes and spikes), and as much again for the
    module's forward that produces them, against the free memory: refused before XLA
    allocates anything."""
    neurons = sum(config.neurons_per_layer().values())
    recorded = 2 * T * batch * neurons * 4
    check_fits(
        "simulate(record=True)",
        2 * recorded,
        f"recording {T} steps of {batch} samples ({neurons:,} spiking neurons: "
        f"{size(recorded)} of membranes and spikes, and the forward that computes them)",
        f"Record fewer samples (spikes[:, :{max(1, batch // 8)}]) or steps (T=...), or "
        "simulate without record=True.",
    )


@partial(jax.jit, static_argnums=(2, 3))
def _recorded(params: NetworkParams, spikes: jax.Array, T: int, train: bool) -> RecordedOutput:
    model = SpikingNetwork(params.config)
    mutable = ["batch_stats"] if train else False
    result = model.apply(params.variables(), spikes[:T], train=train, record=True, mutable=mutable)
    (logits, counts, _, recorded), updates = result if train else (result, {})
    stats = updates.get("batch_stats", {}) if train else None
    return RecordedOutput(logits, counts, stats, recorded["membranes"], recorded["spikes"])


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
    spikes = _spike_array(spikes)
    _check_spike_shape(cfg, spikes)
    T = _checked_steps(cfg, spikes, T)
    if train and cfg.normalization.batch_statistics and spikes.shape[1] < 2:
        raise ValueError(
            "simulate(train=True): batch statistics need a batch of at least 2 samples, got "
            f"{spikes.shape[1]}."
        )
    check_params(params, "simulate()")
    check_network("simulate()", params.params, params.batch_stats)
    check_finite("simulate()", "spikes", spikes)
    return spikes, T


def _spike_array(spikes: Any) -> Any:
    """``spikes`` as an array of floats (bools become float32); another dtype is refused."""
    if not hasattr(spikes, "shape") or not hasattr(spikes, "dtype"):
        spikes = np.asarray(spikes)
    dtype = np.dtype(spikes.dtype)
    if dtype == np.bool_:
        return jnp.asarray(spikes, jnp.float32)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"simulate(): spikes must be floating or bool, got dtype {dtype}; cast them with "
            "spikes.astype(jnp.float32)."
        )
    return spikes


def _check_spike_shape(cfg: NetworkConfig, spikes: Any) -> None:
    """Time-major spikes ``[T, B, ...]`` of the network's sample shape, naming a missing batch
    axis or channels-first images."""
    expected = cfg.input_shape
    layout = "[T, B, H, W, C]" if cfg.takes_images else "[T, B, features]"
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
    if spikes.shape[1] == 0:
        raise ValueError(
            f"simulate(): the batch is empty (spikes of shape {tuple(spikes.shape)}); pass at "
            "least one sample."
        )
    sample = tuple(spikes.shape[2:])
    if sample != expected:
        if cfg.takes_images and sample[:2] == expected[:2]:
            problem = f"{sample[2]} input channels, but the network has {expected[2]}"
            if sample[0] == expected[2]:
                problem += " (channels-first input? the layout is channels-last [T, B, H, W, C])"
        elif cfg.takes_images and sample[-1] == expected[0] and sample[0] == expected[2]:
            problem = "a channels-first sample; the layout is channels-last [T, B, H, W, C]"
        else:
            problem = f"samples of shape {sample}, but the network takes {expected}"
        raise ValueError(f"simulate(): spikes of shape {tuple(spikes.shape)} have {problem}.")


def _checked_steps(cfg: NetworkConfig, spikes: Any, T: Any) -> int:
    """``T`` (default: all the spikes' steps), within the steps the spikes hold and the
    parameters have; batch-major spikes are named as such."""
    available = int(spikes.shape[0])
    # batch-major [B, T, ...] spikes passed for time-major [T, B, ...]: the shapes tell when
    # the leading axis cannot be the steps and the second is exactly the network's T
    batch_major = (
        " They look batch-major [B, T, ...]: simulate takes time-major [T, B, ...] spikes "
        "(jnp.swapaxes(spikes, 0, 1))."
        if available > cfg.num_steps and spikes.shape[1] == cfg.num_steps
        else ""
    )
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
            f"(BNTT keeps one γᵗ and statistics per step); use T <= {cfg.num_steps}.{batch_major}"
        )
    if T > available:
        raise ValueError(
            f"simulate(): T={T} but spikes hold only {available} time steps (leading axis)."
        )
    if batch_major:
        raise ValueError(
            f"simulate(): spikes of shape {tuple(spikes.shape)} hold {available} steps, more "
            f"than the network's {cfg.num_steps}.{batch_major} (If they are time-major, pass "
            f"spikes[:{T}].)"
        )
    return T


def check_params(params: NetworkParams, where: str) -> None:
    """Raise ``ValueError`` naming the first array of ``params`` whose presence or shape
    differs from what :func:`init` builds for ``params.config`` (e.g. malformed
    ``batch_stats`` from a hand-edited or foreign checkpoint)."""
    expected = variable_shapes(params.config)
    for collection in ("params", "batch_stats"):
        want = dict(_flat(expected[collection]))
        have = dict(_flat(getattr(params, collection)))
        for path in want:
            if path not in have:
                raise ValueError(
                    f"{where}: {collection}{path} is missing; a {params.config.arch} with "
                    f"norm={params.config.norm!r} and T={params.config.num_steps} needs it "
                    f"(shape {want[path].shape})."
                )
            shape = tuple(getattr(have[path], "shape", ()))
            if shape != want[path].shape:
                raise ValueError(
                    f"{where}: {collection}{path} has shape {shape}, but the config "
                    f"({params.config.arch}, T={params.config.num_steps}) needs "
                    f"{want[path].shape}."
                )
        extra = sorted(set(have) - set(want))
        if extra:
            raise ValueError(
                f"{where}: {collection}{extra[0]} is not part of a {params.config.arch} with "
                f"norm={params.config.norm!r}; remove it or fix the config."
            )


def _flat(tree: Any) -> list[tuple[str, Any]]:
    if not isinstance(tree, dict):
        return [("", tree)]
    return [(f"[{key!r}]{path}", leaf) for key, sub in tree.items() for path, leaf in _flat(sub)]
