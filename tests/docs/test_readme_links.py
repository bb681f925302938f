"""The READMEs' links lead somewhere: mkdocs checks the links of the docs site, not those of
README.md or the chart's README, which GitHub shows as the project's front pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.markdown import ROOT

READMES = [ROOT / "README.md", ROOT / "deploy/helm/bytemark-ticket-cache/README.md"]
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def relative_links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(page.read_text()) if "://" not in target]


LINKS = [(page, target) for page in READMES for target in relative_links(page)]


def test_the_readme_links_into_the_docs() -> None:
    assert sum(1 for page, target in LINKS if page.name == "README.md" and target.startswith("docs/")) >= 10


@pytest.mark.parametrize(
    ("page", "target"), LINKS, ids=[f"{p.parent.name}/{p.name} -> {t}" for p, t in LINKS]
)
def test_each_link_names_a_file_of_the_repository(page: Path, target: str) -> None:
    assert (page.parent / target).exists(), (
        f"{page.relative_to(ROOT)} links to {target}, which does not exist"
    )
