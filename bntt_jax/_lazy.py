"""Lazy re-exports for a package whose names should not import JAX until first used."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


def install(package: str, lazy: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """Make ``package`` import each name of ``lazy`` (name → submodule) on first access.

    Returns the module's ``__getattr__`` and ``__dir__``. Importing a submodule binds it on its
    package, so once ``package.simulate`` (the module) is imported, ``package.simulate`` would
    name the module instead of the function, for functions named like their modules; the
    package's module type binds the function instead.
    """
    module = sys.modules[package]

    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if isinstance(value, types.ModuleType) and lazy.get(name) == name:
                value = getattr(value, name)
            super().__setattr__(name, value)

    module.__class__ = _Package

    def __getattr__(name: str) -> Any:
        where = lazy.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where}"), name)
        setattr(module, name, value)  # later accesses skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(lazy))

    return __getattr__, __dir__
