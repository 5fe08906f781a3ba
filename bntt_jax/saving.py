"""A trained network in one checksummed file, independent of any results folder.

:func:`save` writes a :class:`~bntt_jax.NetworkParams` (BNTT), a
:class:`~bntt_jax.ttfs.TTFSParams` or a :class:`~bntt_jax.baselines.ann.ANNParams`, with its
parameters, running statistics and config, to one ``.npz`` file; :func:`load` reads it back as
the same object, after checking it. The file is a plain NumPy archive (``np.load`` reads it;
nothing is pickled):

* ``params/<layer>/<name>`` and ``batch_stats/<layer>/<name>``: the arrays;
* ``__meta__``: UTF-8 JSON ``{"format": "bntt-jax network", "version": 1, "kind", "config",
  "sha256"}``, where ``sha256`` covers the kind, the config and every array's name, dtype,
  shape and bytes, so a flipped bit anywhere is found on loading.

It is written to a temporary file and renamed into place, so a crash never leaves half a file
under ``path``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT, VERSION = "bntt-jax network", 1
#: kind -> (module, class) of the network, and (module, class) of its config.
KINDS = {
    "NetworkParams": ("bntt_jax.functional", "NetworkParams", "bntt_jax.config", "NetworkConfig"),
    "TTFSParams": ("bntt_jax.ttfs.functional", "TTFSParams", "bntt_jax.ttfs.config", "TTFSConfig"),
    "ANNParams": ("bntt_jax.baselines.ann", "ANNParams", "bntt_jax.config", "NetworkConfig"),
}


def _flatten(tree: dict[str, Any], prefix: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        if "/" in key:
            raise ValueError(f"save(): a parameter name holds '/': {key!r}.")
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}/{key}")
        else:
            out[f"{prefix}/{key}"] = np.asarray(value)
    return out


def _unflatten(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in arrays.items():
        parts = name.split("/")
        if parts[0] != prefix:
            continue
        node = tree
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def _digest(kind: str, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps([kind, config], sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(path: str | Path, net: Any) -> Path:
    """Write ``net`` (parameters, running statistics, config) to one checksummed file at
    ``path`` (module docstring); returns the path. Any existing file there is replaced only
    once the new one is complete."""
    kind = type(net).__name__
    if kind not in KINDS:
        raise TypeError(
            f"save(): expected NetworkParams, TTFSParams or ANNParams, got {kind}; a results "
            "folder's network comes from experiments.load_checkpoint(folder)."
        )
    arrays = _flatten(net.params, "params") | _flatten(net.batch_stats, "batch_stats")
    config = net.config.to_dict()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "config": config,
        "sha256": _digest(kind, config, arrays),
    }
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> Any:
    """The network :func:`save` wrote to ``path``, as the same class, after checking its
    checksum (``ValueError`` naming the file if anything in it changed)."""
    import jax.numpy as jnp  # JAX: the arrays become device arrays

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"load(): no file at {path}.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"load(): {path} is damaged or no bntt-jax network ({err}).") from None
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        if meta["format"] != FORMAT:
            raise KeyError("format")
    except (KeyError, ValueError, UnicodeDecodeError):
        raise ValueError(
            f"load(): {path} is no bntt-jax network file (bntt_jax.save writes them)."
        ) from None
    if meta["version"] > VERSION:
        raise ValueError(
            f"load(): {path} was written by a newer bntt-jax (file version {meta['version']}, "
            f"this one reads up to {VERSION}); upgrade bntt-jax."
        )
    if _digest(meta["kind"], meta["config"], arrays) != meta["sha256"]:
        raise ValueError(
            f"load(): {path} is damaged: its checksum does not match its content (a changed "
            "array, name or config). It is refused rather than loaded wrong."
        )
    module, cls, config_module, config_cls = KINDS[meta["kind"]]
    config = getattr(importlib.import_module(config_module), config_cls).from_dict(meta["config"])
    as_jax = {name: jnp.asarray(a) for name, a in arrays.items()}
    return getattr(importlib.import_module(module), cls)(
        params=_unflatten(as_jax, "params"),
        batch_stats=_unflatten(as_jax, "batch_stats"),
        config=config,
    )
