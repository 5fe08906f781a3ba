"""Normalisation through time: BNTT and the baselines the papers compare it with.

Each normalisation is one object (:data:`NORMALIZATIONS`, by the name a config gives as
``norm``) that does everything the network needs of it: its variables and their initial
values, its training and evaluation forward, its running update, and says what it is: one γ
per step (``has_gamma_t``, read by the γ-based early exit and the γ analyses), batch
statistics in training (``batch_statistics``: a batch needs two samples), a per-step affine
evaluation for the fused CPU layer (``eval_affine``, where ``fused_eval``), a training
forward fused with the LIF neurons after it (``fire``, where ``fused_train``) and one map
shared by every step, folded into an export's weights (``static_affine``; ``static_reason``
says why not). A new normalisation is one class here and one line in :data:`NORMALIZATIONS`.

* ``bntt`` (Eq. 9, Algorithm 1): one batch norm per time-step, each step with its own batch
  statistics μᵗ, σᵗ (over the batch and space of that step), running averages and γᵗ; no β.
* ``bn``: one standard batch norm shared by all steps (the journal paper's Table 1 "Baseline
  + standard BN"), as one ``BatchNorm2d`` called at every step of the authors' loop.
* ``layernorm``: per sample and step over all features, γ per channel (journal Table 5).
* ``tdbn``: threshold-dependent batch norm (Zheng et al. 2020; journal Table 4).
* ``none``: identity, the plain surrogate-gradient baseline.

The pure functions below take time-major activations ``x`` of shape ``[T, B, ..., C]``
(channels last): statistics go in and out as arrays.
"""

from __future__ import annotations

import difflib
from typing import Any, Protocol

import numpy as np

from bntt_jax._lazy import LazyModule
from bntt_jax.constants import EPS, MOMENTUM

# JAX loads on first use, so that a config can name and check a normalisation without it.
chex, jax, jnp, lax = (LazyModule(m) for m in ("chex", "jax", "jax.numpy", "jax.lax"))


def _per_step(stat: jax.Array, ndim: int) -> jax.Array:
    """Reshape a ``[T, C]`` statistic to broadcast against ``[T, B, ..., C]``."""
    return stat.reshape(stat.shape[:1] + (1,) * (ndim - 2) + stat.shape[-1:])


def bntt_batch_stats(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-time-step batch mean and (biased) variance, Algorithm 1 lines 1–2 / Eq. 1.

    Args:
      x: ``[T, B, ..., C]``.

    Returns:
      ``(μ, σ²)``, each ``[T, C]``: statistics over batch and space of each step.
    """
    axes = tuple(range(1, x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - _per_step(mean, x.ndim)), axis=axes)
    return mean, var


def bntt_normalize(
    x: jax.Array,
    gamma_t: jax.Array,
    mean_t: jax.Array,
    var_t: jax.Array,
    eps: float = EPS,
) -> jax.Array:
    """BNTT of Eq. 9 / Algorithm 1 lines 3–4: ``γᵗ · (x − μᵗ) / sqrt((σᵗ)² + ε)``.

    Args:
      x: ``[T, B, ..., C]`` synaptic input of all steps.
      gamma_t: ``[T, C]`` γᵗ: step t is normalised with row t of each ``[T, C]`` argument.
      mean_t: ``[T, C]`` μᵗ: of :func:`bntt_batch_stats` in training, running in evaluation.
      var_t: ``[T, C]`` (σᵗ)², as ``mean_t``.
      eps: ε for numerical stability (1e-4 as the authors).

    A step whose input is all zero (σ = 0, as in deep layers at t = 0) gives 0, finitely.
    """
    t, c = x.shape[0], x.shape[-1]
    chex.assert_shape(
        [gamma_t, mean_t, var_t],
        (t, c),
        custom_message=f"bntt_normalize(): gamma_t, mean_t, var_t must have shape {(t, c)}",
    )
    # The scale in the promoted dtype of activations and statistics: float32 running
    # statistics must not cap the precision of float64 activations.
    dtype = jnp.result_type(x, mean_t, var_t, gamma_t)
    gamma_t, mean_t, var_t = (a.astype(dtype) for a in (gamma_t, mean_t, var_t))
    inv = lax.rsqrt(var_t + eps) * gamma_t
    return (x - _per_step(mean_t, x.ndim)) * _per_step(inv, x.ndim)


def running_stats_update(
    running_mean: jax.Array,
    running_var: jax.Array,
    batch_mean: jax.Array,
    batch_var: jax.Array,
    count: int,
    momentum: float = MOMENTUM,
) -> tuple[jax.Array, jax.Array]:
    """Exponential moving average of the statistics, Algorithm 1 lines 6–7.

    As the authors' ``BatchNorm2d``: ``new = (1 − m)·old + m·batch`` with the *unbiased*
    variance ``σ²·n/(n − 1)`` (n = ``count`` values per statistic). Algorithm 1 prints the
    average of σ rather than σ²; the released code averages the variance, and so do we.
    No gradient flows into the running statistics."""
    if count < 2:
        raise ValueError(
            f"running statistics need at least 2 values per channel, got {count}: use a batch "
            "of at least 2 in training mode."
        )
    batch_mean, batch_var = lax.stop_gradient(batch_mean), lax.stop_gradient(batch_var)
    unbiased = batch_var * (count / (count - 1))
    new_mean = (1.0 - momentum) * running_mean + momentum * batch_mean
    new_var = (1.0 - momentum) * running_var + momentum * unbiased
    return new_mean, new_var


def sequential_running_update(
    running_mean: jax.Array,
    running_var: jax.Array,
    batch_mean_t: jax.Array,
    batch_var_t: jax.Array,
    count: int,
    momentum: float = MOMENTUM,
) -> tuple[jax.Array, jax.Array]:
    """Shared running statistics ``[C]`` updated by each step's ``[T, C]`` batch statistics
    in step order: :func:`running_stats_update` applied T times, as a BN module reused at
    every step of a time-major loop does (the ``bn`` baseline)."""

    def step(carry, stats):
        return running_stats_update(*carry, *stats, count, momentum), None

    (mean, var), _ = lax.scan(step, (running_mean, running_var), (batch_mean_t, batch_var_t))
    return mean, var


def layer_norm(x: jax.Array, gamma: jax.Array, eps: float = EPS) -> jax.Array:
    """Layer normalisation per sample and per time-step over all features, γ only.

    Args:
      x: ``[T, B, ..., C]``; statistics over the ``...`` and ``C`` axes of each (t, b).
      gamma: ``[C]`` scale shared over time.
    """
    axes = tuple(range(2, x.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * gamma


# --------------------------------------------------------------------- the normalisations
class Normalization(Protocol):
    """What a normalisation of ``[T, B, ..., C]`` synaptic input is and does (module doc)."""

    name: str
    has_gamma_t: bool
    batch_statistics: bool
    fused_eval: bool
    fused_train: bool
    #: why its evaluation is not one affine map shared by every step (``None``: it is)
    static_reason: str | None
    #: the constant each of its parameters starts at (:func:`bntt_jax.init`)
    initial_values: dict[str, float]

    def __call__(
        self,
        module: Any,
        x: jax.Array,
        train: bool,
        num_steps: int,
        eps: float,
        momentum: float,
        threshold: float = 1.0,
    ) -> jax.Array:
        """Normalise ``x`` inside the Flax ``module`` that holds its variables."""

    def eval_affine(
        self, params: Any, stats: Any, steps: int, eps: float, dtype: Any
    ) -> tuple[jax.Array, jax.Array]:
        """Evaluation as ``(x − mean_t)·scale_t``: ``(mean_t, scale_t)``, ``[steps, C]``."""

    def static_affine(
        self, params: Any, stats: Any, eps: float, threshold: float
    ) -> tuple[Any, Any] | None:
        """Evaluation as one map ``x·scale + shift`` per channel, the same at every step
        (NumPy float64 ``(scale, shift)``, ``[C]`` or scalars): what folds into the weights of
        its layer (:func:`bntt_jax.to_nir`); ``None`` when evaluation is no such map, and then
        ``static_reason`` says why."""


def _ones(key: Any, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jnp.ones(shape, dtype)


def _running(module: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The running mean (init 0) and variance (init 1) of ``shape`` in ``batch_stats``."""
    mean = module.variable("batch_stats", "mean", jnp.zeros, shape, jnp.float32)
    var = module.variable("batch_stats", "var", jnp.ones, shape, jnp.float32)
    return mean, var


def _update(module: Any, running: tuple, update: Any, batch: tuple, count: int, momentum: float):
    """The running ``(mean, var)`` variables updated by ``update`` from the batch's statistics
    ``batch``, kept in their storage dtype (float32); nothing while Flax initialises."""
    if not module.is_initializing():
        mean, var = running
        stats = (s.astype(mean.value.dtype) for s in batch)
        mean.value, var.value = update(mean.value, var.value, *stats, count, momentum)


def _first_rows_update(mean, var, batch_mean, batch_var, count, momentum):
    """BNTT's running update of rows ``0 … T−1`` (the batch's T steps); later rows unchanged."""
    t = batch_mean.shape[0]
    new = running_stats_update(mean[:t], var[:t], batch_mean, batch_var, count, momentum)
    return mean.at[:t].set(new[0]), var.at[:t].set(new[1])


class BNTT:
    """Batch Normalization Through Time (Eq. 9, Algorithm 1): ``gamma_t`` and the running
    ``mean``/``var``, all ``[num_steps, C]``; a call with T ≤ num_steps uses (and in training
    updates) rows ``0 … T−1`` only."""

    name = "bntt"
    has_gamma_t = True
    batch_statistics = True
    fused_eval = fused_train = True
    initial_values = {"gamma_t": 1.0}

    @staticmethod
    def _variables(module: Any, x: jax.Array, num_steps: int) -> tuple:
        """``γᵗ`` of ``x``'s steps, the running ``(mean, var)`` and a step's sample count."""
        t, c = x.shape[0], x.shape[-1]
        gamma = module.param("gamma_t", _ones, (num_steps, c), jnp.float32)
        return gamma[:t], _running(module, (num_steps, c)), x.size // (t * c)

    def __call__(self, module, x, train, num_steps, eps, momentum, threshold=1.0):
        gamma, (mean, var), count = self._variables(module, x, num_steps)
        if not train:
            t = x.shape[0]
            return bntt_normalize(x, gamma, mean.value[:t], var.value[:t], eps)
        batch = bntt_batch_stats(x)
        _update(module, (mean, var), _first_rows_update, batch, count, momentum)
        return bntt_normalize(x, gamma, *batch, eps)

    def fire(self, module, x, num_steps, momentum, layer) -> jax.Array:
        """Training: the spikes of ``layer(x, γᵗ) -> (spikes, μ, σ²)``, this normalisation
        and the neurons after it (:func:`bntt_jax.layers.bntt_lif`), with the running update."""
        gamma, running, count = self._variables(module, x, num_steps)
        spikes, *batch = layer(x, gamma)
        _update(module, running, _first_rows_update, batch, count, momentum)
        return spikes

    def eval_affine(self, params, stats, steps, eps, dtype):
        mean, var = stats["mean"][:steps], stats["var"][:steps]
        gamma = params["gamma_t"][:steps]
        dtype = jnp.result_type(dtype, mean, var, gamma)  # as bntt_normalize
        scale = lax.rsqrt(var.astype(dtype) + eps) * gamma.astype(dtype)
        return mean.astype(dtype), scale

    static_reason = (
        "it normalises time-step t with its own γᵗ, μᵗ and σᵗ (Eq. 9): a different "
        "affine map at every step"
    )

    def static_affine(self, params, stats, eps, threshold):
        return None


class TiedBatchNorm:
    """One standard batch norm shared by every step (``bn``), as a single ``BatchNorm2d``
    called at every step of the authors' time-major loop would be: one ``gamma`` (no β) and
    one running ``mean``/``var`` of ``[C]``. In training each step is normalised with its own
    batch statistics, which update the shared running averages once per step in step order;
    in evaluation every step uses the same running statistics. (Statistics pooled over
    time × batch would be tdBN, a different method.)"""

    name = "bn"
    has_gamma_t = False
    batch_statistics = True
    fused_eval = fused_train = False
    initial_values = {"gamma": 1.0}

    def __call__(self, module, x, train, num_steps, eps, momentum, threshold=1.0):
        t, c = x.shape[0], x.shape[-1]
        gamma = module.param("gamma", _ones, (c,), jnp.float32)
        mean, var = _running(module, (c,))
        gamma_t = jnp.broadcast_to(gamma, (t, c))
        if not train:
            mean_t, var_t = (jnp.broadcast_to(v.value, (t, c)) for v in (mean, var))
            return bntt_normalize(x, gamma_t, mean_t, var_t, eps)
        batch = bntt_batch_stats(x)
        count = x.size // (t * c)
        _update(module, (mean, var), sequential_running_update, batch, count, momentum)
        return bntt_normalize(x, gamma_t, *batch, eps)

    static_reason = None

    def static_affine(self, params, stats, eps, threshold):
        scale = np.asarray(params["gamma"], np.float64) / np.sqrt(
            np.asarray(stats["var"], np.float64) + eps
        )
        return scale, -np.asarray(stats["mean"], np.float64) * scale


class LayerNorm:
    """Layer norm per sample and step (``layernorm``): one ``gamma`` ``[C]`` shared over time,
    no β, no statistics kept (the journal paper does not give its affine form; BNTT's γ-only
    form keeps the statistics the only difference)."""

    name = "layernorm"
    has_gamma_t = False
    batch_statistics = False
    fused_eval = fused_train = False
    initial_values = {"gamma": 1.0}

    def __call__(self, module, x, train, num_steps, eps, momentum, threshold=1.0):
        gamma = module.param("gamma", _ones, (x.shape[-1],), jnp.float32)
        return layer_norm(x, gamma.astype(x.dtype), eps)

    static_reason = "it divides by statistics of each sample at each step: not a linear map"

    def static_affine(self, params, stats, eps, threshold):
        return None


class ThresholdDependentBatchNorm:
    """tdBN (``tdbn``; Zheng et al. 2020, the BNTT journal paper's Table 4): one batch norm per
    channel whose statistics pool time × batch × space (one μ, σ² for all T steps), scaled to
    the firing threshold, then an affine map per channel:
    ``y = γ·(α·V_th)·(x − μ)/√(σ² + ε) + β`` with α = 1 and V_th = θ. ``gamma`` and ``beta``
    ``[C]``; running ``mean``/``var`` ``[C]`` updated once per call from the pooled statistics
    (unbiased variance, PyTorch's momentum), used in evaluation."""

    name = "tdbn"
    has_gamma_t = False
    batch_statistics = True
    fused_eval = fused_train = False
    initial_values = {"gamma": 1.0, "beta": 0.0}
    #: α of tdBN: 1 for a plain block (1/√2 in the residual blocks of Zheng et al.).
    alpha = 1.0

    def __call__(self, module, x, train, num_steps, eps, momentum, threshold=1.0):
        c = x.shape[-1]
        gamma = module.param("gamma", _ones, (c,), jnp.float32)
        beta = module.param(
            "beta", lambda key, shape, dtype: jnp.zeros(shape, dtype), (c,), jnp.float32
        )
        mean, var = _running(module, (c,))
        if train:
            axes = tuple(range(x.ndim - 1))  # time, batch and space
            mu = jnp.mean(x, axis=axes)
            sigma2 = jnp.mean(jnp.square(x - mu), axis=axes)
            _update(module, (mean, var), running_stats_update, (mu, sigma2), x.size // c, momentum)
        else:
            mu, sigma2 = mean.value.astype(x.dtype), var.value.astype(x.dtype)
        scale = gamma.astype(x.dtype) * (self.alpha * threshold) * lax.rsqrt(sigma2 + eps)
        return (x - mu) * scale + beta.astype(x.dtype)

    static_reason = None

    def static_affine(self, params, stats, eps, threshold):
        scale = np.asarray(params["gamma"], np.float64) * (self.alpha * threshold)
        scale = scale / np.sqrt(np.asarray(stats["var"], np.float64) + eps)
        mean = np.asarray(stats["mean"], np.float64)
        return scale, np.asarray(params["beta"], np.float64) - mean * scale


class Identity:
    """No normalisation (``none``): the plain surrogate-gradient baseline."""

    name = "none"
    has_gamma_t = False
    batch_statistics = False
    fused_eval = fused_train = False
    initial_values: dict[str, float] = {}

    def __call__(self, module, x, train, num_steps, eps, momentum, threshold=1.0):
        return x

    static_reason = None

    def static_affine(self, params, stats, eps, threshold):
        return np.float64(1.0), np.float64(0.0)


#: Every normalisation by its config name, BNTT first (the default).
NORMALIZATIONS: dict[str, Normalization] = {
    n.name: n
    for n in (BNTT(), TiedBatchNorm(), LayerNorm(), ThresholdDependentBatchNorm(), Identity())
}
#: The names a config's ``norm`` takes.
NORMS = tuple(NORMALIZATIONS)


def normalization(name: str) -> Normalization:
    """The normalisation called ``name``; an unknown name raises ``ValueError`` naming the
    choices."""
    if name not in NORMALIZATIONS:
        close = difflib.get_close_matches(str(name), NORMS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown norm {name!r}; choose one of {NORMS}.{hint}")
    return NORMALIZATIONS[name]
