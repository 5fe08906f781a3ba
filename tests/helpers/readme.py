"""The README's Python blocks, each run on its own as a reader would paste it."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def run_block(containing: str) -> dict:
    """Execute the one README Python block that contains ``containing`` in a fresh namespace
    (its own imports: nothing else) and return that namespace."""
    text = README.read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    (block,) = [b for b in blocks if containing in b]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    return namespace
