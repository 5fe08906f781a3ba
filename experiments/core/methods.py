"""The registry of training methods, as the configs know them without JAX: each method's
:class:`MethodSpec` (its keys, and how to load its implementation), registered by its
``config`` module."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, NamedTuple

from experiments.core.keys import ConfigError


class MethodSpec(NamedTuple):
    """What the configs know of a training method, without JAX.

    Attributes:
      name: the ``method`` key's value.
      summary: one line for ``--help``.
      network: its network keys: a frozen dataclass with ``build(facts)`` (its
        :class:`bntt_jax.NetworkConfig` or :class:`bntt_jax.ttfs.TTFSConfig`) and
        ``check(config)`` (what spans its keys and the shared ones).
      options: its own training options (a frozen dataclass), or ``None``.
      load: returns its implementation, an :class:`experiments.core.method.Method`
        (imported on first use, with JAX).
      unrolled: its training step unrolls the network over ``num_steps`` (BPTT), so its
        memory grows with T (:mod:`experiments.core.memory`).
      analysed: the analyses of :mod:`experiments.analyses` read its finished runs (its
        ``Method.subjects``); ``python -m experiments.analyze`` refuses the others' runs.
    """

    name: str
    summary: str
    network: type
    options: type | None
    load: Callable[[], Any]
    unrolled: bool = False
    analysed: bool = False


def analysed_methods() -> tuple[str, ...]:
    """The methods whose finished runs the analyses read (:attr:`MethodSpec.analysed`)."""
    return tuple(name for name, spec in METHODS.items() if spec.analysed)


#: The registered methods, by name (each method's package registers itself).
METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"method {spec.name!r} is registered twice")
    METHODS[spec.name] = spec
    return spec


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name`` (:class:`ConfigError` naming the choices otherwise)."""
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        raise ConfigError(
            "method",
            name,
            f"method must be one of {', '.join(METHODS)}.",
            f"--set method={close[0] if close else '<one of them>'}",
        )
    return METHODS[name]
