"""An independent NumPy simulator of a (chain-shaped) NIR graph, written from NIR's node
definitions with the discretisation ``bntt_jax.to_nir`` states: forward Euler, dt = 1.

Nothing here imports bntt_jax. Per step, ``LIF``: ``v += (v_leak − v + R·I)/τ``; ``IF`` and
``I``: ``v += R·I``; a neuron emits ``z = v > v_threshold`` and then ``v = v_reset`` where it
fired. Convolutions are channels-first cross-correlations (PyTorch's convention, NIR's).
"""

from __future__ import annotations

import numpy as np


def _conv2d(x: np.ndarray, node) -> np.ndarray:
    w = np.asarray(node.weight)
    ph, pw = (int(p) for p in node.padding)
    assert tuple(int(s) for s in node.stride) == (1, 1)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    h, wd = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((x.shape[0], w.shape[0], h, wd), x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bchw,oc->bohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return out + np.asarray(node.bias)[None, :, None, None]


def _avg_pool(x: np.ndarray, node) -> np.ndarray:
    kh, kw = (int(k) for k in node.kernel_size)
    assert tuple(int(s) for s in node.stride) == (kh, kw) and not np.any(node.padding)
    b, c, h, w = x.shape
    return x.reshape(b, c, h // kh, kh, w // kw, kw).mean(axis=(3, 5))


def chain(graph) -> list[str]:
    """The node names from the input to the output, following the edges."""
    following = dict(graph.edges)
    assert len(following) == len(graph.edges), "not a chain"
    (name,) = [n for n, node in graph.nodes.items() if type(node).__name__ == "Input"]
    order = [name]
    while order[-1] in following:
        order.append(following[order[-1]])
    return order


def simulate(graph, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``inputs`` ``[T, B, *input_shape]`` through ``graph``; returns every node's output
    ``[T, B, ...]`` (a neuron's: its spikes; an integrator's: its state)."""
    order = chain(graph)
    state: dict[str, np.ndarray] = {}
    outputs: dict[str, list] = {name: [] for name in order}
    for x in inputs:
        for name in order:
            node = graph.nodes[name]
            kind = type(node).__name__
            if kind == "Conv2d":
                x = _conv2d(x, node)
            elif kind == "AvgPool2d":
                x = _avg_pool(x, node)
            elif kind == "Flatten":
                assert int(node.start_dim) == 0 and int(node.end_dim) == -1
                x = x.reshape(x.shape[0], -1)
            elif kind in ("Linear", "Affine"):
                x = x @ np.asarray(node.weight).T
                if kind == "Affine":
                    x = x + np.asarray(node.bias)
            elif kind in ("LIF", "IF", "I"):
                v = state.get(name, np.zeros_like(x))
                if kind == "LIF":
                    v = v + (np.asarray(node.v_leak) - v + np.asarray(node.r) * x) / np.asarray(
                        node.tau
                    )
                else:
                    v = v + np.asarray(node.r) * x
                if kind == "I":
                    x = state[name] = v
                else:
                    z = (v > np.asarray(node.v_threshold)).astype(x.dtype)
                    state[name] = np.where(z > 0, np.asarray(node.v_reset), v).astype(x.dtype)
                    x = z
            else:
                assert kind in ("Input", "Output"), kind
            outputs[name].append(x)
    return {name: np.stack(v) for name, v in outputs.items()}
