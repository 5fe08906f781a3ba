"""Experiment configs as code: one frozen dataclass, overridable with ``--set key=value``."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any

import bntt_jax as bj
from bntt_jax.train import ENCODERS, OPTIMIZERS

DATASETS = ("digits", "cifar10", "cifar100")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs. Network fields mirror :class:`bntt_jax.NetworkConfig`."""

    dataset: str = "digits"
    arch: str = "mlp"
    norm: str = "bntt"
    num_steps: int = 25
    leak: float | None = None
    hidden: tuple[int, ...] | None = None
    encoder: str = "poisson"
    optimizer: str = "sgd"
    lr: float = 0.3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 256
    eval_batch_size: int = 512
    eval_every: int = 1
    seed: int = 0
    data_dir: str = "data"
    exit_threshold: float = 0.1
    max_train_batches: int | None = None
    max_eval_batches: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}.")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        for name in ("epochs", "batch_size", "eval_batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("max_train_batches", "max_eval_batches"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {getattr(self, name)}.")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")

    def network(self, num_classes: int, input_shape: tuple[int, ...]) -> bj.NetworkConfig:
        """The :class:`bntt_jax.NetworkConfig` of this run for a dataset's inputs."""
        common = dict(
            arch=self.arch,
            norm=self.norm,
            num_steps=self.num_steps,
            num_classes=num_classes,
            leak=self.leak,
        )
        if self.arch == "mlp":
            return bj.NetworkConfig(
                **common, in_features=math.prod(input_shape), hidden=self.hidden
            )
        return bj.NetworkConfig(**common, img_size=input_shape[0], in_channels=input_shape[-1])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["hidden"] is not None:
            out["hidden"] = list(out["hidden"])
        return out


def _parse(name: str, text: str) -> Any:
    """Parse ``text`` for the config field ``name``, by its resolved type hint."""
    hint = typing.get_type_hints(ExperimentConfig)[name]
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    if optional and text.lower() in ("none", "null"):
        return None
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    try:
        if typing.get_origin(base) is tuple:
            return tuple(int(v) for v in text.split(",") if v.strip())
        if base is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return base(text)
    except ValueError:
        kind = "comma-separated ints" if typing.get_origin(base) is tuple else base.__name__
        raise ValueError(
            f"--set {name}={text!r}: expected {kind}{' or none' if optional else ''}."
        ) from None


def apply_overrides(config: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply ``key=value`` strings; unknown keys and bad values raise ``ValueError``."""
    fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value.")
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"--set {key}: unknown key.{hint} Keys: {', '.join(fields)}.")
        changes[key] = _parse(key, value.strip())
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as err:
        raise ValueError(f"--set: {err}") from None
