"""The fenced code blocks of the project's Markdown pages, as the docs tests read them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    language: str
    body: str
    line: int
    heading: str  # the nearest heading above the block, without its #s
    mark: str  # the HTML comment on the line just above the block, if any

    def where(self) -> str:
        return f"{self.page}:{self.line} (```{self.language}, under '{self.heading}')"


def pages() -> list[Path]:
    """README.md, the chart's README and every page of the docs site."""
    return [
        ROOT / "README.md",
        ROOT / "deploy/helm/bytemark-ticket-cache/README.md",
        *sorted(DOCS.rglob("*.md")),
    ]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for fence in _FENCE.finditer(text):
        before = text[: fence.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.MULTILINE)
        above = before.rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append(
            Block(
                page=str(page.relative_to(ROOT)),
                language=fence.group(1),
                body=fence.group(2),
                line=before.count("\n") + 1,
                heading=headings[-1] if headings else "",
                mark=above if above.startswith("<!--") else "",
            )
        )
    return found
