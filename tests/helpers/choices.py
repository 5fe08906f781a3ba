"""Forcing the compiled code's choices (``bntt_jax.cpu.choice``) in a test, on any target."""

import dataclasses

from bntt_jax.cpu import choice


def targets_with(**fields):
    """``choice.TARGETS`` with ``fields`` of every target's every ``MapChoice`` replaced (and a
    ``masked_rate`` also as every target's ``dense_masked_rate``): for ``retrace(choice,
    "TARGETS", ...)``, so that a test forces one branch whatever the machine's target."""
    out = {}
    for width, target in choice.TARGETS.items():
        maps = tuple((least, dataclasses.replace(pick, **fields)) for least, pick in target.maps)
        dense = fields.get("masked_rate", target.dense_masked_rate)
        out[width] = choice.TargetChoice(maps=maps, dense_masked_rate=dense)
    return out
