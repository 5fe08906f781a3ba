"""Which form computes each CPU operation: the one place the model's kernels are chosen.

Every operation with more than one form on CPU asks a function here, from its operands'
shapes and dtype, which form runs (a :class:`Pick`); the operation only holds its forms by
name. Nothing else in the package chooses. The guard (:func:`bntt_jax.cpu.ffi.runs`) says
whether the compiled code can run at all; the rest is speed:

* the compiled kernels (:mod:`bntt_jax.cpu.ffi`) are written for the target's vector width
  (64 bytes with AVX-512, 32 with AVX2, 16 on SSE and NEON), and how they compare with XLA's
  ops depends on it: XLA:CPU's convolutions and matmuls are precompiled in jaxlib and run at
  the same speed whatever the target, while a dense kernel of 16-byte vectors does a quarter
  of an AVX-512 one's work per instruction. So every 3×3 convolution's choice is made per
  target and size of feature map (:data:`TARGETS`), from crossovers measured with
  ``python -m benchmarks.kernels --isa {native,avx2,sse}`` on VGG9's and VGG11's layer shapes
  (``benchmarks/README.md``, "The kernels on every ISA"): its forward is event-driven (only
  the non-zero inputs) below ``conv_rate`` non-zero inputs, and dense above it (the compiled
  dense kernel or XLA's convolution); its dense input gradient is the compiled kernel or
  XLA's; after LIF neurons, its input gradient is computed on the surrogate's support alone
  (:mod:`bntt_jax.cpu.masked`) below ``masked_rate`` of the neurons in the support;
* the tiny maps, the large dense layers and the filter gradients have fixed rules, the same
  on every target (the constants below, each with its measurement);
* the event-driven filter gradient and the fused BNTT + LIF layers have no alternative to
  weigh: they beat XLA's forms on every target measured (1.2–5.2× and 1.6–3.0×).

A choice that depends on the data (how many inputs are non-zero, how many neurons are in the
support) is measured on every call and taken with ``lax.cond`` (:meth:`Pick.run`); all forms
compute the same function, up to summation order. :func:`describe` says what runs where;
``benchmarks.compare`` prints it and every run's ``log.txt`` holds it. This module imports
nothing of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import lax

from bntt_jax.cpu import ffi

#: Feature maps of at most this many pixels (VGG11's 2×2) run the convolution forward as
#: im2col's one matmul without the compiled code (XLA:CPU's convolution is pathological there:
#: 5.7 s for what a matmul does in 0.13 s), event-driven with it, and XLA's input gradient
#: (one matmul beats the compiled kernel's 6-pixel blocks).
SMALL_MAP = 4
#: On maps of at most this many pixels (VGG11's 4×4 and 2×2) the filter gradient of an input
#: with more than :data:`DENSE_FILTER_GRAD_RATE` non-zeros is im2col's matmul: there an
#: image's few non-zeros per channel each update rows of a partial gradient far larger than L2
#: (9·512·512 floats). 4×4, 256 → 512 at 70 %: 0.304 s event-driven, 0.187 s matmul; at 26 %
#: 0.169 and 0.179 s (``benchmarks/README.md``).
SMALL_FILTER_GRAD_MAP = 16
DENSE_FILTER_GRAD_RATE = 0.4
#: On maps of at most this many pixels XLA's input gradient is im2col's transpose, one matmul
#: whose patch matrix is small there; on larger maps it is the flipped convolution. As an AVX2
#: machine, T·B = 800: 4×4, 512 → 512 0.377 s against 0.449 s, 256 → 512 0.206 against
#: 0.230 s; 8×8, 256 → 256 0.541 against 0.442 s (2×2: 0.099 against 6.5 s).
SMALL_INPUT_GRAD_MAP = 16
#: Dense layers with fewer inputs or outputs than this (the 10-class readout, the 1-pixel
#: input of the sequential MLP) keep the XLA matmul on CPU, which is faster there.
MIN_SPARSE_FEATURES = 16
#: A dense layer's weight gradient is event-driven only while its float32 partial sums fit in
#: L2 (the sequential MLP's 256 × 256); larger ones (VGG9's 4096 × 1024 fc1: 16 MB) would
#: update rows all over memory, and XLA's matmul is 5× faster there (``benchmarks/README.md``).
SPARSE_DENSE_GRAD_BYTES = 1 << 20
#: Above this fraction of non-zero inputs a dense layer over :data:`SPARSE_DENSE_GRAD_BYTES`
#: of weights takes XLA's matmul forward: its event-driven forward gathers rows of a weight
#: matrix larger than L2 (VGG9's fc1: the two take the same time at ~19 %).
DENSE_MATMUL_RATE = 0.2


@dataclass(frozen=True)
class Pick:
    """Which form computes one operation: ``below`` while the measured fraction (of non-zero
    inputs, or of neurons in the surrogate's support) is at most ``rate``, ``above`` beyond it;
    ``below`` alone where ``above`` is None. The forms' names: ``"event"`` (the compiled
    event-driven kernel), ``"kernel"`` (a compiled dense kernel), ``"support"`` (the compiled
    input gradient on the support), ``"fused"`` (a compiled fused layer), ``"xla"`` (XLA's
    op), ``"im2col"`` (XLA's op in im2col form, one matmul)."""

    below: str
    above: str | None = None
    rate: float = 1.0

    def run(self, forms: Mapping[str, Callable], fraction: Callable[[], jax.Array], *operands):
        """``forms[name](*operands)`` for the chosen form; where it depends on the data,
        ``fraction()`` is measured on this call and both forms are compiled (``lax.cond``)."""
        if self.above is None:
            return forms[self.below](*operands)
        return lax.cond(fraction() > self.rate, forms[self.above], forms[self.below], *operands)


def nonzero_fraction(x: jax.Array) -> jax.Array:
    """The fraction of ``x``'s elements that are non-zero, measured on every k-th of its N
    images (about 64 of them, spread over the folded time steps and the batch)."""
    sample = x[:: max(1, x.shape[0] // 64)]
    return jnp.mean(sample != 0, dtype=jnp.float32)


@dataclass(frozen=True)
class MapChoice:
    """What runs a 3×3 convolution on one size of feature map, on one target."""

    dense_forward: str  # "kernel" (the compiled dense forward) or "xla" (XLA's convolution)
    conv_rate: float  # event-driven forward below this fraction of non-zero inputs
    input_grad: str  # the dense input gradient: "kernel" or "xla"
    masked_rate: float  # the input gradient on the support below this fraction in the support


@dataclass(frozen=True)
class TargetChoice:
    """One target's choices: by map size (the smallest map of each class, in pixels, largest
    class first) and, for dense layers, where the input gradient on the support stops paying."""

    maps: tuple[tuple[int, MapChoice], ...]
    dense_masked_rate: float


_KERNEL = MapChoice("kernel", 0.6, "kernel", 0.6)

#: Vector bytes of the build -> its choices. The numbers, N = 800 images, 26 % of the inputs
#: non-zero, 31 % in the support (seconds; benchmarks/README.md has the tables):
#: * 64 bytes (AVX-512): every compiled kernel beats or ties XLA (dense forward 1.05–2.4×,
#:   input gradient 0.97–2.5×); the event-driven forward crosses the dense kernel at 55–75 %.
#: * 32 bytes (AVX2): the dense forward ties XLA's convolution on 16² (0.317 vs 0.336 s) and
#:   loses on 8² and 4² (0.412 vs 0.324 s, 0.522 vs 0.340 s): XLA runs those. The dense input
#:   gradient loses on 4² (0.555 vs 0.313 s), XLA runs it there; on 8² it loses alone (0.183
#:   vs 0.163 s on 128 → 256, the one 8² layer of VGG9 that takes it) but wins in the step
#:   (VGG9 T = 25 training 3.74 and 3.84 s against 3.91 and 3.91 s with XLA's, alternated; 190
#:   MB less peak memory): the kernel runs it down to 8². The event-driven forward crosses the
#:   dense forms at 50–60 %, the input gradient on the support XLA's at ~45 % on 4².
#: * 16 bytes (SSE, NEON): the dense kernels lose to XLA's precompiled convolutions on every
#:   map (forward 0.23–0.77×, input gradient 0.21–0.97×): XLA runs every dense forward and
#:   input gradient; the event-driven forward crosses XLA's at 60 % on 32², 27–30 % on 16² and 8²,
#:   20 % on 4², the input gradient on the support at 54 %, 53 %, 41 % and 32 %.
TARGETS: dict[int, TargetChoice] = {
    64: TargetChoice(maps=((0, _KERNEL),), dense_masked_rate=0.6),
    32: TargetChoice(
        maps=(
            (1024, MapChoice("kernel", 0.55, "kernel", 0.6)),
            (256, MapChoice("kernel", 0.6, "kernel", 0.6)),
            (64, MapChoice("xla", 0.55, "kernel", 0.6)),
            (0, MapChoice("xla", 0.5, "xla", 0.45)),
        ),
        dense_masked_rate=0.6,
    ),
    16: TargetChoice(
        maps=(
            (1024, MapChoice("xla", 0.6, "xla", 0.5)),
            (256, MapChoice("xla", 0.27, "xla", 0.5)),
            (64, MapChoice("xla", 0.3, "xla", 0.4)),
            (0, MapChoice("xla", 0.2, "xla", 0.3)),
        ),
        dense_masked_rate=0.4,
    ),
}


def target_choice() -> TargetChoice:
    """The choices for the build in use (the 64-byte ones where none is loaded: then no
    compiled code runs and nothing here is asked)."""
    info = ffi.target()
    width = info["vector_bytes"] if info else 64
    return TARGETS[min((w for w in TARGETS if w >= width), default=64)]


def for_map(pixels: int) -> MapChoice:
    """The choices for a 3×3 convolution on maps of ``pixels`` pixels (H·W)."""
    return next(pick for least, pick in target_choice().maps if pixels >= least)


def _pixels(x: jax.Array) -> int:
    return x.shape[1] * x.shape[2]


def conv_compiled(x: jax.Array) -> bool:
    """Whether the compiled code computes the 3×3 convolution of ``x`` on CPU (the guard,
    :func:`bntt_jax.cpu.ffi.runs`); without it the forward is XLA's and the backward the
    im2col form's vector-Jacobian product."""
    return ffi.runs(x)


def conv_forward(x: jax.Array) -> Pick:
    """The 3×3 convolution's forward on CPU of ``x`` ``[N, H, W, C]``: without the compiled
    code XLA's (im2col on maps of at most :data:`SMALL_MAP` pixels); with it event-driven, and
    above the target's ``conv_rate`` non-zeros its dense forward (:func:`for_map`)."""
    small = _pixels(x) <= SMALL_MAP
    if not conv_compiled(x):
        return Pick("im2col" if small else "xla")
    if small:
        return Pick("event")
    pick = for_map(_pixels(x))
    return Pick("event", pick.dense_forward, pick.conv_rate)


def conv_filter_grad(x: jax.Array) -> Pick:
    """The 3×3 convolution's filter gradient with the compiled code: event-driven, and on maps
    of at most :data:`SMALL_FILTER_GRAD_MAP` pixels im2col's matmul above
    :data:`DENSE_FILTER_GRAD_RATE` non-zero inputs."""
    if _pixels(x) <= SMALL_FILTER_GRAD_MAP:
        return Pick("event", "im2col", DENSE_FILTER_GRAD_RATE)
    return Pick("event")


def conv_input_grad(g: jax.Array) -> Pick:
    """The 3×3 convolution's dense input gradient with the compiled code, for the output
    gradient ``g`` ``[N, H, W, D]``: the compiled kernel or XLA's, as :func:`for_map` says
    (XLA's on maps of at most :data:`SMALL_MAP` pixels)."""
    pixels = _pixels(g)
    if pixels <= SMALL_MAP or for_map(pixels).input_grad == "xla":
        return Pick("xla")
    return Pick("kernel")


def xla_input_grad(g: jax.Array) -> Pick:
    """XLA's form of the 3×3 convolution's input gradient: im2col's transpose on maps of at
    most :data:`SMALL_INPUT_GRAD_MAP` pixels, the flipped forward convolution above."""
    return Pick("im2col" if _pixels(g) <= SMALL_INPUT_GRAD_MAP else "xla")


def conv_input_grad_on_support(x: jax.Array) -> Pick | None:
    """The input gradient of a 3×3 convolution of LIF spikes ``x``: None without the compiled
    code or on maps of at most :data:`SMALL_MAP` pixels (the convolution's own gradient);
    otherwise on the support alone below the target's ``masked_rate`` of the neurons in it,
    and the dense input gradient (:func:`conv_input_grad`) above."""
    if not conv_compiled(x) or _pixels(x) <= SMALL_MAP:
        return None
    return Pick("support", "dense", for_map(_pixels(x)).masked_rate)


def dense_compiled(x: jax.Array, kernel: jax.Array) -> bool:
    """Whether the compiled code computes the dense layer ``x @ kernel`` on CPU: it runs on
    ``x`` and the layer has at least :data:`MIN_SPARSE_FEATURES` inputs and outputs."""
    return min(kernel.shape) >= MIN_SPARSE_FEATURES and ffi.runs(x)


def _large(x: jax.Array, kernel: jax.Array) -> bool:
    return kernel.size * x.dtype.itemsize > SPARSE_DENSE_GRAD_BYTES


def dense_forward(x: jax.Array, kernel: jax.Array) -> Pick:
    """The dense layer's forward on CPU: XLA's matmul where :func:`dense_compiled` is false;
    event-driven, and for a layer of more than :data:`SPARSE_DENSE_GRAD_BYTES` of weights XLA's
    matmul above :data:`DENSE_MATMUL_RATE` non-zero inputs."""
    if not dense_compiled(x, kernel):
        return Pick("xla")
    if _large(x, kernel):
        return Pick("event", "xla", DENSE_MATMUL_RATE)
    return Pick("event")


def dense_weight_grad(x: jax.Array, kernel: jax.Array) -> Pick:
    """The dense layer's weight gradient where :func:`dense_compiled`: event-driven up to
    :data:`SPARSE_DENSE_GRAD_BYTES` of weights, XLA's matmul above."""
    return Pick("xla" if _large(x, kernel) else "event")


def dense_input_grad_on_support(x: jax.Array, kernel: jax.Array) -> Pick | None:
    """The input gradient of a dense layer of LIF spikes ``x``: None where
    :func:`dense_compiled` is false (the matmul's own gradient); otherwise on the support
    alone below the target's ``dense_masked_rate`` of the neurons in it, ``g @ kernelᵀ``
    above."""
    if not dense_compiled(x, kernel):
        return None
    return Pick("support", "dense", target_choice().dense_masked_rate)


def support_gradients() -> bool:
    """Whether a spiking layer hands its membrane to the synapses after it, for their input
    gradient on the surrogate's support (:mod:`bntt_jax.cpu.masked`): where the compiled code
    is usable, the only place that gradient's kernels run."""
    return ffi.usable()


def fused_layers(x: jax.Array) -> bool:
    """Whether the compiled fused BNTT + LIF layers run on ``x`` (training and evaluation;
    they beat XLA's composition on every target)."""
    return ffi.runs(x)


def eval_conv(spikes: jax.Array) -> Pick:
    """A fused evaluation layer's 3×3 convolution of ``spikes`` ``[T, B, H, W, C]``: the fused
    event-driven layer, unless the target runs inputs this dense by XLA's convolution
    (:func:`for_map`): then above ``conv_rate`` non-zeros that convolution runs before the
    affine map and the neurons."""
    pick = for_map(spikes.shape[2] * spikes.shape[3])
    if pick.dense_forward != "xla":
        return Pick("fused")
    return Pick("fused", "xla", pick.conv_rate)


def describe() -> str:
    """What runs where for the build in use, in a few lines (for logs and benchmarks)."""
    if ffi.target() is None:
        return "kernel choices: none (the pure-XLA paths run everywhere)"
    lines = ["kernel choices for this build (bntt_jax.cpu.choice):"]
    maps = target_choice().maps
    for (least, pick), above in zip(maps, (None, *(m for m, _ in maps[:-1])), strict=True):
        if above is None:
            size = f"maps of ≥ {least} px" if least else "every map"
        else:
            size = f"maps of {least}–{above - 1} px"
        lines.append(
            f"  3×3 conv on {size}: forward event-driven below {pick.conv_rate:.0%} non-zero "
            f"inputs, else {'the dense kernel' if pick.dense_forward == 'kernel' else 'XLA'}; "
            f"input gradient on the support below {pick.masked_rate:.0%}, else "
            f"{'the dense kernel' if pick.input_grad == 'kernel' else 'XLA'}"
        )
    dense_rate = target_choice().dense_masked_rate
    lines.append(
        f"  dense layers: input gradient on the support below {dense_rate:.0%}; "
        "filter gradients event-driven; BNTT + LIF fused (every target)"
    )
    return "\n".join(lines)
