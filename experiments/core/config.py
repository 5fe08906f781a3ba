"""Experiment configs as code: the shared keys, the method's network and options, the analyses.

An :class:`ExperimentConfig` has the keys every run has (data, optimiser, schedule, batches,
seed) and three parts:

* ``network``: the method's choices of network (:class:`MethodSpec`, e.g. BNTT's arch, norm,
  T, leak, hidden widths and encoder), which, with the dataset's facts, build its
  :class:`bntt_jax.NetworkConfig` or :class:`bntt_jax.ttfs.TTFSConfig`
  (:attr:`ExperimentConfig.network_config`);
* ``options``: the method's own training options, if it has any (TTFS's relaxation and
  kernel terms, the ANN's conversion);
* ``analysis``: what is analysed of the trained run (:class:`AnalysisConfig`).

Every key of every part has one flat name, the one users type as ``--set key=value``
(``--help`` lists them by part); ``config.json`` holds the nested form, and a flat one written
by an earlier version still loads (:meth:`ExperimentConfig.from_dict`). Each part checks its
own keys when it is built (:func:`check_keys`, the ``check`` of each field), and the config
checks what spans parts against its dataset's facts; a bad value raises :class:`ConfigError`
naming the key, the value and the fix. This module does not import JAX, so the command line
checks everything before a results folder exists or JAX starts.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bntt_jax import serialize
from bntt_jax.constants import LR_SCHEDULES, OPTIMIZERS
from experiments.core.data import (
    DATASETS,
    DataCorruptError,
    DataMissingError,
    DatasetFacts,
    arrays,
    dataset_facts,
    dataset_label,
)
from experiments.core.keys import (  # noqa: F401  (re-exported)
    FLAG,
    FOLDER,
    Check,
    ConfigError,
    check_against_data,
    check_batch_sizes,
    check_keys,
    check_split,
    choice,
    config_key,
    integer,
    numbers_at_least,
    real,
    show,
)
from experiments.core.methods import METHODS, MethodSpec, method_spec

#: Keys that a resumed run may take anew: they change where the run reads from (a resumed run
#: checks that it sees the same data, by fingerprint), which analyses follow it or how often
#: it logs its progress, never what it trains.
RESUME_SAFE_KEYS = ("data_dir", "analyses", "progress_every_s")
#: The analyses of a trained BNTT-family or ANN run (:mod:`experiments.analyses`), in order.
ANALYSIS_NAMES = ("gamma", "activity", "energy", "robustness")
#: Seeds are 32-bit: ``numpy.random.default_rng`` and ``jax.random.key`` both take them.
MAX_SEED = 2**32 - 1


# ------------------------------------------------------------------------ the analyses
@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """What is analysed of a trained run (:mod:`experiments.analyses`; BNTT Sec. 3.4, 4.3,
    4.4): the γ-based early exit of a BNTT run's end, and the analyses that follow a BNTT-family
    or ANN run."""

    exit_threshold: float = config_key(
        0.1, "γ-based early exit threshold, >= 0", real(0.0, open_low=False)
    )
    exit_relative: bool = config_key(
        False, "early exit against each layer's peak mean γ times exit_threshold (ours)", FLAG
    )
    noise_sigmas: tuple[float, ...] = config_key(
        (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
        "σ of the Gaussian noise on [0, 1] images (BNTT Fig. 4b)",
        numbers_at_least(0, "0,0.1,0.2"),
    )
    fgsm_epsilons: tuple[float, ...] = config_key(
        (0.0, 0.01, 0.02, 0.04, 0.08, 0.16),
        "ε of the SNN-crafted FGSM on [0, 1] images (BNTT App. F)",
        numbers_at_least(0, "0,0.1,0.2"),
    )
    analysis_images: int | None = config_key(
        None, "test images for robustness (first N); none: all", integer(1)
    )
    analyses: tuple[str, ...] | None = config_key(
        ANALYSIS_NAMES,
        "analyses run on a BNTT-family or ANN run once it finishes (comma-separated); none: "
        "none (python -m experiments.analyze runs them later)",
        Check(
            lambda v: isinstance(v, tuple) and all(a in ANALYSIS_NAMES for a in v),
            f"each analysis must be one of {', '.join(ANALYSIS_NAMES)}.",
            f"--set analyses={','.join(ANALYSIS_NAMES)} (or none).",
        ),
    )

    def __post_init__(self) -> None:
        check_keys(self)


# -------------------------------------------------------------------------- the methods
# ----------------------------------------------------------------------- the config
@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs: the shared keys, ``network``, ``options`` and ``analysis``
    (module docstring). ``network`` and ``options`` left ``None`` take the method's defaults;
    the network is built against the dataset's facts when the config is, so a config that
    exists is valid."""

    method: str = config_key(
        "bntt", "bntt (Kim & Panda), ttfs (Park & Yoon) or ann (ReLU, same topology)"
    )
    dataset: str = config_key(
        "digits",
        f"one of {', '.join(DATASETS)}, or PATH.npz of your own (x_train, y_train, x_test, y_test)",
        Check(
            lambda v: v in DATASETS or arrays.is_path(v),
            f"{{key}} must be one of {', '.join(DATASETS)}, or a .npz file of your own.",
            "--set dataset=digits, or dataset=PATH.npz",
        ),
    )
    data_dir: str = config_key("data", "folder holding the dataset archives", FOLDER)
    test_per_class: int | None = config_key(
        None,
        "cifar10_dvs: recordings 0..N-1 of each class are the test set (none: 100, 9:1)",
        integer(1),
        none="the dataset's own split",
    )
    normalize: bool = config_key(True, "standardise inputs; false: intensities in [0, 1]", FLAG)
    optimizer: str = config_key("sgd", ", ".join(OPTIMIZERS), choice(OPTIMIZERS))
    lr: float = config_key(0.3, "learning rate, finite and > 0", real(0.0, open_low=True))
    lr_schedule: str = config_key(
        "step", "step (÷10 at 50/70/90% of the epochs) or constant", choice(LR_SCHEDULES)
    )
    momentum: float = config_key(0.9, "SGD momentum in [0, 1)", real(0.0, 1.0, open_low=False))
    weight_decay: float = config_key(
        1e-4, "coupled L2 weight decay, >= 0", real(0.0, open_low=False)
    )
    epochs: int = config_key(100, "training epochs", integer(1))
    batch_size: int = config_key(256, "training batch (global, over all devices)", integer(1))
    eval_batch_size: int = config_key(
        512,
        "evaluation batch (the last one padded and masked: every test image counts)",
        integer(1),
    )
    eval_every: int = config_key(1, "test every N epochs (and after the last)", integer(1))
    seed: int = config_key(0, f"random seed, 0 .. {MAX_SEED}", integer(0, MAX_SEED))
    max_train_batches: int | None = config_key(
        None, "cap on batches per epoch (quick runs)", integer(1)
    )
    max_eval_batches: int | None = config_key(
        None, "cap on evaluation batches (quick runs)", integer(1)
    )
    progress_every_s: float = config_key(
        60.0,
        "without a terminal, a progress line in the log every N seconds",
        real(0.0, open_low=True),
    )
    network: Any = None
    options: Any = None
    analysis: AnalysisConfig = dataclasses.field(default_factory=AnalysisConfig)

    def __post_init__(self) -> None:
        spec = method_spec(self.method)
        check_keys(self)
        if arrays.is_path(self.dataset):  # a file of your own: by its absolute path
            object.__setattr__(self, "dataset", str(Path(self.dataset).expanduser().resolve()))
        for part, cls in (("network", spec.network), ("options", spec.options)):
            value = getattr(self, part)
            if value is None and cls is not None:
                object.__setattr__(self, part, cls())
            elif type(value) is not (cls or type(None)):  # another method's part
                wanted = "none" if cls is None else cls.__name__
                fix = f"build the config with ExperimentConfig.from_flat(...) or give {wanted}."
                raise ConfigError(
                    part, type(value).__name__, f"method={self.method} takes {wanted} here.", fix
                )
        check_split(self)
        self.network.check(self)
        check_batch_sizes(self, self.facts.train_size, self.dataset_label)
        self.network.build(self.facts)  # raises ConfigError naming the key

    @property
    def facts(self) -> DatasetFacts:
        """The canonical facts of this config's dataset (a file's: read from its headers)."""
        try:
            return dataset_facts(self.dataset, self.test_per_class)
        except (DataMissingError, DataCorruptError) as err:
            raise ConfigError(
                "dataset", self.dataset, str(err), f"write the file as {arrays.FORMAT}."
            ) from None

    @property
    def dataset_label(self) -> str:
        """The dataset as reports name it: a file of your own by its file name, CIFAR10-DVS
        with its split."""
        return dataset_label(self.dataset, self.test_per_class)

    @property
    def network_config(self) -> Any:
        """The network of this run: a :class:`bntt_jax.NetworkConfig` (BNTT, ANN) or a
        :class:`bntt_jax.ttfs.TTFSConfig` (TTFS), built for the dataset's inputs."""
        return self.network.build(self.facts)

    @property
    def spec(self) -> MethodSpec:
        return method_spec(self.method)

    # ------------------------------------------------------------------- the flat view
    def flat(self) -> dict[str, Any]:
        """Every key of this config by its flat ``--set`` name."""
        out = {f.name: getattr(self, f.name) for f in _shared_fields()}
        for part in (self.network, self.options, self.analysis):
            if part is not None:
                out |= {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
        return out

    @classmethod
    def from_flat(
        cls, values: dict[str, Any], explicit: Iterable[str] | None = None
    ) -> ExperimentConfig:
        """The config of flat ``values`` (lists are taken as tuples). A key that is not one
        of its method's is refused if it is in ``explicit`` (default: every key given) and
        dropped otherwise (a key of another method, left over from a base config)."""
        values = dict(values)
        explicit = set(values if explicit is None else explicit)
        unknown = sorted(set(values) - set(key_types()))
        if unknown:
            raise _unknown_key(unknown[0], values, f"listed by --help ({', '.join(key_names())})")
        method = values.get("method", "bntt")
        spec = method_spec(method)
        parts = {"network": spec.network, "options": spec.options, "analysis": AnalysisConfig}
        owned = {f.name for f in _shared_fields()}
        built: dict[str, Any] = {}
        for name, part in parts.items():
            if part is None:
                continue
            names = {f.name for f in dataclasses.fields(part)}
            owned |= names
            built[name] = serialize.from_dict(part, {k: values[k] for k in names & set(values)})
        stray = sorted((set(values) - owned) & explicit)
        if stray:
            raise ConfigError(
                stray[0],
                values[stray[0]],
                f"{stray[0]} is not a key of a {method} run ({spec.summary}).",
                f"leave --set {stray[0]} out, or choose the method whose "
                "key it is (--help lists the keys of each).",
            )
        shared = {f.name: values[f.name] for f in _shared_fields() if f.name in values}
        return serialize.from_dict(cls, shared, **built)

    def replace(self, **changes: Any) -> ExperimentConfig:
        """This config with flat keys changed (``config.replace(lr=0.1, num_steps=100)``);
        a key the (new) method does not have is refused."""
        return ExperimentConfig.from_flat({**self.flat(), **changes}, explicit=changes)

    def has_key(self, name: str) -> bool:
        """Whether ``name`` is a key of this config's method."""
        return name in self.flat()

    # --------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """The nested JSON-ready dict; :meth:`from_dict` inverts it."""
        return serialize.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Inverse of :meth:`to_dict`. A flat dict (a ``config.json`` of an earlier version)
        loads too: keys of another method, which that version kept but never used, are
        dropped, and keys missing from it take their defaults."""
        if not isinstance(data.get("network"), dict):  # the flat form of earlier versions
            return cls.from_flat(data, explicit=())
        spec = method_spec(data.get("method", "bntt"))
        parts = {
            "network": _part(spec.network, data.get("network")),
            "options": _part(spec.options, data.get("options")),
            "analysis": _part(AnalysisConfig, data.get("analysis")),
        }
        shared = {k: v for k, v in data.items() if k not in parts}
        try:
            return serialize.from_dict(cls, shared, **parts)
        except serialize.UnknownKeyError as err:
            raise _unknown_key(err.key, data, ", ".join(err.known)) from None


def _part(cls: type | None, data: dict[str, Any] | None) -> Any:
    if cls is None or data is None:
        return None
    try:
        return serialize.from_dict(cls, data)
    except serialize.UnknownKeyError as err:
        raise _unknown_key(err.key, data, ", ".join(err.known), f" of {cls.__name__}") from None


def _unknown_key(key: str, data: dict[str, Any], known: str, of: str = "") -> ConfigError:
    """The error of a key this version does not have (``of``: in which part)."""
    what = f"is not a key{of} in this version." if of else "is not a config key of this version."
    return ConfigError(key, data[key], what, f"remove it; the keys are {known}.")


def _shared_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(ExperimentConfig) if "help" in f.metadata]


# ------------------------------------------------------------------- the flat key table
def key_parts() -> list[tuple[str, type, list[dataclasses.Field]]]:
    """``(title, class, fields)`` of every part: the shared keys, then each method's, then the
    analysis keys."""
    out = [("shared", ExperimentConfig, _shared_fields())]
    for spec in METHODS.values():
        for kind, part in (("network", spec.network), ("options", spec.options)):
            if part is not None:
                out.append((f"{spec.name} {kind}", part, list(dataclasses.fields(part))))
    out.append(("analysis", AnalysisConfig, list(dataclasses.fields(AnalysisConfig))))
    return out


def split_optional(hint: Any) -> tuple[Any, bool]:
    """A field's type hint without ``None``, and whether ``None`` is allowed."""
    args = typing.get_args(hint)
    optional = type(None) in args
    return (next(a for a in args if a is not type(None)) if optional else hint), optional


def key_types() -> dict[str, tuple[Any, bool]]:
    """Every flat key with its type and whether ``none`` is allowed; a key that several
    methods have has one type in all of them."""
    return _key_types(tuple(METHODS))


@functools.cache
def _key_types(methods: tuple[str, ...]) -> dict[str, tuple[Any, bool]]:
    out: dict[str, tuple[Any, bool]] = {}
    for _, part, fields in key_parts():
        hints = typing.get_type_hints(part)
        for f in fields:
            base, optional = split_optional(hints[f.name])
            if f.name in out and out[f.name][0] != base:
                raise TypeError(f"config key {f.name} has two types: {out[f.name][0]}, {base}")
            out[f.name] = (base, optional or out.get(f.name, (None, False))[1])
    return out


def key_names() -> list[str]:
    """Every flat key of every registered method, sorted (what ``--set`` takes)."""
    return sorted(key_types())
