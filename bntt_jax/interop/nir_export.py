"""Export to NIR, the Neuromorphic Intermediate Representation (the ``nir`` package).

NIR's neurons are continuous-time: ``LIF`` is ``τ·dv/dt = (v_leak − v) + R·I``, ``IF`` is
``dv/dt = R·I``, ``I`` (integrator) is ``dv/dt = R·I``; a neuron spikes when ``v > v_threshold``
and then **resets to** ``v_reset``. With **dt = 1 and forward Euler** (the discretisation this
export states, in the graph's ``metadata``), ``v ← v + (v_leak − v + R·I)/τ`` with
``τ = 1/(1 − λ)``, ``R = τ``, ``v_leak = 0`` is our ``u_t = λ·m_{t−1} + I_t`` (BNTT paper
Eq. 4), and the reset to ``v_reset = 0`` is our hard reset. So :func:`to_nir` exports exactly:

* a BNTT-family network (:class:`bntt_jax.NetworkParams`) with ``reset="hard"`` and
  ``norm="none"``, or ``norm="bn"`` (one batch norm shared by all steps) folded into the
  weights: ``W' = W·γ/√(σ² + ε)``, bias ``−μ·γ/√(σ² + ε)``, or ``norm="tdbn"`` likewise (its
  scale times α·V_th, its bias plus β); a leak λ = 1 becomes ``IF``;
* the ANN-to-SNN conversion (:mod:`bntt_jax.conversion`) with ``reset="zero"``: ``IF``
  neurons, each layer's bias scaled as the simulation scales it. It fires at ``u ≥ θ``; NIR at
  ``v > v_threshold``, so the exported threshold is the float32 number just below θ, which
  makes the two tests agree for every float32 ``v``.

The accumulating readout (Eq. 5, ``(1/T)·Σ_t W·o_t``) is a ``Linear`` into an integrator ``I``
with ``R = 1/T`` (the conversion's summed readout: ``R = 1``): its state after T steps is the
logits. Input spikes enter as ``(C, H, W)`` (or ``(features,)``) per step: NIR's convolutions
are channels-first, so kernels are transposed to ``(out, in, kH, kW)`` and the first dense
layer's rows are permuted from our ``(H, W, C)`` flattening to ``(C, H, W)``.

Refused, with the reason (a ``ValueError``), because no NIR graph computes them:

* the soft reset (``m = u − θ·o``, the papers' default): NIR neurons only reset to a value;
* BNTT (Eq. 9): a different affine map ``γᵗ·(x − μᵗ)/σᵗ`` at every step, and NIR's nodes are
  time-invariant; layer norm: statistics of each sample, not a linear map;
* TTFS networks (Park & Yoon): one spike per neuron against the exponential kernel's
  decaying threshold (their Eq. 1–3), which no NIR neuron has; ANNs: no spiking neurons.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from bntt_jax.baselines.ann import ANNParams
from bntt_jax.baselines.conversion import ConvertedNetwork, bias_scales
from bntt_jax.config import NetworkConfig
from bntt_jax.functional import NetworkParams
from bntt_jax.ttfs.functional import TTFSParams

#: The discretisation the exported parameters assume, stored in the graph's metadata.
DISCRETISATION = "forward Euler, dt = 1"


def _nir() -> Any:
    try:
        import nir  # an optional dependency: only an export needs it
    except ImportError as err:
        raise ImportError(
            "to_nir() needs the nir package: pip install nir (or pip install 'bntt-jax[nir]')."
        ) from err
    return nir


def _refuse(what: str, why: str, fix: str) -> ValueError:
    return ValueError(f"to_nir(): {what} cannot be exported exactly: {why} {fix}")


def _check_bntt(config: NetworkConfig) -> None:
    """Every reason a BNTT-family network has no exact NIR form, refused at once (fixing one
    must not reveal the next)."""
    reasons = []
    if config.reset != "hard":
        reasons.append(
            (
                "a network with the soft reset (m = u − θ·o, the BNTT papers' Eq. 4)",
                "NIR's LIF and IF neurons reset to v_reset after a spike and have no "
                "subtractive reset.",
                "Train with the hard reset: bj.init(..., reset='hard'), or --set reset=hard.",
            )
        )
    reason = config.normalization.static_reason
    if reason is not None:
        reasons.append(
            (
                f"norm={config.norm!r}",
                f"{reason}, and NIR's nodes are the same at every step.",
                "Train with a normalisation that evaluates as one affine map: norm='none', "
                "'bn' or 'tdbn' (folded into the weights).",
            )
        )
    if len(reasons) == 1:
        raise _refuse(*reasons[0])
    if reasons:
        listed = " ".join(
            f"({i}) {what} cannot be exported exactly: {why} {fix}"
            for i, (what, why, fix) in enumerate(reasons, 1)
        )
        raise ValueError(f"to_nir(): {len(reasons)} reasons, each with its fix: {listed}")


def _folded(params: Any, config: NetworkConfig) -> tuple[dict, dict]:
    """Kernels (our layout) and biases of every layer, each layer's normalisation folded in
    (``static_affine``: ``W' = W·scale``, bias ``shift``; none for ``norm='none'``)."""
    p, stats = params.params, params.batch_stats or {}
    norm = config.normalization
    weights, biases = {}, {}
    for spec in config.layers:
        key = f"norm_{spec.name}"
        scale, shift = norm.static_affine(
            p.get(key, {}), stats.get(key, {}), config.eps, config.threshold
        )
        weights[spec.name] = np.asarray(p[spec.name]["kernel"], np.float64) * scale
        biases[spec.name] = None if np.ndim(shift) == 0 else shift
    weights[config.readout_name] = np.asarray(p[config.readout_name]["kernel"], np.float64)
    biases[config.readout_name] = None
    return weights, biases


def _graph(
    config: NetworkConfig,
    weights: dict,
    biases: dict,
    neuron: Any,
    readout_r: float,
    metadata: dict[str, Any],
) -> Any:
    """The feed-forward graph: input, per layer synapses → neurons (→ pool), flatten before the
    first dense layer after a convolution, the readout into an integrator, output."""
    nir = _nir()
    shape = config.input_shape
    shape = (shape[-1], *shape[:-1]) if len(shape) == 3 else shape  # channels first
    chain = [("input", nir.Input(input_type=np.array(shape)))]
    for spec in [*config.layers, None]:
        name = config.readout_name if spec is None else spec.name
        synapses, shape = _synapses(nir, name, spec, weights[name], biases[name], shape)
        chain += synapses
        if spec is None:
            chain.append(("readout", nir.I(r=np.full(shape, readout_r, np.float32))))
            break
        chain.append((f"{name}.neuron", neuron(spec.name, shape)))
        pool, shape = _pool(nir, spec, shape)
        chain += [(f"{name}.pool", pool)] if pool is not None else []
    chain.append(("output", nir.Output(output_type=np.array(shape))))
    edges = [(a, b) for (a, _), (b, _) in itertools.pairwise(chain)]
    metadata = {"discretisation": DISCRETISATION, "producer": "bntt-jax", **metadata}
    return nir.NIRGraph(nodes=dict(chain), edges=edges, metadata=metadata)


def _synapses(nir: Any, name: str, spec: Any, w: Any, b: Any, shape: tuple) -> tuple:
    """A layer's synapses as NIR nodes (a convolution; or a flatten where needed and a linear
    or affine map) and the shape after them, channels first."""
    f32 = np.float32
    if spec is not None and spec.kind == "conv":
        kernel = np.transpose(w, (3, 2, 0, 1)).astype(f32)  # HWIO -> OIHW
        bias = np.zeros(w.shape[-1], f32) if b is None else b.astype(f32)
        conv = nir.Conv2d(
            input_shape=tuple(shape[1:]),
            weight=kernel,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=bias,
        )
        return [(name, conv)], (w.shape[-1], *shape[1:])
    nodes = []
    if len(shape) == 3:  # our rows read (H, W, C); NIR flattens (C, H, W)
        c, h, wd = shape
        w = w.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(c * h * wd, -1)
        nodes.append(("flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)))
    weight = w.T.astype(f32)
    linear = (
        nir.Linear(weight=weight) if b is None else nir.Affine(weight=weight, bias=b.astype(f32))
    )
    return [*nodes, (name, linear)], (w.shape[-1],)


def _pool(nir: Any, spec: Any, shape: tuple) -> tuple:
    """A layer's pooling as a NIR node (``None`` if it has none) and the shape after it."""
    if spec.pool == "avg2":
        two = np.array([2, 2])
        node = nir.AvgPool2d(kernel_size=two, stride=two, padding=0 * two)
        return node, (shape[0], shape[1] // 2, shape[2] // 2)
    if spec.pool == "global":
        size = np.array(shape[1:])
        node = nir.AvgPool2d(kernel_size=size, stride=size, padding=np.array([0, 0]))
        return node, (shape[0], 1, 1)
    return None, shape


def _bntt_graph(params: Any) -> Any:
    nir = _nir()
    config: NetworkConfig = params.config
    _check_bntt(config)
    weights, biases = _folded(params, config)

    def neuron(_: str, shape: tuple[int, ...]) -> Any:
        full = np.ones(shape, np.float32)
        theta, reset = config.threshold * full, 0.0 * full
        if config.leak == 1.0:  # no leak: dv/dt = R·I with R = 1
            return nir.IF(r=full, v_threshold=theta, v_reset=reset)
        tau = np.float32(1.0 / (1.0 - config.leak)) * full
        return nir.LIF(tau=tau, r=tau.copy(), v_leak=0.0 * full, v_threshold=theta, v_reset=reset)

    meta = {
        "network": "BNTT-family LIF network, hard reset",
        "num_steps": config.num_steps,
        "readout": "logits = state of 'readout' after num_steps steps (Eq. 5)",
    }
    return _graph(config, weights, biases, neuron, 1.0 / config.num_steps, meta)


def _converted_graph(net: Any) -> Any:
    nir = _nir()
    config: NetworkConfig = net.config
    if net.reset != "zero":
        raise _refuse(
            "a conversion with the subtractive reset (u −= θ)",
            "NIR's IF neurons reset to v_reset after a spike and have no subtractive reset.",
            "Convert with reset='zero' (--set conversion_reset=zero).",
        )
    scales = bias_scales(config, net.thresholds)
    weights = {k: np.asarray(v, np.float64) for k, v in net.weights.items()}
    biases = {k: np.asarray(net.biases[k], np.float64) * float(scales[k]) for k in weights}

    def neuron(name: str, shape: tuple[int, ...]) -> Any:
        full = np.ones(shape, np.float32)
        theta = np.nextafter(np.float32(net.thresholds[name]), np.float32(-np.inf))
        return nir.IF(r=full, v_threshold=theta * full, v_reset=0.0 * full)

    meta = {
        "network": "ANN-to-SNN conversion, IF neurons, reset to zero",
        "readout": "prediction = argmax of the state of 'readout' (summed)",
    }
    return _graph(config, weights, biases, neuron, 1.0, meta)


def to_nir(network: Any, path: str | os.PathLike | None = None) -> Any:
    """The NIR graph (``nir.NIRGraph``) that computes ``network`` exactly (module docstring),
    written to ``path`` (HDF5, ``nir.write``) when given.

    Args:
      network: a :class:`bntt_jax.NetworkParams` trained with ``reset="hard"`` and
        ``norm="none"`` or ``"bn"``, or a converted network (:func:`bntt_jax.conversion.convert`
        with ``reset="zero"``).
      path: where to write the graph; nothing is written when the network is refused.

    Raises:
      ValueError: the network has no exact NIR form; the message says why and what to train
        instead. TypeError: not a network this library makes. ImportError: no ``nir``.
    """
    if isinstance(network, NetworkParams):
        graph = _bntt_graph(network)
    elif isinstance(network, ConvertedNetwork):
        graph = _converted_graph(network)
    elif isinstance(network, TTFSParams):
        raise _refuse(
            "a TTFS network",
            "each neuron fires once, when its membrane crosses the exponential kernel's "
            "decaying threshold (Park & Yoon, Eq. 1–3); no NIR neuron has that threshold.",
            "No NIR export exists for it.",
        )
    elif isinstance(network, ANNParams):
        raise _refuse(
            "an ANN",
            "it has no spiking neurons.",
            "Convert it first: bj.conversion.convert(ann, images, reset='zero').",
        )
    else:
        raise TypeError(
            f"to_nir(): expected NetworkParams or a ConvertedNetwork, got {type(network).__name__}."
        )
    if path is not None:
        _nir().write(path, graph)
    return graph
