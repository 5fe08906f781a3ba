"""Where a compiled kernel runs and where XLA's op does, for the target the kernels are built for.

The compiled kernels (:mod:`bntt_jax.cpu.ffi`) are written for the target's vector width (64
bytes with AVX-512, 32 with AVX2, 16 on SSE and NEON), and how they compare with XLA's ops
depends on it: XLA:CPU's convolutions and matmuls are precompiled in jaxlib and run at the same
speed whatever the target, while a dense kernel of 16-byte vectors does a quarter of an AVX-512
one's work per instruction. So every operation that has both a compiled and an XLA form is
chosen here, per target and per size of feature map, from crossovers measured with
``python -m benchmarks.kernels --isa {native,avx2,sse}`` on VGG9's and VGG11's layer shapes
(``benchmarks/README.md``, "The kernels on every ISA"):

* a 3×3 convolution's forward is event-driven (only the non-zero inputs) below ``conv_rate``
  non-zero inputs, and dense above it: the compiled dense kernel or XLA's convolution;
* its dense input gradient is the compiled kernel or XLA's
  (:func:`bntt_jax.cpu.convolution.xla_input_grad`);
* after LIF neurons, its input gradient is computed on the surrogate's support alone
  (:mod:`bntt_jax.cpu.masked`) below ``masked_rate`` of the neurons in the support, and by
  the dense input gradient above it.

The event-driven filter gradient and the fused BNTT + LIF layers have no such alternative to
weigh: they beat XLA's forms on every target measured (1.2–5.2× and 1.6–3.0×). :func:`describe`
says what runs where; ``benchmarks.compare`` prints it and every run's ``log.txt`` holds it.
This module imports nothing of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from bntt_jax.cpu import ffi


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


def dense_masked_rate() -> float:
    """Below this fraction of a dense layer's inputs in the surrogate's support, its input
    gradient is computed on the support alone."""
    return target_choice().dense_masked_rate


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
    lines.append(
        f"  dense layers: input gradient on the support below {dense_masked_rate():.0%}; "
        "filter gradients event-driven; BNTT + LIF fused (every target)"
    )
    return "\n".join(lines)
