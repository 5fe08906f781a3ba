"""The command line's view of a config: ``--set key=value`` parsed by the key's type, applied
to a config, and ``--help``'s list of every key by part. No JAX."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any

from experiments.core.config import (
    METHODS,
    ExperimentConfig,
    key_names,
    key_parts,
    key_types,
    split_optional,
)
from experiments.core.keys import ConfigError, show


def _kind(base: Any) -> str:
    if typing.get_origin(base) is tuple:
        return f"comma-separated {typing.get_args(base)[0].__name__}s"
    return getattr(base, "__name__", str(base))


def _parse(name: str, text: str) -> Any:
    """Parse ``text`` for the key ``name``, by its type."""
    base, optional = key_types()[name]
    if optional and text.lower() in ("none", "null"):
        return None
    try:
        if typing.get_origin(base) is tuple:
            element = typing.get_args(base)[0]
            return tuple(element(v) for v in text.split(",") if v.strip())
        if base is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return base(text)
    except ValueError:
        kind = _kind(base)
        raise ConfigError(
            name,
            text,
            f"expected {kind}{' or none' if optional else ''}.",
            f"--set {name}=<{kind}>.",
        ) from None


def add_set_argument(parser: Any, help: str) -> None:
    """The ``--set KEY=VALUE`` option (repeatable; into ``overrides``) of a command."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` strings as typed values; unknown keys and unparsable values raise
    :class:`ConfigError`. A later ``--set`` of the same key wins."""
    changes: dict[str, Any] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(item, "", "expected key=value.", "--set KEY=VALUE; see --help.")
        if name not in key_types():
            close = difflib.get_close_matches(name, key_names(), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(
                name, value, "unknown config key.", f"{hint}The keys are listed by --help."
            )
        changes[name] = _parse(name, value.strip())
    return changes


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``key=value`` strings; unknown keys and bad values raise :class:`ConfigError`."""
    return config.replace(**parse_overrides(overrides))


def describe_keys() -> str:
    """The ``--set`` keys by part, one line each: type, default and what it is (``--help``)."""
    lines = []
    for title, part, fields in key_parts():
        hints = typing.get_type_hints(part)
        if " " in title:  # a method's part
            method, part = title.split()
            heading = f"{method}: {part} ({METHODS[method].summary})"
        else:
            heading = f"{title} keys"
        lines.append(f" {heading}:")
        for f in fields:
            base, optional = split_optional(hints[f.name])
            kind = _kind(base) + (" or none" if optional else "")
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            lines.append(
                f"  {f.name:20s} {kind:28s} default {show(default)!s:8s}  {f.metadata['help']}"
            )
    return "\n".join(lines)
