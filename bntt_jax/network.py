"""The former name of :mod:`bntt_jax.functional` (the functional API: ``NetworkParams``,
``init``, ``simulate``), kept so that code importing it still works."""

from bntt_jax.functional import (  # noqa: F401  (re-exported under the former name)
    NetworkParams,
    RecordedOutput,
    SimulateOutput,
    check_params,
    init,
    simulate,
)
