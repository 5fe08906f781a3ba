"""Experiment configs as code: one frozen dataclass, overridable with ``--set key=value``.

An :class:`ExperimentConfig` is valid by construction: every value is checked when it is
built, against the types and ranges below and against its dataset's facts (input shape,
classes, split sizes), and a bad value raises :class:`ConfigError` naming the key, the value
and the fix. This module does not import JAX, so the command line checks everything before a
results folder exists or JAX starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import types
import typing
from typing import Any

from bntt_jax.config import NetworkConfig, NetworkConfigError
from bntt_jax.constants import ARCHS, ENCODERS, LR_SCHEDULES, OPTIMIZERS
from bntt_jax.norms import NORMS
from bntt_jax.ttfs.config import INPUT_CODINGS, POOLINGS, ROUNDINGS, TTFS_ARCHS, TTFSConfig
from experiments.data import DATASETS, DatasetFacts

#: Keys that a resumed run may take anew: they change where the run reads from (a resumed run
#: checks that it sees the same data, by fingerprint) or which analyses follow it, never what
#: it trains.
RESUME_SAFE_KEYS = ("data_dir", "analyses")

#: The training methods: BNTT (Kim & Panda), TTFS (Park & Yoon), and the non-spiking ANN of
#: the same topology that the BNTT papers compare against.
METHODS = ("bntt", "ttfs", "ann")
#: The architectures of each method.
METHOD_ARCHS = {"bntt": ARCHS, "ttfs": TTFS_ARCHS, "ann": ARCHS}

#: The analyses of a trained BNTT-family or ANN run (:mod:`experiments.analyses`), in order.
ANALYSIS_NAMES = ("gamma", "activity", "energy", "robustness")

#: Seeds are 32-bit: ``numpy.random.default_rng`` and ``jax.random.key`` both take them.
MAX_SEED = 2**32 - 1


class ConfigError(ValueError):
    """A config value is wrong. ``key``, ``value`` and a one-line message with the fix."""

    def __init__(self, key: str, value: Any, problem: str, fix: str) -> None:
        self.key, self.value, self.problem, self.fix = key, value, problem, fix
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        super().__init__(f"{key}={shown}: {problem} Fix: {fix}")


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs. Network fields mirror :class:`bntt_jax.NetworkConfig` (method
    ``bntt``) or :class:`bntt_jax.ttfs.TTFSConfig` (method ``ttfs``); the fields marked TTFS
    are that method's alone, and BNTT's ``norm``, ``leak`` and ``encoder`` are not used by it."""

    method: str = _field(
        "bntt", "bntt (Kim & Panda), ttfs (Park & Yoon) or ann (ReLU, same topology)"
    )
    dataset: str = _field("digits", f"one of {', '.join(DATASETS)}")
    arch: str = _field("mlp", f"bntt: {', '.join(ARCHS)}; ttfs: {', '.join(TTFS_ARCHS)}")
    norm: str = _field("bntt", f"normalisation: {', '.join(NORMS)}")
    num_steps: int = _field(25, "time steps T (ttfs: the window T of every layer)")
    leak: float | None = _field(None, "membrane leak λ in (0, 1]; none: the arch's default")
    hidden: tuple[int, ...] | None = _field(None, "MLP hidden widths, e.g. 256,256")
    encoder: str = _field("poisson", f"input encoding: {', '.join(ENCODERS)}")
    optimizer: str = _field("sgd", f"{', '.join(OPTIMIZERS)}")
    lr: float = _field(0.3, "learning rate, finite and > 0")
    lr_schedule: str = _field("step", "step (÷10 at 50/70/90% of the epochs) or constant")
    momentum: float = _field(0.9, "SGD momentum in [0, 1)")
    weight_decay: float = _field(1e-4, "coupled L2 weight decay, >= 0")
    epochs: int = _field(100, "training epochs")
    batch_size: int = _field(256, "training batch (global, over all devices)")
    eval_batch_size: int = _field(512, "evaluation batch, at most the test set")
    eval_every: int = _field(1, "test every N epochs (and after the last)")
    seed: int = _field(0, f"random seed, 0 .. {MAX_SEED}")
    data_dir: str = _field("data", "folder holding the dataset archives")
    exit_threshold: float = _field(0.1, "γ-based early exit threshold, >= 0")
    exit_relative: bool = _field(
        False, "early exit against each layer's peak mean γ times exit_threshold (ours)"
    )
    noise_sigmas: tuple[float, ...] = _field(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
        "analysis: σ of the Gaussian noise on [0, 1] images (BNTT Fig. 4b)",
    )
    fgsm_epsilons: tuple[float, ...] = _field(
        (0.0, 0.01, 0.02, 0.04, 0.08, 0.16),
        "analysis: ε of the SNN-crafted FGSM on [0, 1] images (BNTT App. F)",
    )
    analysis_images: int | None = _field(
        None, "analysis: test images for robustness (first N); none: all"
    )
    analyses: tuple[str, ...] | None = _field(
        ANALYSIS_NAMES,
        "analyses run on a BNTT-family or ANN run once it finishes (comma-separated); none: "
        "none (python -m experiments.analyze runs them later)",
    )
    conversion_steps: tuple[int, ...] | None = _field(
        (100, 500, 1000),
        "ann: the trained ANN converted to IF neurons is tested at these T (BNTT Table 3); "
        "none: not converted",
    )
    conversion_percentile: float = _field(
        100.0, "ann: thresholds from this percentile of the input currents, in (0, 100]"
    )
    conversion_reset: str = _field("subtract", "ann: converted neurons reset by subtract or zero")
    conversion_images: int = _field(256, "ann: training images that set the thresholds")
    max_train_batches: int | None = _field(None, "cap on batches per epoch (quick runs)")
    max_eval_batches: int | None = _field(None, "cap on evaluation batches (quick runs)")
    normalize: bool = _field(True, "standardise inputs; false: intensities in [0, 1]")
    channels: tuple[int, ...] | None = _field(None, "TTFS VGG-16: 13 conv widths; none: 64…512")
    tau0: float = _field(10.0, "TTFS: initial τ of every temporal kernel, > 0")
    t_d0: float = _field(0.0, "TTFS: initial t_d of every temporal kernel")
    rounding: str = _field("ceil", f"TTFS spike-time quantiser: {', '.join(ROUNDINGS)}")
    input_coding: str = _field("ttfs", f"TTFS input: {', '.join(INPUT_CODINGS)}")
    pooling: str = _field("max", f"TTFS 2x2 pooling: {', '.join(POOLINGS)}")
    dropout: float = _field(0.0, "TTFS: dropout rate after every kernel layer, in [0, 1)")
    target_epoch: int | None = _field(50, "TTFS: SR target epoch e_tar; none: no relaxation")
    lambda_tr: float = _field(1e-5, "TTFS: weight λ_TR of the kernel regularisation, >= 0")
    lambda_tb: float = _field(1e-5, "TTFS: weight λ_TB of the TB term, >= 0")
    kernel_train_start: int = _field(0, "TTFS: first epoch (0-based) that trains τ and t_d")
    snn_images: int | None = _field(1000, "TTFS: test images run as a spiking network; none: all")

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def facts(self) -> DatasetFacts:
        """The canonical facts of this config's dataset."""
        return DATASETS[self.dataset]

    def network(self, num_classes: int, input_shape: tuple[int, ...]) -> NetworkConfig | TTFSConfig:
        """The network of this run for a dataset's inputs: a :class:`bntt_jax.NetworkConfig`
        (method ``bntt``) or a :class:`bntt_jax.ttfs.TTFSConfig` (method ``ttfs``)."""
        if self.method == "ttfs":
            shape = dict(in_features=math.prod(input_shape))
            if self.arch == "vgg16":
                shape = dict(img_size=input_shape[0], in_channels=input_shape[-1])
            return TTFSConfig(
                arch=self.arch, time_window=self.num_steps, num_classes=num_classes,
                channels=self.channels, hidden=self.hidden, tau0=self.tau0, t_d0=self.t_d0,
                rounding=self.rounding, input_coding=self.input_coding, pooling=self.pooling,
                dropout=self.dropout, **shape,
            )  # fmt: skip
        common = dict(
            arch=self.arch,
            norm=self.norm,
            num_steps=self.num_steps,
            num_classes=num_classes,
            leak=self.leak,
        )
        if self.arch == "mlp":
            # The sequential encoder presents one value per step: one input feature.
            features = 1 if self.encoder == "sequential" else math.prod(input_shape)
            return NetworkConfig(**common, in_features=features, hidden=self.hidden)
        return NetworkConfig(**common, img_size=input_shape[0], in_channels=input_shape[-1])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in TUPLE_KEYS:
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Inverse of :meth:`to_dict`; keys missing from an older file take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                unknown[0], data[unknown[0]], "is not a config key of this version.",
                f"remove it; the keys are {', '.join(sorted(names))}.",
            )  # fmt: skip
        data = dict(data)
        for key in TUPLE_KEYS:
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)


#: The config keys holding tuples (lists in JSON).
TUPLE_KEYS = ("hidden", "channels", "noise_sigmas", "fgsm_epsilons", "conversion_steps",
              "analyses")  # fmt: skip


#: The TTFS paper's training setup (Table 3 and Sec. 6, CIFAR-10): the base of every TTFS
#: experiment, ``ExperimentConfig(**{**TTFS_TABLE3, ...changes})``. Inputs are intensities in
#: [0, 1], which the input layer encodes into spike times.
TTFS_TABLE3: dict[str, Any] = dict(
    method="ttfs",
    dataset="cifar10",
    arch="vgg16",
    num_steps=32,
    tau0=10.0,
    t_d0=0.0,
    normalize=False,
    optimizer="adam",
    lr=1e-3,
    lr_schedule="constant",
    weight_decay=1e-4,
    batch_size=512,
    epochs=2000,
    target_epoch=50,
    lambda_tr=1e-5,
    lambda_tb=1e-5,
)


def _validate(c: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` for the first bad value of ``c`` (field by field, then
    against the dataset's facts, then the network built from them)."""

    def choice(key: str, choices: tuple[str, ...] | list[str]) -> None:
        value = getattr(c, key)
        if value not in choices:
            close = difflib.get_close_matches(str(value), list(choices), n=1)
            hint = f"--set {key}={close[0]}" if close else f"--set {key}=<one of them>"
            raise ConfigError(key, value, f"{key} must be one of {', '.join(choices)}.", hint)

    def integer(key: str, low: int, high: int | None = None, optional: bool = False) -> None:
        value = getattr(c, key)
        if optional and value is None:
            return
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            extra = " (or none for no cap)" if optional else ""
            raise ConfigError(
                key, value, f"{key} must be an integer {bound}{extra}.",
                f"--set {key}=<an integer {bound}>.",
            )  # fmt: skip

    def real(key: str, low: float, high: float, *, open_low: bool, open_high: bool) -> None:
        value = getattr(c, key)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        inside = ok and math.isfinite(value)
        if inside:
            inside = (value > low if open_low else value >= low) and (
                value < high if open_high else value <= high
            )
        if not inside:
            interval = (
                f"{'(' if open_low else '['}{low:g}, "
                f"{'∞' if math.isinf(high) else f'{high:g}'}{')' if open_high else ']'}"
            )
            raise ConfigError(
                key, value, f"{key} must be a finite number in {interval}.",
                f"--set {key}=<a number in {interval}>.",
            )  # fmt: skip

    choice("method", METHODS)
    choice("dataset", list(DATASETS))
    for key, choices in (
        ("arch", METHOD_ARCHS[c.method]),
        ("norm", NORMS),
        ("encoder", ENCODERS),
        ("optimizer", OPTIMIZERS),
        ("lr_schedule", LR_SCHEDULES),
        ("rounding", ROUNDINGS),
        ("input_coding", INPUT_CODINGS),
        ("pooling", POOLINGS),
    ):
        choice(key, choices)
    for key in ("num_steps", "epochs", "batch_size", "eval_batch_size", "eval_every"):
        integer(key, 1)
    integer("max_train_batches", 1, optional=True)
    integer("max_eval_batches", 1, optional=True)
    integer("target_epoch", 1, optional=True)
    integer("snn_images", 0, optional=True)
    integer("kernel_train_start", 0)
    integer("seed", 0, MAX_SEED)
    if not isinstance(c.exit_relative, bool):
        raise ConfigError(
            "exit_relative", c.exit_relative, "must be true or false.", "--set exit_relative=true."
        )
    if not isinstance(c.normalize, bool):
        raise ConfigError(
            "normalize", c.normalize, "must be true or false.", "--set normalize=true."
        )
    real("tau0", 0.0, math.inf, open_low=True, open_high=True)
    real("t_d0", -math.inf, math.inf, open_low=True, open_high=True)
    real("dropout", 0.0, 1.0, open_low=False, open_high=True)
    real("lambda_tr", 0.0, math.inf, open_low=False, open_high=True)
    real("lambda_tb", 0.0, math.inf, open_low=False, open_high=True)
    real("lr", 0.0, math.inf, open_low=True, open_high=True)
    real("momentum", 0.0, 1.0, open_low=False, open_high=True)
    real("weight_decay", 0.0, math.inf, open_low=False, open_high=True)
    real("exit_threshold", 0.0, math.inf, open_low=False, open_high=True)
    integer("analysis_images", 1, optional=True)
    for key in ("noise_sigmas", "fgsm_epsilons"):
        values = getattr(c, key)
        if (
            not isinstance(values, tuple)
            or not values
            or not all(isinstance(v, numbers.Real) and math.isfinite(v) and v >= 0 for v in values)
        ):
            raise ConfigError(
                key, values, "must be one or more finite numbers >= 0.",
                f"--set {key}=0,0.1,0.2 (comma-separated).",
            )  # fmt: skip
    if c.analyses is not None and (
        not isinstance(c.analyses, tuple) or not all(a in ANALYSIS_NAMES for a in c.analyses)
    ):
        raise ConfigError(
            "analyses", c.analyses, f"each analysis must be one of {', '.join(ANALYSIS_NAMES)}.",
            f"--set analyses={','.join(ANALYSIS_NAMES)} (or none).",
        )  # fmt: skip
    real("conversion_percentile", 0.0, 100.0, open_low=True, open_high=False)
    choice("conversion_reset", ("subtract", "zero"))
    integer("conversion_images", 1)
    steps = c.conversion_steps
    if steps is not None and (
        not isinstance(steps, tuple)
        or not steps
        or not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 1 for t in steps
        )  # fmt: skip
    ):
        raise ConfigError(
            "conversion_steps", steps, "must be one or more integers >= 1 (or none).",
            "--set conversion_steps=100,500,1000 (comma-separated), or none.",
        )  # fmt: skip
    if c.method == "ann" and c.norm not in ("bn", "none"):
        raise ConfigError(
            "norm", c.norm, "an ANN normalises with bn (standard batch norm) or not at all.",
            "--set norm=bn (or none).",
        )  # fmt: skip
    if c.method == "ttfs" and c.arch != "vgg16" and c.channels is not None:
        raise ConfigError(
            "channels", c.channels, "the conv widths are for TTFS VGG-16.", "--set channels=none."
        )
    if not isinstance(c.data_dir, str) or not c.data_dir:
        raise ConfigError("data_dir", c.data_dir, "must be a folder path.", "--set data_dir=DIR.")

    facts = c.facts
    if c.method == "ttfs" and c.encoder == "sequential":
        raise ConfigError(
            "encoder", c.encoder, "TTFS networks take whole images (their input coding is "
            "input_coding), not one value per step.", "--set encoder=poisson (unused by TTFS).",
        )  # fmt: skip
    if c.method == "ann" and c.encoder == "sequential":
        raise ConfigError(
            "encoder", c.encoder, "an ANN takes whole inputs, not one value per step.",
            "--set encoder=poisson (unused by the ANN).",
        )  # fmt: skip
    if c.arch != "mlp" and len(facts.input_shape) != 3:
        raise ConfigError(
            "arch", c.arch, f"{c.arch} is a convolutional network for images, but {c.dataset} "
            f"gives {math.prod(facts.input_shape)} features per sample.",
            "--set arch=mlp, or an image dataset (--set dataset=cifar10).",
        )  # fmt: skip
    if c.encoder == "sequential":
        values = math.prod(facts.input_shape)
        if c.arch != "mlp" or c.num_steps != values:
            raise ConfigError(
                "encoder", c.encoder, f"the sequential encoder presents one of the {values} "
                f"values of a {c.dataset} sample per time step, to an MLP with one input.",
                f"--set arch=mlp --set num_steps={values}, or --set encoder=poisson.",
            )  # fmt: skip
    if (c.norm in ("bntt", "bn") or c.method == "ttfs") and c.batch_size < 2:
        what = "TTFS layers normalise" if c.method == "ttfs" else f"norm={c.norm} normalises"
        raise ConfigError(
            "batch_size", c.batch_size, f"{what} with batch statistics, which need at least "
            "2 samples.", "--set batch_size=2 or more.",
        )  # fmt: skip
    _check_batch_sizes(c, facts.train_size, facts.test_size, c.dataset)
    try:
        c.network(facts.num_classes, facts.input_shape)
    except NetworkConfigError as err:
        key = _TTFS_KEYS.get(err.field, err.field)
        key = key if key in _NETWORK_FIXES else "arch"
        raise ConfigError(
            key,
            getattr(c, key),
            getattr(err, "problem", str(err).split(": ", 1)[-1]),
            _NETWORK_FIXES[key],
        ) from None


# How to fix a value that NetworkConfig refuses (the other fields are checked above).
_NETWORK_FIXES = {
    "arch": f"--set arch=<{'|'.join(ARCHS)}> to suit the dataset.",
    "norm": f"--set norm=<{'|'.join(NORMS)}>.",
    "num_steps": "--set num_steps=25 (a positive int).",
    "leak": "--set leak=0.95 (in (0, 1]), or leak=none for the architecture's default.",
    "hidden": "--set hidden=256,256 (positive widths), or hidden=none.",
    "channels": "--set channels=<13 positive widths> (TTFS VGG-16 only), or channels=none.",
}
# TTFSConfig's field names for ExperimentConfig's.
_TTFS_KEYS = {"time_window": "num_steps"}


def check_against_data(config: ExperimentConfig, train_size: int, test_size: int) -> None:
    """The batch sizes against the data actually loaded (a CIFAR folder may hold a subset)."""
    _check_batch_sizes(config, train_size, test_size, f"the loaded {config.dataset} data")


def _check_batch_sizes(c: ExperimentConfig, train_size: int, test_size: int, source: str) -> None:
    """Full batches only (the last partial batch is dropped, train and test)."""
    if c.batch_size > train_size:
        raise ConfigError(
            "batch_size", c.batch_size, f"{source} has {train_size} training examples, so no "
            "full batch (the last partial batch is dropped).",
            f"--set batch_size={min(256, train_size)}.",
        )  # fmt: skip
    if c.eval_batch_size > test_size:
        raise ConfigError(
            "eval_batch_size", c.eval_batch_size, f"{source} has {test_size} test examples, "
            "so no full evaluation batch (partial batches are dropped).",
            f"--set eval_batch_size={test_size} (or a divisor of it, to test them all).",
        )  # fmt: skip


def _hint(name: str) -> tuple[Any, bool]:
    """The type of config field ``name`` without ``None``, and whether ``None`` is allowed."""
    hint = typing.get_type_hints(ExperimentConfig)[name]
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    return base, optional


def _element(base: Any) -> type:
    """The element type of a ``tuple[X, ...]`` hint."""
    return typing.get_args(base)[0]


def _type_name(name: str) -> tuple[str, bool]:
    base, optional = _hint(name)
    if typing.get_origin(base) is tuple:
        return f"{_element(base).__name__}s,comma-separated", optional
    return base.__name__, optional


def _parse(name: str, text: str) -> Any:
    """Parse ``text`` for the config field ``name``, by its resolved type hint."""
    base, optional = _hint(name)
    if optional and text.lower() in ("none", "null"):
        return None
    try:
        if typing.get_origin(base) is tuple:
            return tuple(_element(base)(v) for v in text.split(",") if v.strip())
        if base is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return base(text)
    except ValueError:
        tuple_kind = typing.get_origin(base) is tuple
        kind = f"comma-separated {_element(base).__name__}s" if tuple_kind else base.__name__
        raise ConfigError(
            name, text, f"expected {kind}{' or none' if optional else ''}.",
            f"--set {name}=<{kind}>.",
        ) from None  # fmt: skip


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` strings as typed values; unknown keys and unparsable values raise
    :class:`ConfigError`. A later ``--set`` of the same key wins."""
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(item, "", "expected key=value.", "--set KEY=VALUE; see --help.")
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(
                key, value, "unknown config key.", f"{hint}The keys are listed by --help."
            )
        changes[key] = _parse(key, value.strip())
    return changes


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``key=value`` strings; unknown keys and bad values raise :class:`ConfigError`."""
    return dataclasses.replace(config, **parse_overrides(overrides))


def describe_keys(config: ExperimentConfig | None = None) -> str:
    """One line per ``--set`` key: its type, its default (``config``'s value if given) and
    what it is. For ``--help``."""
    lines = []
    for f in dataclasses.fields(ExperimentConfig):
        kind, optional = _type_name(f.name)
        value = getattr(config, f.name) if config is not None else f.default
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        kind += " or none" if optional else ""
        lines.append(f"  {f.name:18s} {kind:22s} default {shown!s:8s}  {f.metadata['help']}")
    return "\n".join(lines)
