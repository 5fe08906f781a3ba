"""Network configuration: the architecture facts that travel with the parameters.

A :class:`NetworkConfig` is frozen and hashable, so it rides along with the parameters as
static data (``jax.jit`` sees it as part of the tree structure, not as an array).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from typing import Any

from bntt_jax import serialize
from bntt_jax.constants import ARCHS, EPS, MOMENTUM, RESETS, SURROGATE_ALPHA
from bntt_jax.norms import NORMS, Normalization, normalization

# Conv widths with 'P' = 2x2 average pool and 'G' = global average pool (the authors'
# released model.py), then the hidden fully connected widths before the readout.
_VGG_PLANS: dict[str, tuple[tuple[int | str, ...], tuple[int, ...]]] = {
    "vgg9": ((64, 64, "P", 128, 128, "P", 256, 256, 256, "P"), (1024,)),
    "vgg11": ((64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "G"), (4096,)),
}
# Leak λ of the authors' runs: VGG9 0.95, VGG11 0.99 (their argparse default, used for the MLP);
# a plan of your own starts from VGG9's.
DEFAULT_LEAK = {"vgg9": 0.95, "vgg11": 0.99, "mlp": 0.99, "custom": 0.95}
#: The words of a layer plan (``arch='custom'``): a 3×3 convolution of N channels, a dense
#: layer of N neurons, a 2×2 average pool or a global average pool after a convolution.
PLAN_WORDS = {
    "cN": "3x3 conv, N channels",
    "fN": "dense, N neurons",
    "p": "2x2 average pool",
    "g": "global average pool",
}
EXAMPLE_PLAN = "c64,c64,p,c128,c128,p,f256"
#: The most words a plan may have: 4× the deepest SNNs trained by BPTT (ResNet-34, ~70 layers
#: with their pools), far beyond what BPTT's memory allows, yet parsed and checked at once.
MAX_PLAN_WORDS = 256


def parse_plan(plan: Any) -> tuple[tuple[str | int, ...], tuple[int, ...]]:
    """A layer plan (``("c64", "p", "f256")`` or ``"c64,p,f256"``) as ``(convs, dense)`` in the
    form of ``_VGG_PLANS``; ``ValueError`` names the first word it cannot take."""
    words = tuple(w.strip().lower() for w in (plan.split(",") if isinstance(plan, str) else plan))
    if len(words) > MAX_PLAN_WORDS:
        raise ValueError(
            f"the plan has {len(words)} words; at most {MAX_PLAN_WORDS} (layers and pools), "
            f"e.g. {EXAMPLE_PLAN}."
        )
    convs: list[str | int] = []
    dense: list[int] = []
    shown = ",".join(words) if len(words) <= 20 else f"of {len(words)} words"
    for i, word in enumerate(words):
        where = f"word {i + 1} ({word!r}) of the plan {shown}"
        if word[:1] in ("c", "f") and word[1:].isdigit() and int(word[1:]) == 0:
            size = "channel" if word[0] == "c" else "neuron"
            raise ValueError(f"{where}: a layer has at least 1 {size}, e.g. {word[0]}64.")
        if word in ("p", "g"):
            if not convs or isinstance(convs[-1], str) or dense:
                raise ValueError(f"{where}: a pool follows a convolution (cN), once.")
            convs.append(word.upper())
        elif word[:1] in ("c", "f") and word[1:].isdigit() and int(word[1:]) > 0:
            if word[0] == "c" and dense:
                raise ValueError(f"{where}: convolutions come before the dense layers.")
            if word[0] == "c" and "G" in convs:
                raise ValueError(f"{where}: nothing convolves after a global pool.")
            (convs if word[0] == "c" else dense).append(int(word[1:]))
        else:
            words_help = "; ".join(f"{k}: {v}" for k, v in PLAN_WORDS.items())
            raise ValueError(f"{where}: unknown word; the words are {words_help}.")
    if not words:
        raise ValueError("the plan is empty; give at least one layer, e.g. " + EXAMPLE_PLAN)
    return tuple(convs), tuple(dense)


# Sequential MNIST network of the journal paper: FC(1,256)-FC(256,256)-FC(256,10).
DEFAULT_MLP_HIDDEN = (256, 256)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One spiking layer: synaptic op, normalisation, LIF, then an optional pooling."""

    name: str  # 'conv1', ..., 'fc1', ... : the authors' names
    kind: str  # 'conv' (3x3, stride 1, pad 1) or 'fc'
    features: int
    pool: str | None = None  # None, 'avg2' (2x2 average) or 'global' (global average)
    size: int = 0  # spatial side of this layer's output before pooling (conv only)


class NetworkConfigError(ValueError):
    """A :class:`NetworkConfig` field has a bad value; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"NetworkConfig: {message}")
        self.field = field


def _fail(field: str, msg: str) -> None:
    raise NetworkConfigError(field, msg)


def _suggest(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Everything :func:`bntt_jax.simulate` must know about a network besides its arrays.

    Attributes:
      arch: ``'vgg9'``, ``'vgg11'`` (BNTT paper Sec. 4, as the authors' released code),
        ``'mlp'`` (sequential inputs), or ``'custom'``: the layers of ``plan``.
      plan: ``arch='custom'`` only: the spiking layers in order, words ``cN`` (3×3
        convolution, N channels), ``p`` (2×2 average pool), ``g`` (global average pool) and
        ``fN`` (dense, N neurons), e.g. ``("c64", "c64", "p", "c128", "p", "f256")`` (or that
        string comma-separated); the readout follows. A plan that starts with a convolution
        takes images (``img_size``, ``in_channels``), one of dense layers ``in_features``.
      num_steps: T the parameters were built for (BNTT has one γᵗ and statistics per step).
      num_classes: readout width.
      img_size: input side for the VGGs (32 CIFAR, 64 Tiny-ImageNet); VGG only.
      in_channels: input channels for the VGGs; VGG only.
      in_features: input features per step for the MLP; MLP only.
      hidden: hidden widths of the MLP; MLP only.
      leak: membrane leak λ (default: 0.95 VGG9, 0.99 VGG11 and MLP).
      threshold: firing threshold θ (1.0, fixed).
      alpha: surrogate damping α of Eq. 8 (0.3).
      reset: ``'soft'`` (subtract θ after a spike, the papers') or ``'hard'`` (to 0, what
        NIR's neurons do: such a network exports with :func:`bntt_jax.to_nir`).
      norm: ``'bntt'`` (default), ``'bn'``, ``'layernorm'``, ``'tdbn'`` or ``'none'``.
      eps: normalisation ε (1e-4).
      momentum: running-statistics momentum, PyTorch convention (0.1).
    """

    arch: str = "vgg9"
    plan: tuple[str, ...] | None = None
    num_steps: int = 25
    num_classes: int = 10
    img_size: int | None = None
    in_channels: int | None = None
    in_features: int | None = None
    hidden: tuple[int, ...] | None = None
    leak: float | None = None
    threshold: float = 1.0
    alpha: float = SURROGATE_ALPHA
    reset: str = "soft"
    norm: str = "bntt"
    eps: float = EPS
    momentum: float = MOMENTUM

    def __post_init__(self) -> None:
        for name, choices in (("arch", ARCHS), ("norm", NORMS), ("reset", RESETS)):
            value = getattr(self, name)
            if value not in choices:
                hint = _suggest(str(value), choices)
                _fail(name, f"unknown {name} {value!r}; choose one of {choices}.{hint}")
        for name in ("num_steps", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail(name, f"{name} must be a positive int, got {value!r}.")
        self._check_layers()
        if self.takes_images:
            self._check_images()
        else:
            self._check_features()
        self._check_constants()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_layers(self) -> None:
        """A plan for ``arch='custom'`` only (its words lower-cased, parsed); hidden widths for
        the MLP only."""
        if self.arch == "custom":
            if self.plan is None:
                _fail("plan", f"arch='custom' needs a plan, e.g. plan={EXAMPLE_PLAN!r}.")
            plan = self.plan.split(",") if isinstance(self.plan, str) else self.plan
            self._set("plan", tuple(str(w).strip().lower() for w in plan))
            try:
                parse_plan(self.plan)
            except ValueError as err:
                _fail("plan", str(err))
        elif self.plan is not None:
            _fail("plan", f"plan applies to arch='custom' only (a {self.arch} has its own).")
        if self.arch != "mlp" and self.hidden is not None:
            _fail("hidden", f"hidden applies to arch='mlp' only; {self.arch} has its own layers.")

    def _check_features(self) -> None:
        """A network of feature vectors: ``in_features`` (default 1), the MLP's hidden widths."""
        for name in ("img_size", "in_channels"):
            if getattr(self, name) is not None:
                _fail(
                    name,
                    f"{name} applies to networks of images (a VGG, a plan that "
                    f"starts with a convolution); {self.arch} takes in_features.",
                )
        self._set("in_features", 1 if self.in_features is None else self.in_features)
        if self.arch == "mlp":
            hidden = DEFAULT_MLP_HIDDEN if self.hidden is None else tuple(self.hidden)
            if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
                _fail(
                    "hidden",
                    f"hidden must be a non-empty sequence of positive ints, got {self.hidden!r}.",
                )
            self._set("hidden", hidden)
        if not isinstance(self.in_features, int) or self.in_features < 1:
            _fail("in_features", f"in_features must be a positive int, got {self.in_features}.")

    def _check_images(self) -> None:
        """A network of images: ``img_size`` (default 32) that its pools divide, ``in_channels``
        (default 3)."""
        if self.in_features is not None:
            _fail(
                "in_features",
                f"in_features applies to networks of feature vectors; "
                f"{self.arch} takes images (img_size, in_channels).",
            )
        self._set("img_size", 32 if self.img_size is None else self.img_size)
        self._set("in_channels", 3 if self.in_channels is None else self.in_channels)
        factor = 2 ** sum(item == "P" for item in self._plan()[0])
        # a preset keeps the authors' shapes; a plan's pools floor odd sizes (PyTorch's)
        multiple = self.arch != "custom"
        size = self.img_size
        if not isinstance(size, int) or size < factor or (multiple and size % factor):
            need = f"a positive multiple of {factor}" if multiple else f"at least {factor}"
            _fail(
                "img_size",
                f"{self.arch} pools its input {factor.bit_length() - 1} times by 2, "
                f"so img_size must be {need}; got {self.img_size!r}.",
            )
        if not isinstance(self.in_channels, int) or self.in_channels < 1:
            _fail("in_channels", f"in_channels must be a positive int, got {self.in_channels}.")

    def _check_constants(self) -> None:
        """The neuron's and the normalisation's constants, as floats in their ranges."""
        for name in ("leak", "threshold", "alpha", "eps", "momentum"):
            value = getattr(self, name)
            if value is None and name == "leak":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                _fail(name, f"{name} must be a number, got {value!r}.")
            self._set(name, float(value))
        self._set("leak", DEFAULT_LEAK[self.arch] if self.leak is None else self.leak)
        if not 0.0 < self.leak <= 1.0:  # also false for NaN
            _fail("leak", f"leak must be in (0, 1] (the membrane keeps λ·u), got {self.leak}.")
        for name in ("threshold", "alpha", "eps"):
            value = getattr(self, name)
            if not 0.0 < value < math.inf:
                _fail(name, f"{name} must be finite and > 0, got {value}.")
        if not 0.0 <= self.momentum <= 1.0:
            _fail(
                "momentum",
                f"momentum must be in [0, 1] (PyTorch convention), got {self.momentum}.",
            )

    # ----------------------------------------------------------------- architecture facts
    @property
    def takes_images(self) -> bool:
        """Whether the input is images ``[H, W, C]`` (a VGG, a plan that starts with a
        convolution) rather than feature vectors."""
        return self.arch in _VGG_PLANS or (self.arch == "custom" and bool(self._plan()[0]))

    def _plan(self) -> tuple[tuple[str | int, ...], tuple[int, ...]]:
        if self.arch == "custom":
            return parse_plan(self.plan)
        if self.arch == "mlp":
            return (), tuple(self.hidden or DEFAULT_MLP_HIDDEN)
        return _VGG_PLANS[self.arch]

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """The spiking layers in order (the readout is not one of them)."""
        convs, fcs = self._plan()
        specs: list[LayerSpec] = []
        size = self.img_size or 0
        for item in convs:
            if item == "P":
                specs[-1] = dataclasses.replace(specs[-1], pool="avg2")
                size //= 2
            elif item == "G":
                specs[-1] = dataclasses.replace(specs[-1], pool="global")
                size = 1
            else:
                specs.append(LayerSpec(f"conv{len(specs) + 1}", "conv", int(item), size=size))
        specs += [LayerSpec(f"fc{i + 1}", "fc", f) for i, f in enumerate(fcs)]
        return tuple(specs)

    @property
    def readout_name(self) -> str:
        """Parameter name of the readout: the last ``fc`` (``fc2`` in the authors' VGGs)."""
        return f"fc{sum(spec.kind == 'fc' for spec in self.layers) + 1}"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample at one step: ``(H, W, C)`` or ``(features,)``."""
        if not self.takes_images:
            return (self.in_features,)
        return (self.img_size, self.img_size, self.in_channels)

    def neurons_per_layer(self) -> dict[str, int]:
        """Neurons of each spiking layer (one sample, one step): the denominator of Eq. 23."""
        return {
            spec.name: spec.features * (spec.size**2 if spec.kind == "conv" else 1)
            for spec in self.layers
        }

    @property
    def normalization(self) -> Normalization:
        """The :mod:`bntt_jax.norms` object of ``norm``: what it computes and what it has."""
        return normalization(self.norm)

    # ------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` inverts it."""
        return serialize.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        return serialize.from_dict(cls, data)
