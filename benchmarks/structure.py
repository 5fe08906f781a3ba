"""The shape of the code in numbers: how many files a value crosses on its way through a run,
which functions are long, how often the formatter is kept out, and where imports run in a circle.

    python -m benchmarks.structure            # the static counts
    python -m benchmarks.structure --trace    # and a traced digits_bntt run (one epoch, ~30 s)

The trace follows two things through a real run, function by function in the order they are
first called (and, for the plan, at every call of a two-epoch run): the run plan (every call
that receives the ``RunPlan``, one of its parts (its config, paper values, data or mesh) or a
path in its results folder) and ``num_steps`` (every call with a parameter of that name). Each
function counts once, at its first call; a *file crossed* is one the walk enters, a *return* is
entering a file it had left before (the walk ``a b a`` crosses two files and returns once).
Fewer files and fewer returns mean a reader follows the value without paging back and forth.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
import tempfile
import tokenize
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
PACKAGES = ("bntt_jax", "experiments", "benchmarks")
LONG = 60


def sources(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def long_functions(limit: int = LONG) -> list[tuple[str, int]]:
    """``(file:function, lines)`` of every function longer than ``limit`` lines (its
    decorators and docstring included), longest first."""
    out = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if (n := node.end_lineno - first + 1) > limit:
                    out.append((f"{path.relative_to(ROOT)}:{node.name}", n))
    return sorted(out, key=lambda x: -x[1])


def formatter_skips(packages: tuple[str, ...] = (*PACKAGES, "tests")) -> dict[str, int]:
    """How many lines keep the formatter out (a ``# fmt: skip`` comment), per package."""
    return {package: sum(map(_skips, sources((package,)))) for package in packages}


def _skips(path: Path) -> int:
    with open(path, "rb") as f:
        tokens = tokenize.tokenize(f.readline)
        return sum(t.type == tokenize.COMMENT and "fmt: skip" in t.string for t in tokens)


def walk(calls: list[str]) -> dict[str, Any]:
    """Files crossed and returns of a walk given as the file of each call, in order; and the
    returns once calls into leaf modules (:func:`is_leaf`: helpers such as atomic writes, which
    a reader follows no further) are left out."""
    stays = [f for i, f in enumerate(calls) if i == 0 or calls[i - 1] != f]
    visits = Counter(stays)
    inner = [f for f in calls if not is_leaf(f)]
    inner_stays = [f for i, f in enumerate(inner) if i == 0 or inner[i - 1] != f]
    return {
        "files": len(visits),
        "returns": len(stays) - len(visits),
        "returns_without_leaves": len(inner_stays) - len(set(inner_stays)),
        "leaves": sorted({f for f in calls if is_leaf(f)}),
        "visits": dict(visits.most_common()),
    }


def is_leaf(file: str) -> bool:
    """Whether the module ``file`` (relative to the repository) imports nothing of ours."""
    tree = ast.parse((ROOT / file).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] in PACKAGES for a in node.names
        ):
            return False
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            return False
    return True


class _Follower:
    """A profile hook that records, once per function, the calls that receive a followed value."""

    def __init__(self) -> None:
        self.plan_parts: list[Any] = []
        self.seen: dict[str, set] = {"plan": set(), "num_steps": set()}
        self.calls: dict[str, list[str]] = {"plan": [], "plan, every call": [], "num_steps": []}

    def _follows(self, value: Any) -> bool:
        """A part of the plan, or a path in its results folder."""
        if any(value is p for p in self.plan_parts):
            return True
        out = self.plan_parts[0].out if self.plan_parts else None
        return (
            isinstance(value, Path)
            and out is not None
            and value.absolute().is_relative_to(out.absolute())
        )

    def __call__(self, frame, event, arg):  # noqa: ANN001  (sys.setprofile's signature)
        if event != "call":
            return
        code = frame.f_code
        path = Path(code.co_filename)
        if not path.is_relative_to(ROOT) or path.parts[len(ROOT.parts)] not in PACKAGES:
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        where = f"{path.relative_to(ROOT)}"
        site = (where, code.co_firstlineno)
        values = [frame.f_locals.get(n) for n in names]
        if any(self._follows(v) for v in values):
            self.calls["plan, every call"].append(where)
            if site not in self.seen["plan"]:
                self.seen["plan"].add(site)
                self.calls["plan"].append(where)
        if "num_steps" in names and site not in self.seen["num_steps"]:
            self.seen["num_steps"].add(site)
            self.calls["num_steps"].append(where)


def trace_run(name: str = "digits_bntt") -> dict[str, Any]:
    """Run ``name`` for two epochs of two batches under the profile hook; the walks of the plan
    (each function at its first call, and every call) and of num_steps."""
    import experiments  # noqa: F401  (the registry; imported here so the static counts load no JAX)
    from experiments.core import runner

    follower = _Follower()
    original = runner.train

    def train(plan, *args, **kwargs):  # noqa: ANN001, ANN202
        parts = [getattr(plan, f.name) for f in dataclasses.fields(plan)]
        follower.plan_parts[:] = [plan, *(p for p in parts if p is not None)]
        sys.setprofile(follower)
        try:
            return original(plan, *args, **kwargs)
        finally:
            sys.setprofile(None)

    runner.train = train
    try:
        with tempfile.TemporaryDirectory() as tmp:
            changes = dict(epochs=2, max_train_batches=2, eval_every=1)
            config = experiments.get(name).config.replace(**changes)
            runner.run_experiment(name, config, Path(tmp) / "run")
    finally:
        runner.train = original
    return {what: walk(calls) for what, calls in follower.calls.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.structure", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--trace", action="store_true", help="also trace a digits_bntt run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {
        "functions_over_60_lines": long_functions(),
        "fmt_skip": formatter_skips(),
    }
    if args.trace:
        out["trace"] = trace_run()
    if args.json:
        print(json.dumps(out, indent=1))
        return
    longs = out["functions_over_60_lines"]
    print(f"functions over {LONG} lines ({', '.join(PACKAGES)}): {len(longs)}")
    for where, n in longs:
        print(f"  {n:4d}  {where}")
    skips = out["fmt_skip"]
    print(f"'# fmt: skip' lines: {sum(skips.values())} ({skips})")
    for what, w in out.get("trace", {}).items():
        print(
            f"following {what}: {w['files']} files crossed, {w['returns']} returns "
            f"({w['returns_without_leaves']} without calls into leaf modules: "
            f"{', '.join(w['leaves']) or 'none'}); visits: "
            + ", ".join(f"{f} {n}" for f, n in w["visits"].items())
        )


if __name__ == "__main__":
    main()
