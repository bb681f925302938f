"""The Mermaid pictures of the architecture stay true to the packages on disk: every package of
src/domain, src/application and src/adapters/{driving,driven,composition,common}/* has a box, and
every box names a package or module that exists. A box is a node whose label starts with a dotted
package path (`adapters.driven.storage`, `domain`)."""

from __future__ import annotations

import re

import pytest

from tests.docs.markdown import DOCS, ROOT, blocks

SRC = ROOT / "src"
ADAPTER_LAYERS = ("driving", "driven", "composition", "common")
#: Pages whose Mermaid blocks draw the architecture (docs/architecture.md once it lands).
PICTURES = [ROOT / "README.md", DOCS / "index.md", DOCS / "architecture.md"]
# id["label"], id("label"), id(["label"]), id[["label"]], id{"label"}...: the label's first word
_NODE = re.compile(r"\b[\w-]+\s*[\[({]+\"?\s*((?:domain|application|adapters)(?:\.\w+)*)\b")


def packages_on_disk() -> set[str]:
    found = {"domain", "application"}
    for layer in ADAPTER_LAYERS:
        for child in (SRC / "adapters" / layer).iterdir():
            if child.name.startswith("__"):
                continue
            if child.is_dir() and (child / "__init__.py").exists() or child.suffix == ".py":
                found.add(f"adapters.{layer}.{child.stem}")
    return found


def exists(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return (path / "__init__.py").exists() or path.with_suffix(".py").exists()


def boxes(mermaid: str) -> set[str]:
    return {
        found.group(1)
        for line in mermaid.splitlines()
        if not line.strip().startswith("subgraph")
        for found in _NODE.finditer(line)
    }


def architecture_blocks() -> list[tuple[str, str]]:
    """The Mermaid blocks of PICTURES that draw packages (a sequence diagram of calls draws none)."""
    return [
        (f"{page.relative_to(ROOT)}:{block.line}", block.body)
        for page in PICTURES
        if page.exists()
        for block in blocks(page)
        if block.language == "mermaid" and boxes(block.body)
    ]


BLOCKS = architecture_blocks()


def test_the_readme_and_the_overview_draw_the_architecture() -> None:
    drawn = {where.split(":")[0] for where, _ in BLOCKS}
    assert {"README.md", "docs/index.md"} <= drawn


@pytest.mark.parametrize(("where", "mermaid"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_every_package_has_a_box_and_every_box_a_package(where: str, mermaid: str) -> None:
    drawn = boxes(mermaid)
    missing = sorted(packages_on_disk() - drawn)
    invented = sorted(box for box in drawn if not exists(box))
    assert not missing, f"{where}: no box for {missing}"
    assert not invented, f"{where}: boxes for packages that do not exist: {invented}"


def test_a_box_is_read_from_its_label() -> None:
    drawn = boxes(
        '  a["adapters.driven.storage<br>sqlite"]\n  subgraph s["adapters.driving: x"]\n  b(["domain"])'
    )
    assert drawn == {"adapters.driven.storage", "domain"}
