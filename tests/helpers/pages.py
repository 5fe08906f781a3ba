"""The documentation's pages and their fenced code blocks: README.md, ARCHITECTURE.md and every
page of the site (docs/), as a reader sees them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
LANGUAGES = ("python", "bash", "text")  # code run by the tests, and output or listings


def pages() -> list[Path]:
    """Every Markdown page a reader gets: the README, the architecture and the site's."""
    return [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted(DOCS.rglob("*.md"))]


class Block(NamedTuple):
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(language: str | None = None) -> list[Block]:
    """Every fenced block of every page (of one ``language``), in page order."""
    found = []
    for page in pages():
        opened, lines = None, page.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            fence = re.match(r"^(\s*)```(\S*)", line)
            if fence and opened is None:
                opened, body = (number, fence.group(2)), []
            elif fence and line.strip() == "```":
                found.append(Block(page, opened[0], opened[1], "\n".join(body) + "\n"))
                opened = None
            elif opened is not None:
                body.append(line)
        assert opened is None, f"{page}:{opened[0]}: a fence is never closed"
    return [b for b in found if language is None or b.language == language]


def run_block(containing: str) -> dict:
    """Execute the one Python block of the pages that contains ``containing`` in a fresh
    namespace (its own imports: nothing else) and return that namespace."""
    (block,) = [b for b in blocks("python") if containing in b.text]
    namespace: dict = {}
    exec(compile(block.text, block.where(), "exec"), namespace)
    return namespace


def commands(block: Block) -> list[str]:
    """A shell block's commands: continuation lines joined, comments and blank lines left
    out (a ``#`` inside quotes is kept)."""
    joined = block.text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#[^\"']*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\s+", " ", line))
    return out
