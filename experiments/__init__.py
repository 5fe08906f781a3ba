"""The experiment suite: one registered entry per table and figure of the papers.

``python -m experiments.run --list`` shows what is registered; ``python -m experiments.run NAME``
runs one.
"""

from experiments.registry import Experiment, get, names, register

__all__ = ["Experiment", "get", "names", "register"]
