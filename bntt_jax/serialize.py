"""Configs to and from JSON-ready dicts: the one ``to_dict`` / ``from_dict`` every config uses.

A config is a frozen dataclass. In its dict, tuples are lists and a field typed as another
dataclass is that dataclass's dict; :func:`from_dict` turns both back by the field's type
hint. Plain Python, no JAX.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class UnknownKeyError(ValueError):
    """A dict holds a key its config class does not have; ``key`` and ``known`` say which."""

    def __init__(self, cls: type, key: str, known: list[str]) -> None:
        super().__init__(f"{cls.__name__}: unknown key {key!r}; the keys are {', '.join(known)}.")
        self.key, self.known = key, known


def to_dict(config: Any) -> dict[str, Any]:
    """``config`` as a JSON-ready dict (tuples as lists, nested configs as dicts)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Each field's type hint with ``None`` taken out of an optional one."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            hint = rest[0] if len(rest) == 1 else hint
        out[name] = hint
    return out


def from_dict(cls: type[T], data: dict[str, Any], **fixed: Any) -> T:
    """The ``cls`` of :func:`to_dict`'s ``data``: lists become tuples where the field is a
    tuple, dicts become the field's dataclass. ``fixed`` fields are given, not read. A key
    ``cls`` does not have raises :class:`UnknownKeyError`."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UnknownKeyError(cls, unknown[0], names)
    hints = field_types(cls)
    values = {key: _typed(hints.get(key), value) for key, value in data.items()}
    return cls(**{**values, **fixed})


def _typed(hint: Any, value: Any) -> Any:
    if isinstance(value, list) and typing.get_origin(hint) is tuple:
        return tuple(value)
    if isinstance(value, dict) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    return value
