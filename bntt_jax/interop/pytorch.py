"""Convert the authors' PyTorch BNTT checkpoints to :class:`NetworkParams` and back.

The authors' ``state_dict`` (``SNN_VGG9_BNTT`` / ``SNN_VGG11_BNTT``) holds

* ``conv{i}.weight`` ``[out, in, 3, 3]`` (OIHW), no bias;
* ``bntt{i}.{t}.weight`` ``[C]`` (γᵗ), ``bntt{i}.{t}.running_mean`` / ``running_var`` ``[C]``
  and ``bntt{i}.{t}.num_batches_tracked``, one ``BatchNorm2d`` per layer and step, no bias;
* ``fc1.weight`` ``[out, in]`` with ``in`` flattened in PyTorch's (C, H, W) order,
  ``bntt_fc.{t}.*`` and the readout ``fc2.weight`` ``[classes, in]``.

Our layout is channels-last: convs are HWIO, dense weights ``[in, out]``, and ``fc1`` reads
a (H, W, C)-flattened input, so its rows are permuted accordingly. The mapping form needs no
torch; :func:`from_torch` also accepts a ``.pth.tar`` path when torch is installed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from bntt_jax.config import DEFAULT_LEAK, NetworkConfig
from bntt_jax.functional import NetworkParams

_TORCH_ARCHS = ("vgg9", "vgg11")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _load_mapping(source: Any) -> dict[str, np.ndarray]:
    if isinstance(source, str | os.PathLike):
        try:
            import torch  # optional: only to read a .pth.tar
        except ImportError as err:
            raise ImportError(
                f"from_torch(): reading {os.fspath(source)!r} needs PyTorch, which is not "
                "installed. Install it (pip install torch), or load the file where torch is "
                "available and pass {key: tensor.numpy()} instead."
            ) from err
        if not os.path.exists(source):
            raise FileNotFoundError(f"from_torch(): no checkpoint file at {os.fspath(source)!r}.")
        source = torch.load(os.fspath(source), map_location="cpu", weights_only=False)
    if not isinstance(source, Mapping):
        raise TypeError(
            "from_torch(): expected a state_dict mapping (key -> array), a checkpoint dict with "
            f"a 'state_dict' entry, or a path; got {type(source).__name__}."
        )
    if "state_dict" in source and isinstance(source["state_dict"], Mapping):
        source = source["state_dict"]  # the authors' {'global_step', 'state_dict', 'accuracy'}
    out = {}
    for key, value in source.items():
        key = key[len("module.") :] if key.startswith("module.") else key  # DataParallel
        out[key] = _to_numpy(value)
    return out


def _torch_layer_names(config: NetworkConfig) -> list[tuple[str, str]]:
    """(our layer name, the authors' BN list name) for every spiking layer."""
    return [
        (spec.name, "bntt_fc" if spec.kind == "fc" else f"bntt{spec.name[len('conv') :]}")
        for spec in config.layers
    ]


def _fc1_input(config: NetworkConfig) -> tuple[int, int]:
    """(side, channels) of the pooled feature map that ``fc1`` flattens."""
    last = [spec for spec in config.layers if spec.kind == "conv"][-1]
    return {"avg2": last.size // 2, "global": 1}.get(last.pool, last.size), last.features


def from_torch(
    state_dict: Mapping[str, Any] | str | os.PathLike,
    arch: str,
    *,
    leak: float | None = None,
    img_size: int | None = None,
    **config_kwargs: Any,
) -> NetworkParams:
    """Convert the authors' BNTT VGG9/VGG11 checkpoint into :class:`NetworkParams`.

    Args:
      state_dict: their ``model.state_dict()`` as a mapping of key → array (numpy or torch),
        the saved ``{'state_dict': ...}`` dict, or a path to a ``.pth.tar`` (needs torch).
        A ``module.`` prefix (``DataParallel``) is dropped.
      arch: ``'vgg9'`` or ``'vgg11'``.
      leak: λ of the run (not stored in the checkpoint). Default 0.95 (VGG9) or 0.99
        (VGG11), the authors' settings.
      img_size: input side; inferred from ``fc1`` for VGG9, 32 by default for VGG11 (whose
        global pool hides it).
      **config_kwargs: other :class:`NetworkConfig` fields (``threshold``, ``eps``, …).

    ``num_steps``, ``num_classes`` and ``in_channels`` are read off the arrays.
    """
    if arch not in _TORCH_ARCHS:
        raise ValueError(f"from_torch(): arch must be one of {_TORCH_ARCHS}, got {arch!r}.")
    sd = _load_mapping(state_dict)
    for key in ("conv1.weight", "fc1.weight", "fc2.weight"):
        if key not in sd:
            raise KeyError(f"from_torch(): the state_dict has no {key!r}; is it a BNTT {arch}?")
    config = _torch_config(sd, arch, leak, img_size, config_kwargs)
    take = _Reader(sd, config)
    params, stats = _torch_layers(config, take)
    unknown = sorted(set(sd) - take.expected)
    if unknown:
        raise KeyError(
            f"from_torch(): unexpected keys for a BNTT {arch} with T={config.num_steps}: "
            f"{unknown[:8]}{' …' if len(unknown) > 8 else ''} (a bias or BN shift β? the authors' "
            "networks have neither)."
        )
    return NetworkParams(params=params, batch_stats=stats, config=config)


def _torch_config(
    sd: Mapping[str, Any], arch: str, leak: float | None, img_size: int | None, kwargs: dict
) -> NetworkConfig:
    """The :class:`NetworkConfig` of a checkpoint: T, the classes and input channels read off
    its arrays, VGG9's image size off ``fc1``."""
    steps = {int(m.group(1)) for k in sd if (m := re.fullmatch(r"bntt1\.(\d+)\.weight", k))}
    if not steps or steps != set(range(len(steps))):
        raise KeyError(
            "from_torch(): expected per-step BNTT keys 'bntt1.0.weight' … 'bntt1.{T-1}.weight', "
            f"found steps {sorted(steps)}."
        )
    fc1_in = sd["fc1.weight"].shape[1]
    if arch == "vgg9" and img_size is None:
        side = 8 * math.isqrt(fc1_in // 256)
        if (side // 8) ** 2 * 256 != fc1_in:
            raise ValueError(
                f"from_torch(): fc1.weight has {fc1_in} inputs; VGG9 needs (S/8)²·256."
            )
        img_size = side
    return NetworkConfig(
        arch=arch,
        num_steps=len(steps),
        num_classes=int(sd["fc2.weight"].shape[0]),
        img_size=img_size,
        in_channels=int(sd["conv1.weight"].shape[1]),
        leak=DEFAULT_LEAK[arch] if leak is None else leak,
        norm="bntt",
        **kwargs,
    )


class _Reader:
    """Reads the checkpoint's arrays by key, each checked (shape, numbers, finite, variances
    ≥ 0) and as float32; ``expected`` collects every key the network has."""

    def __init__(self, sd: Mapping[str, Any], config: NetworkConfig) -> None:
        self.sd, self.config, self.expected = sd, config, set()

    def __call__(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        config = self.config
        if key not in self.sd:
            raise KeyError(
                f"from_torch(): missing key {key!r} for a {config.arch} with T={config.num_steps}."
            )
        value = self.sd[key]
        if value.shape != shape:
            raise ValueError(
                f"from_torch(): {key!r} has shape {value.shape}, a {config.arch} with img_size "
                f"{config.img_size} expects {shape}."
            )
        self.expected.add(key)
        if not np.issubdtype(value.dtype, np.number):
            raise TypeError(f"from_torch(): {key!r} has dtype {value.dtype}; expected numbers.")
        if not np.isfinite(value).all():
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise ValueError(
                f"from_torch(): {key!r} holds {bad} NaN or Inf values; the checkpoint is "
                "damaged or was saved from a diverged run."
            )
        if key.endswith(".running_var") and (value < 0).any():
            raise ValueError(
                f"from_torch(): {key!r} has negative running variances (min {value.min():g}); "
                "a variance is never negative, so the checkpoint is damaged."
            )
        return value.astype(np.float32)


def _torch_layers(config: NetworkConfig, take: _Reader) -> tuple[dict, dict]:
    """The params and batch statistics of every layer, from the authors' names and layouts."""
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    in_ch = config.in_channels
    side, channels = _fc1_input(config)
    for spec, (name, bn) in zip(config.layers, _torch_layer_names(config), strict=True):
        if spec.kind == "conv":
            w = take(f"{name}.weight", (spec.features, in_ch, 3, 3))
            params[name] = {"kernel": jnp.asarray(w.transpose(2, 3, 1, 0))}  # OIHW -> HWIO
        else:  # fc1: torch flattens (C, H, W), we flatten (H, W, C)
            w = take(f"{name}.weight", (spec.features, in_ch * side * side))
            w = w.reshape(spec.features, channels, side, side).transpose(2, 3, 1, 0)
            params[name] = {"kernel": jnp.asarray(w.reshape(-1, spec.features))}
            side = 1
        in_ch = c = spec.features
        per_step = {
            field: np.stack([take(f"{bn}.{t}.{field}", (c,)) for t in range(config.num_steps)])
            for field in ("weight", "running_mean", "running_var")
        }
        take.expected.update(f"{bn}.{t}.num_batches_tracked" for t in range(config.num_steps))
        params[f"norm_{name}"] = {"gamma_t": jnp.asarray(per_step["weight"])}
        stats[f"norm_{name}"] = {
            "mean": jnp.asarray(per_step["running_mean"]),
            "var": jnp.asarray(per_step["running_var"]),
        }
    readout = config.readout_name
    kernel = take(f"{readout}.weight", (config.num_classes, in_ch)).T
    params[readout] = {"kernel": jnp.asarray(kernel)}
    return params, stats


def to_torch(params: NetworkParams) -> dict[str, np.ndarray]:
    """Inverse of :func:`from_torch`: the authors' ``state_dict`` keys → numpy arrays.

    Load it into their model with
    ``model.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(p).items()})``.
    ``num_batches_tracked`` (unused with momentum 0.1) is written as 0.
    """
    if not isinstance(params, NetworkParams):
        raise TypeError(f"to_torch(): expected NetworkParams, got {type(params).__name__}.")
    cfg = params.config
    if cfg.arch not in _TORCH_ARCHS or cfg.norm != "bntt":
        raise ValueError(
            "to_torch(): the authors' code has BNTT VGG9/VGG11 only; got "
            f"arch={cfg.arch!r}, norm={cfg.norm!r}."
        )
    out: dict[str, np.ndarray] = {}
    side, channels = _fc1_input(cfg)
    for spec, (name, bn) in zip(cfg.layers, _torch_layer_names(cfg), strict=True):
        kernel = np.asarray(params.params[name]["kernel"], np.float32)
        if spec.kind == "conv":
            out[f"{name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        else:  # fc1: (H, W, C) rows back to torch's (C, H, W) columns
            w = kernel.reshape(side, side, channels, spec.features).transpose(3, 2, 0, 1)
            out[f"{name}.weight"] = np.ascontiguousarray(w.reshape(spec.features, -1))
        gamma_t = np.asarray(params.params[f"norm_{name}"]["gamma_t"], np.float32)
        mean = np.asarray(params.batch_stats[f"norm_{name}"]["mean"], np.float32)
        var = np.asarray(params.batch_stats[f"norm_{name}"]["var"], np.float32)
        for t in range(cfg.num_steps):
            out[f"{bn}.{t}.weight"] = gamma_t[t].copy()
            out[f"{bn}.{t}.running_mean"] = mean[t].copy()
            out[f"{bn}.{t}.running_var"] = var[t].copy()
            out[f"{bn}.{t}.num_batches_tracked"] = np.array(0, np.int64)
    readout = cfg.readout_name
    out[f"{readout}.weight"] = np.ascontiguousarray(
        np.asarray(params.params[readout]["kernel"], np.float32).T
    )
    return out
