"""The configuration of a TTFS network: plain Python, importable without JAX.

A :class:`TTFSConfig` is frozen and hashable: it travels with the parameters as static data
(:class:`bntt_jax.ttfs.TTFSParams`) and is checked when it is built, so a bad value fails at
once with the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from bntt_jax import serialize
from bntt_jax.config import NetworkConfigError

#: Architectures: the paper's VGG-16 for CIFAR, and an MLP for small inputs.
TTFS_ARCHS = ("vgg16", "mlp")
#: How the image enters: encoded into input spike times (the paper, Sec. 6) or fed as analog
#: values to the first layer (the authors' code).
INPUT_CODINGS = ("ttfs", "analog")
#: 2×2 pooling on the decoded activations: max (the earliest spike; VGG-16's) or average.
POOLINGS = ("max", "avg")
#: The rounding of the spike time: Eq. 4's ceil (default), or the authors' code's round.
ROUNDINGS = ("ceil", "round")

#: VGG-16's 13 conv widths (Simonyan & Zisserman), 2×2 pooling after convs 2, 4, 7, 10 and 13.
VGG16_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
_VGG16_BLOCKS = (2, 2, 3, 3, 3)
#: VGG-16's fully connected hidden widths for CIFAR (FC1, FC2; then the output layer).
VGG16_HIDDEN = (512, 512)
DEFAULT_MLP_HIDDEN = (256, 256)


class TTFSConfigError(NetworkConfigError):
    """A :class:`TTFSConfig` field has a bad value; ``field`` names it."""

    def __init__(self, field: str, value: Any, problem: str) -> None:
        ValueError.__init__(self, f"TTFSConfig: {field}={value!r}: {problem}")
        self.field, self.problem = field, problem


@dataclasses.dataclass(frozen=True)
class TTFSLayer:
    """One layer with a temporal kernel: conv (3×3, stride 1, pad 1) or dense → BN → kernel,
    then an optional 2×2 pooling. ``size`` is a conv's output side before pooling."""

    name: str
    kind: str  # 'conv' or 'dense'
    features: int
    pool: bool = False
    size: int = 0


@dataclasses.dataclass(frozen=True)
class TTFSConfig:
    """Everything besides its arrays that a TTFS network needs (defaults: the paper's Table 3
    and Sec. 6 where it says, the authors' code where it is silent).

    Attributes:
      arch: ``'vgg16'`` (13 convs, FC 512-512-classes) or ``'mlp'``.
      time_window: T, the time steps of each layer's window (32).
      num_classes: output width.
      img_size, in_channels: the image (VGG-16; ``img_size`` a multiple of 32).
      in_features: input features (MLP).
      channels: the 13 conv widths of VGG-16 (change them for a narrower VGG-16-shaped net).
      hidden: the hidden widths: FC1, FC2 of VGG-16 (512, 512), or the MLP's (256, 256).
      tau0, t_d0: initial τ and t_d of every kernel (10 and 0, so ẑ_M,0 = 1).
      theta0: θ₀, the initial threshold of the spiking network (1.0).
      rounding: the spike-time quantiser: ``'ceil'`` (Eq. 4) or ``'round'`` (the code's, with
        the spiking threshold shifted half a step).
      input_coding: ``'ttfs'`` (input intensity as spike times, Sec. 6) or ``'analog'``.
      pooling: ``'max'`` or ``'avg'`` 2×2 pooling.
      dropout: dropout rate after every kernel layer (0: the paper mentions none; the code
        uses 0.3–0.5).
      use_bias: biases in convs and dense layers (Eq. 1 has b).
      bn_eps, bn_momentum: batch norm ε and running-average momentum (Keras: 1e-3, 0.99).
    """

    arch: str = "vgg16"
    time_window: int = 32
    num_classes: int = 10
    img_size: int | None = None
    in_channels: int | None = None
    in_features: int | None = None
    channels: tuple[int, ...] | None = None
    hidden: tuple[int, ...] | None = None
    tau0: float = 10.0
    t_d0: float = 0.0
    theta0: float = 1.0
    rounding: str = "ceil"
    input_coding: str = "ttfs"
    pooling: str = "max"
    dropout: float = 0.0
    use_bias: bool = True
    bn_eps: float = 1e-3
    bn_momentum: float = 0.99

    def __post_init__(self) -> None:
        for name, choices in (
            ("arch", TTFS_ARCHS),
            ("rounding", ROUNDINGS),
            ("input_coding", INPUT_CODINGS),
            ("pooling", POOLINGS),
        ):
            if getattr(self, name) not in choices:
                self._fail(name, f"choose one of {', '.join(choices)}.")
        self._positive_int("time_window")
        self._positive_int("num_classes")
        for name in ("tau0", "theta0", "bn_eps"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
                self._fail(name, "must be a finite number > 0 (τ ≤ 0 has no kernel).")
        if not isinstance(self.t_d0, numbers.Real) or not math.isfinite(self.t_d0):
            self._fail("t_d0", "must be a finite number.")
        if not 0 <= self.dropout < 1:
            self._fail("dropout", "must be in [0, 1).")
        if not 0 <= self.bn_momentum < 1:
            self._fail("bn_momentum", "must be in [0, 1).")
        if self.arch == "vgg16":
            self._check_vgg16()
        else:
            self._check_mlp()
        for name in ("channels", "hidden"):
            v = getattr(self, name)
            if v is not None:
                v = tuple(v)
                object.__setattr__(self, name, v)
                if not v and (name == "channels" or self.arch == "mlp"):
                    self._fail(name, "give at least one width.")
                if any(not isinstance(w, numbers.Integral) or w < 1 for w in v):
                    self._fail(name, "widths must be positive ints.")

    def _fail(self, name: str, message: str) -> None:
        raise TTFSConfigError(name, getattr(self, name), message)

    def _positive_int(self, name: str) -> None:
        v = getattr(self, name)
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            self._fail(name, "must be a positive int.")

    def _default(self, name: str, value: Any) -> None:
        if getattr(self, name) is None:
            object.__setattr__(self, name, value)

    def _check_vgg16(self) -> None:
        """VGG-16's images (default 32×32×3, a multiple of 32) and its 13 conv widths."""
        if self.in_features is not None:
            self._fail("in_features", "is for the MLP; VGG-16 takes img_size and in_channels.")
        self._default("img_size", 32)
        self._default("in_channels", 3)
        self._positive_int("img_size")
        self._positive_int("in_channels")
        if self.img_size % 32:
            self._fail("img_size", "VGG-16 halves the image five times: use a multiple of 32.")
        self._default("channels", VGG16_CHANNELS)
        self._default("hidden", VGG16_HIDDEN)
        if len(self.channels) != 13:
            self._fail("channels", "VGG-16 has 13 convs: give 13 widths.")

    def _check_mlp(self) -> None:
        """The MLP's input features and hidden widths (no image keys)."""
        if self.img_size is not None or self.in_channels is not None:
            self._fail("img_size", "is for VGG-16; the MLP takes in_features.")
        if self.channels is not None:
            self._fail("channels", "is for VGG-16; the MLP takes hidden.")
        if self.in_features is None:
            self._fail("in_features", "the MLP needs its number of input features.")
        self._positive_int("in_features")
        self._default("hidden", DEFAULT_MLP_HIDDEN)

    # ------------------------------------------------------------------ derived facts
    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample: ``(H, W, C)`` for VGG-16, ``(features,)`` for the MLP."""
        if self.arch == "vgg16":
            return (self.img_size, self.img_size, self.in_channels)
        return (self.in_features,)

    @property
    def layers(self) -> tuple[TTFSLayer, ...]:
        """The layers with a temporal kernel, in order (the output layer is not one)."""
        out: list[TTFSLayer] = []
        if self.arch == "vgg16":
            size, i = self.img_size, 0
            for block, n in enumerate(_VGG16_BLOCKS, start=1):
                for j in range(1, n + 1):
                    last = j == n
                    out.append(TTFSLayer(f"conv{block}_{j}", "conv", self.channels[i], last, size))
                    i += 1
                size //= 2
        for k, width in enumerate(self.hidden, start=1):
            out.append(TTFSLayer(f"fc{k}", "dense", width))
        return tuple(out)

    @property
    def kernel_names(self) -> tuple[str, ...]:
        """Every temporal kernel: the input's (with ``input_coding='ttfs'``), then each layer's."""
        names = tuple(spec.name for spec in self.layers)
        return ("input", *names) if self.input_coding == "ttfs" else names

    @property
    def num_weight_layers(self) -> int:
        """Layers with weights, the output layer included (16 for VGG-16)."""
        return len(self.layers) + 1

    @property
    def latency(self) -> int:
        """Inference latency in time steps, ``(layers + 1)·T`` (Sec. 6: one window for the
        input and one per layer; 17·32 = 544 for VGG-16 with T = 32)."""
        return (self.num_weight_layers + 1) * self.time_window

    def neurons_per_layer(self) -> dict[str, int]:
        """Spiking neurons per layer: the input (with ``input_coding='ttfs'``; Table 2 of the
        paper counts it) and every kernel layer; pooling and the output layer have none."""
        out = {"input": math.prod(self.input_shape)} if self.input_coding == "ttfs" else {}
        for spec in self.layers:
            out[spec.name] = (
                spec.size * spec.size * spec.features if spec.kind == "conv" else (spec.features)
            )
        return out

    def num_neurons(self) -> int:
        """N of Sec. 6.2: 280,576 for VGG-16 on 32×32×3 with the input layer."""
        return sum(self.neurons_per_layer().values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` inverts it."""
        return serialize.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TTFSConfig:
        return serialize.from_dict(cls, data)
