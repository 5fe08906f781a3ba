"""The former name of :mod:`bntt_jax.ttfs.functional` (the functional API: ``TTFSParams``,
``init``, ``forward``), kept so that code importing it still works."""

from bntt_jax.ttfs.functional import (  # noqa: F401  (re-exported under the former name)
    SurrogateOutput,
    TTFSParams,
    forward,
    init,
)
