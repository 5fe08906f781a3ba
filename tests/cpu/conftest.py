"""Fixtures shared by the tests of the compiled CPU code."""

import jax
import pytest


@pytest.fixture
def retrace(monkeypatch):
    """``monkeypatch.setattr`` that also drops JAX's traces: a custom VJP's branches keep the
    module constants and functions of their first trace. Dropped again after the test."""

    def setattr(*args):
        monkeypatch.setattr(*args)
        jax.clear_caches()

    yield setattr
    monkeypatch.undo()
    jax.clear_caches()
