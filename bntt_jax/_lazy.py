"""Lazy loading, so that ``import bntt_jax`` and the configs never import JAX until used.

* :func:`install`: a package's public names, each imported from its module on first access;
* :class:`LazyModule`: a module imported on first attribute access, for a JAX-free module
  whose functions compute with JAX (:mod:`bntt_jax.norms`).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


class LazyModule:
    """Stands for the module ``name`` and imports it on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


def install(package: str, api: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """Make ``package`` import each public name of ``api`` on first access.

    ``api`` maps a name to the module that defines it (``"bntt_jax.lif"``); a name that maps
    to itself as a module path's last part with ``":module"`` appended is the module itself
    (``{"energy": "bntt_jax.metrics.energy:module"}``). Returns the package's ``__getattr__``
    and ``__dir__``.

    Importing a submodule binds it on its package, so once ``package.spike`` (the module) is
    imported, ``package.spike`` would name the module instead of the function, for functions
    named like their modules; the package's module type binds the function instead.
    """
    module = sys.modules[package]

    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            where = api.get(name)
            if isinstance(value, types.ModuleType) and where and not where.endswith(":module"):
                value = getattr(value, name)
            super().__setattr__(name, value)

    module.__class__ = _Package

    def __getattr__(name: str) -> Any:
        where = api.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path, _, kind = where.partition(":")
        loaded = importlib.import_module(path)
        value = loaded if kind == "module" else getattr(loaded, name)
        setattr(module, name, value)  # later accesses skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(api))

    return __getattr__, __dir__
