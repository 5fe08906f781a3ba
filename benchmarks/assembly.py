"""The compiled kernels' hot loops as the compiler generates them, for each target.

    python -m benchmarks.assembly                       # x86-64-v4, -v3, -v2 (and aarch64)
    python -m benchmarks.assembly --march x86-64-v3 --listing InputGrad3x3

Compiles each source of ``bntt_jax/cpu/csrc`` to assembly (``g++ -S``, the library's own flags)
for each target, finds every innermost loop (a backward branch to a label, with no other loop
inside it) that does vector arithmetic (an FMA, or a multiply and an add without FMA), and
reports per kernel (the float32 instantiation of each OpenMP region): its hot loops'
instructions, and how many of them read or write the stack (``%rsp`` operands on x86,
``sp`` on aarch64), the vector ones apart. A kernel whose vectors or register blocks
do not fit the target's registers shows stack traffic in its hot loops. An aarch64 target is
compiled with ``aarch64-linux-gnu-g++`` (``-mcpu=neoverse-n1``) where that cross-compiler is
installed, else left out.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Each kernel's float32 code, by the functions that hold its loops after inlining (the first
#: function template named in a function's name decides).
KERNELS = {
    "forward, event-driven": ("ImageByTaps", "Forward"),
    "forward + LIF, evaluation": ("ForwardLifEval",),
    "filter gradient, 3x3": ("FilterGrad3x3",),
    "filter gradient, per pixel": ("FilterGrad", "AddImageByPixels"),
    "input gradient, dense": ("InputGradBlock", "InputGrad3x3"),
    "input gradient, on the support": ("PixelGroup", "InputGradOnSupport"),
    "BNTT + LIF training, forward": ("LifTrainForward",),
    "BNTT + LIF training, backward": ("LifTrainBackward",),
}
X86_TARGETS = ("x86-64-v4", "x86-64-v3", "x86-64-v2")
AARCH64 = ("aarch64-linux-gnu-g++", "-mcpu=neoverse-n1")

#: Packed multiplies (FMA, or a multiply where the target has none) by register width.
_X86_MATH = re.compile(r"v?(fn?madd\d*|mul)ps")
_ARM_MATH = re.compile(r"fml[as]|fmul")
_WIDEST = {"x86-64-v4": "%zmm", "x86-64-v3": "%ymm", "x86-64-v2": "%xmm", "aarch64": ".4s"}


@dataclass
class Loop:
    function: str
    instructions: int
    multiplies: int  # float32 multiplies or FMAs on the target's widest vectors
    stack: int  # instructions with a stack operand
    stack_vector: int  # of which vector loads, stores or arithmetic
    body: list[str]


def _is_stack(line: str, arm: bool) -> bool:
    if arm:
        return "[sp" in line
    return "(%rsp)" in line  # %rbp is a general register at -O3


def _is_vector(line: str, arm: bool) -> bool:
    if arm:
        return bool(re.search(r"\b[qv]\d+\b", line))
    return bool(re.search(r"%[xyz]mm\d+", line))


def functions(text: str) -> dict[str, list[str]]:
    """The assembly's functions by (mangled) name: their instructions and local labels, in
    order; directives and comments left out."""
    out: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        local = re.fullmatch(r"\.L\w+:", line)
        if not line or (line.startswith((".", "#", "//")) and not local):
            continue
        function = re.fullmatch(r"([A-Za-z_$][\w.$@]*):", line)
        if function:
            current = function.group(1)
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


_X86_JUMP, _X86_BRANCH = re.compile(r"jmp"), re.compile(r"j[a-z]+")
_ARM_JUMP = re.compile(r"b")
_ARM_BRANCH = re.compile(r"b\.?(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)|cbn?z|tbn?z")


def _blocks(lines: list[str], arm: bool) -> tuple[list[list[str]], list[set[int]]]:
    """The function's basic blocks (split at labels and after branches) and each block's
    successors (by index)."""
    jump, branch = (_ARM_JUMP, _ARM_BRANCH) if arm else (_X86_JUMP, _X86_BRANCH)
    blocks: list[list[str]] = [[]]
    for ln in lines:
        if ln.endswith(":") and blocks[-1]:
            blocks.append([])
        blocks[-1].append(ln)
        mnemonic = ln.split()[0]
        if jump.fullmatch(mnemonic) or branch.fullmatch(mnemonic) or mnemonic == "ret":
            blocks.append([])
    starts = {ln[:-1]: i for i, block in enumerate(blocks) for ln in block[:1] if ln.endswith(":")}
    successors: list[set[int]] = []
    for i, block in enumerate(blocks):
        last = block[-1].replace(",", " ").split() if block else [""]
        targets = {starts[last[-1]]} if last[-1] in starts else set()
        if last[0] == "ret" or jump.fullmatch(last[0]):
            successors.append(targets)
        else:  # a conditional branch, or none: it may also fall through
            successors.append(targets | ({i + 1} if i + 1 < len(blocks) else set()))
    return blocks, successors


def innermost_loops(lines: list[str], arm: bool) -> list[list[str]]:
    """The instructions of every innermost loop: for each edge B -> H of a cycle, the blocks
    that reach B without passing H, and H (a natural loop where H dominates them); the loops
    with no other loop inside them."""
    blocks, successors = _blocks(lines, arm)
    predecessors: list[set[int]] = [set() for _ in blocks]
    for i, after in enumerate(successors):
        for j in after:
            predecessors[j].add(i)
    loops: list[frozenset[int]] = []
    for tail, after in enumerate(successors):
        for head in after:
            body, stack = {head, tail}, [tail] if tail != head else []
            while stack:
                for p in predecessors[stack.pop()]:
                    if p not in body:
                        body.add(p)
                        stack.append(p)
            if head <= tail or all(h in body for h in (head, tail)):
                if _reaches(successors, head, tail):
                    loops.append(frozenset(body))
    innermost = {b for b in loops if not any(o < b for o in loops)}
    return [[ln for i in sorted(b) for ln in blocks[i] if not ln.endswith(":")] for b in innermost]


def _reaches(successors: list[set[int]], start: int, goal: int) -> bool:
    seen, stack = {start}, [start]
    while stack:
        i = stack.pop()
        if i == goal:
            return True
        for j in successors[i] - seen:
            seen.add(j)
            stack.append(j)
    return False


def kernel_of(function: str) -> str | None:
    """The kernel whose float32 code a (demangled) function holds, or ``None``."""
    named = re.findall(r"::(\w+)<float\b", function)
    for template in named:
        for kernel, templates in KERNELS.items():
            if template in templates:
                return kernel
    return None


def multiplies(line: str, target: str) -> bool:
    """Whether an instruction is a float32 multiply or FMA on the target's widest vectors."""
    parts = line.split(None, 1)
    if not parts:
        return False
    math = _ARM_MATH if target == "aarch64" else _X86_MATH
    return bool(math.fullmatch(parts[0])) and _WIDEST[target] in line


def hot_loops(text: str, target: str, demangled: dict[str, str]) -> dict[str, Loop]:
    """Each kernel's hot loop: of its innermost loops, the one with the most multiplies on the
    target's widest vectors (the shorter of two alike)."""
    arm = target == "aarch64"
    out: dict[str, Loop] = {}
    for name, lines in functions(text).items():
        readable = demangled.get(name, name)
        kernel = kernel_of(readable)
        if kernel is None:
            continue
        for body in innermost_loops(lines, arm):
            count = sum(multiplies(ln, target) for ln in body)
            if count == 0:
                continue
            stack = [ln for ln in body if _is_stack(ln, arm)]
            loop = Loop(
                readable,
                len(body),
                count,
                len(stack),
                sum(_is_vector(ln, arm) for ln in stack),
                body,
            )
            best = out.get(kernel)
            if best is None or (count, -len(body)) > (best.multiplies, -best.instructions):
                out[kernel] = loop
    return out


def compile_to_assembly(compiler: str, flags: list[str], source: Path) -> str:
    import jax

    from bntt_jax.cpu import build  # JAX: after the target and XLA flags are set

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.s"
        own = [f for f in build.FLAGS if f != "-shared" and not f.startswith("-march")]
        cmd = [
            compiler,
            *flags,
            *own,
            "-S",
            "-isystem",
            jax.ffi.include_dir(),
            str(source),
            "-o",
            str(out),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{proc.stderr[-2000:]}")
        return out.read_text()


def _demangle(names: list[str], arm: bool) -> dict[str, str]:
    tool = shutil.which("aarch64-linux-gnu-c++filt" if arm else "c++filt") or shutil.which(
        "c++filt"
    )
    if tool is None:
        return {}
    proc = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True)
    return dict(zip(names, proc.stdout.splitlines(), strict=False))


def analyse(target: str) -> dict[str, Loop]:
    """Every kernel's hot loop for one target (an x86 ``-march`` or ``aarch64``)."""
    from bntt_jax.cpu import build  # JAX: after the target and XLA flags are set

    arm = target == "aarch64"
    compiler, flags = (AARCH64[0], [AARCH64[1]]) if arm else ("g++", [f"-march={target}"])
    result: dict[str, Loop] = {}
    for name in build.SOURCES:
        text = compile_to_assembly(compiler, flags, build._SOURCE_DIR / name)
        result.update(hot_loops(text, target, _demangle(list(functions(text)), arm)))
    return result


def targets(requested: list[str] | None) -> list[str]:
    if requested:
        return requested
    return [*X86_TARGETS, *(["aarch64"] if shutil.which(AARCH64[0]) else [])]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.assembly", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--march",
        nargs="*",
        choices=[*X86_TARGETS, "aarch64"],
        help="targets (default: x86-64-v4, -v3, -v2, and aarch64 where it builds)",
    )
    p.add_argument("--listing", action="store_true", help="print each hot loop's instructions")
    args = p.parse_args(argv)
    print(
        "| target | kernel | hot loop: instructions | multiplies (widest vectors) | "
        "stack operands | of which vector |\n|---|---|---|---|---|---|"
    )
    listings = []
    for target in targets(args.march):
        loops = analyse(target)
        for label in KERNELS:
            loop = loops.get(label)
            if loop is None:
                print(f"| {target} | {label} | – | 0 | – | – |")
                continue
            print(
                f"| {target} | {label} | {loop.instructions} | {loop.multiplies} | "
                f"{loop.stack} | {loop.stack_vector} |"
            )
            listings.append(f"\n{target}, {label} ({loop.function}):\n  " + "\n  ".join(loop.body))
    if args.listing:
        print("\n".join(listings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
