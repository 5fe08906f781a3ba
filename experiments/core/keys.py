"""Config keys: a field with its ``--help`` line and its check, the checks, and the error a
bad value raises (naming the key, the value and the fix). No JAX."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import typing
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from bntt_jax.config import EXAMPLE_PLAN, parse_plan
from bntt_jax.constants import ARCHS
from experiments.core.data import dataset_facts, splits


class ConfigError(ValueError):
    """A config value is wrong. ``key``, ``value`` and a one-line message with the fix."""

    def __init__(self, key: str, value: Any, problem: str, fix: str) -> None:
        self.key, self.value, self.problem, self.fix = key, value, problem, fix
        shown = show(value)
        if len(shown) > 120:  # one line: a 10,000-word plan is not repeated in full
            shown = f"{shown[:100]}… ({len(shown)} characters)"
        super().__init__(f"{key}={shown}: {problem} Fix: {fix}")


def show(value: Any) -> str:
    """A value as a user types it after ``--set key=`` (``none``, ``true``, ``1,2``)."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


# ----------------------------------------------------------------------- keys and checks
class Check(NamedTuple):
    """What a key's value must be: ``ok(value)``, else ``problem`` and ``fix`` (templates
    with ``{key}``; ``{none}`` says that ``none`` is allowed too)."""

    ok: Callable[[Any], bool]
    problem: str
    fix: str


def config_key(default: Any, help: str, check: Check | None = None, none: str = "no cap") -> Any:
    """A config field: its default, its ``--help`` line, its :class:`Check` and, for a key
    that may be ``None``, what ``none`` means."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check, "none": none})


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


#: float32's largest finite value and smallest normal one: training computes in float32.
FLOAT32_MAX, FLOAT32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38


def _is_real(v: Any) -> bool:
    """A finite number that float32 holds: neither overflows nor flushes to zero."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
        return False
    return v == 0 or FLOAT32_TINY <= abs(v) <= FLOAT32_MAX


def choice(options: Iterable[str], problem: str | None = None, fix: str | None = None) -> Check:
    options = tuple(options)
    return Check(
        lambda v: v in options,
        problem or f"{{key}} must be one of {', '.join(options)}.",
        fix or "",  # empty: suggest the closest option (check_keys)
    )


def integer(low: int, high: int | None = None) -> Check:
    bound = f"between {low} and {high}" if high is not None else f">= {low}"
    return Check(
        lambda v: _is_int(v) and v >= low and (high is None or v <= high),
        f"{{key}} must be an integer {bound}{{none}}.",
        f"--set {{key}}=<an integer {bound}>.",
    )


def real(low: float, high: float = math.inf, *, open_low: bool, open_high: bool = True) -> Check:
    interval = (
        f"{'(' if open_low else '['}{low:g}, "
        f"{'∞' if math.isinf(high) else f'{high:g}'}{')' if open_high else ']'}"
    )

    def ok(v: Any) -> bool:
        if not _is_real(v):
            return False
        return (v > low if open_low else v >= low) and (v < high if open_high else v <= high)

    return Check(
        ok,
        f"{{key}} must be a finite number in {interval}, within float32's range (1.2e-38 "
        "to 3.4e38 in magnitude).",
        f"--set {{key}}=<a number in {interval}>.",
    )


FLAG = Check(lambda v: isinstance(v, bool), "must be true or false.", "--set {key}=true.")
FINITE = Check(_is_real, "must be a finite number within float32's range.", "--set {key}=0.")
FOLDER = Check(
    lambda v: isinstance(v, str) and bool(v), "must be a folder path.", "--set {key}=DIR."
)


def numbers_at_least(low: float, example: str) -> Check:
    return Check(
        lambda v: isinstance(v, tuple) and bool(v) and all(_is_real(x) and x >= low for x in v),
        f"must be one or more finite numbers >= {low:g} within float32's range.",
        f"--set {{key}}={example} (comma-separated).",
    )


def check_keys(config: Any) -> None:
    """Check every field of the dataclass ``config`` that has a :class:`Check`."""
    optional_keys = _optional_keys(type(config))
    for f in dataclasses.fields(config):
        check = f.metadata.get("check")
        value = getattr(config, f.name)
        optional = f.name in optional_keys
        if check is None or (value is None and optional) or check.ok(value):
            continue
        fix = check.fix.format(key=f.name)
        if not fix:  # a choice: the closest option
            options = check.problem.split("one of ", 1)[-1].rstrip(".").split(", ")
            close = difflib.get_close_matches(str(value), options, n=1)
            fix = f"--set {f.name}={close[0] if close else '<one of them>'}"
        none = f" (or none: {f.metadata.get('none', 'no cap')})" if optional else ""
        raise ConfigError(f.name, value, check.problem.format(key=f.name, none=none), fix)


@functools.cache
def _optional_keys(cls: type) -> frozenset[str]:
    """The fields of ``cls`` that may be ``None``."""
    hints = typing.get_type_hints(cls)
    return frozenset(name for name, hint in hints.items() if type(None) in typing.get_args(hint))


# ----------------------------------------------------- checks that span a config's parts
def check_images(
    config: Any,
    arch: str,
    convolutional: bool,
    vectors: bool = False,
    frames: bool = False,
) -> None:
    """A convolutional ``arch`` needs images (``[H, W, C]`` samples) from the dataset; one
    that takes ``vectors`` (an MLP fed whole samples) needs ``[features]`` samples. Event
    frames (``[T, H, W, C]`` samples) only where the network takes ``frames``, one per step."""
    facts = config.facts
    if (len(facts.input_shape) == 4) != frames:
        if frames:
            raise ConfigError(
                "encoder",
                "frames",
                f"the frames encoder presents event frames [N, T, H, W, C] "
                f"one per step, but {config.dataset_label} holds samples of shape "
                f"{facts.input_shape}.",
                "--set encoder=poisson.",
            )
        raise ConfigError(
            "dataset",
            config.dataset,
            f"{config.dataset_label} holds event frames of shape "
            f"{facts.input_shape}, which the BNTT method's network takes one frame per step.",
            f"--set encoder=frames --set num_steps={facts.input_shape[0]} (method=bntt).",
        )
    if frames:
        facts = dataclasses.replace(facts, input_shape=facts.input_shape[1:])
    if vectors and len(facts.input_shape) != 1:
        raise ConfigError(
            "arch",
            arch,
            f"{arch} takes feature vectors, but {config.dataset_label} gives "
            f"images of shape {facts.input_shape}.",
            "--set arch=vgg9 (a convolutional network), or store the inputs flattened, "
            "x.reshape(len(x), -1).",
        )
    if convolutional and len(facts.input_shape) != 3:
        raise ConfigError(
            "arch",
            arch,
            f"{arch} is a convolutional network for images, but "
            f"{config.dataset_label} gives {math.prod(facts.input_shape)} features per sample.",
            "--set arch=mlp, or an image dataset (--set dataset=cifar10).",
        )


def check_split(config: Any) -> None:
    """``test_per_class`` only for a dataset whose release has no test split, and in range."""
    if config.test_per_class is None:
        return
    if not splits(config.dataset):
        raise ConfigError(
            "test_per_class",
            config.test_per_class,
            f"{config.dataset_label} comes with its "
            "own test set; test_per_class chooses the split of cifar10_dvs only.",
            "leave --set test_per_class out.",
        )
    try:
        dataset_facts(config.dataset, config.test_per_class)
    except ValueError as err:
        raise ConfigError(
            "test_per_class", config.test_per_class, str(err), "--set test_per_class=100."
        ) from None


def check_batch_sizes(c: Any, train_size: int, source: str) -> None:
    """A full training batch (the last partial one is dropped, as the authors' loaders do;
    evaluation pads its last batch instead, so any test set evaluates whole)."""
    if c.batch_size > train_size:
        raise ConfigError(
            "batch_size",
            c.batch_size,
            f"{source} has {train_size} training examples, so no "
            "full batch (the last partial batch is dropped).",
            f"--set batch_size={min(256, train_size)}.",
        )


def check_against_data(config: Any, train_size: int) -> None:
    """The batch size against the data actually loaded (a CIFAR folder may hold a subset)."""
    check_batch_sizes(config, train_size, f"the loaded {config.dataset_label} data")


def check_batch_statistics(config: Any, what: str) -> None:
    """A network normalised with batch statistics (``what`` does it) needs 2 samples a batch."""
    if config.batch_size < 2:
        raise ConfigError(
            "batch_size",
            config.batch_size,
            f"{what} with batch statistics, which need at least 2 samples.",
            "--set batch_size=2 or more.",
        )


def network_error(
    err: Exception, keys: dict[str, Any], fixes: dict[str, str], renamed: dict[str, str]
) -> ConfigError:
    """A :class:`ConfigError` for a network config's error ``err`` (its ``field``, renamed to
    its key by ``renamed``): the key's value in ``keys`` and its fix from ``fixes``
    (``arch`` for a field that is no key)."""
    name = renamed.get(err.field, err.field)
    name = name if name in fixes else "arch"
    problem = getattr(err, "problem", str(err).split(": ", 1)[-1])
    return ConfigError(name, keys[name], problem, fixes[name])


# ------------------------------------------- the network keys of every method of a layer plan
#: The ``plan`` key of a network of ``arch=custom`` (the spiking network's and its ANN's).
PLAN_HELP = (
    f"arch=custom: the layers, e.g. {EXAMPLE_PLAN} (cN 3x3 conv, p 2x2 average pool, g global "
    "pool, fN dense; the readout follows)"
)
#: How to fix the network keys that :class:`bntt_jax.NetworkConfig` refuses, shared by the
#: methods whose networks it builds (each adds its own).
NETWORK_FIXES = {
    "arch": f"--set arch=<{'|'.join(ARCHS)}> to suit the dataset.",
    "hidden": "--set hidden=256,256 (positive widths), or hidden=none.",
    "plan": f"--set arch=custom --set plan={EXAMPLE_PLAN} (cN: 3x3 conv of N channels, p: 2x2 "
    "average pool, g: global average pool, fN: dense of N neurons).",
}


def network_takes_images(arch: str, plan: tuple[str, ...] | None) -> bool:
    """A VGG, or a plan that starts with a convolution. A plan that does not parse is refused
    here, naming its word, before the input kind is judged from it (a missing plan: left to
    the network's config, which asks for one)."""
    if arch != "custom":
        return arch != "mlp"
    if not plan:
        return False
    try:
        return bool(parse_plan(plan)[0])
    except ValueError as err:
        raise ConfigError(
            "plan", plan, f"{err}", f"a plan of the words above, e.g. --set plan={EXAMPLE_PLAN}."
        ) from None
