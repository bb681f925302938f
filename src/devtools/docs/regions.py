"""A generated region of a Markdown file: the text between `<!-- BEGIN name ... -->` and
`<!-- END name -->`, rewritten by a generator while the hand-written rest stays as it is."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path


class RegionMissing(ValueError):
    pass


def replace_region(text: str, name: str, body: str) -> str:
    """`text` with the region `name` holding `body` (the markers stay as they are)."""
    pattern = re.compile(
        rf"(<!-- BEGIN {re.escape(name)}\b[^\n]*-->\n)(.*?)(<!-- END {re.escape(name)} -->)", re.DOTALL
    )
    if not pattern.search(text):
        raise RegionMissing(f"no '<!-- BEGIN {name} ... -->' ... '<!-- END {name} -->' region")
    return pattern.sub(lambda found: found.group(1) + body + found.group(3), text, count=1)


def main(page: Path, name: str, render: Callable[[], str], argv: list[str] | None = None) -> int:
    """The generators' command line: rewrite the region, or with --check say whether it is current."""
    parser = argparse.ArgumentParser(description=f"Regenerate the '{name}' region of {page.name}.")
    parser.add_argument("--check", action="store_true", help="exit 1 (with a diff) when the page is stale")
    args = parser.parse_args(argv)
    current = page.read_text()
    wanted = replace_region(current, name, render())
    if not args.check:
        page.write_text(wanted)
        return 0
    if wanted == current:
        return 0
    diff = difflib.unified_diff(current.splitlines(True), wanted.splitlines(True), str(page), "generated")
    sys.stdout.writelines(diff)
    return 1
