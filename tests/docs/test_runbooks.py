"""Every alert of the chart's rules file has its runbook section in docs/runbooks.md, and its
runbook_url annotation points at that section."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.docs.markdown import ROOT

RULES = ROOT / "deploy/helm/bytemark-ticket-cache/files/ticket-cache-rules.yml"
RUNBOOKS = ROOT / "docs/runbooks.md"


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def anchors(page_text: str) -> set[str]:
    """The ids mkdocs gives the page's headings (lower case; spaces to dashes; other signs dropped)."""
    headings = re.findall(r"^#+ (.+)$", page_text, re.MULTILINE)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower()) for heading in headings}


ALERTS = alerts()


def test_there_are_alerts_to_document() -> None:
    assert len(ALERTS) >= 5


@pytest.mark.parametrize("alert", ALERTS, ids=[alert["alert"] for alert in ALERTS])
def test_each_alert_links_its_own_runbook_section(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    url = alert["annotations"].get("runbook_url")
    assert url == f"docs/runbooks.md#{name.lower()}", f"{name}: runbook_url is {url!r}"
    page, anchor = url.split("#")
    assert (ROOT / page).exists()
    assert anchor in anchors(RUNBOOKS.read_text()), f"docs/runbooks.md has no '## {name}' section"


def test_the_runbooks_document_no_alert_that_does_not_exist() -> None:
    sections = set(re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), re.MULTILINE))
    assert sections == {alert["alert"] for alert in ALERTS}
