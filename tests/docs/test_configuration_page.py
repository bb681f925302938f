"""docs/configuration.md lists exactly the variables `Settings` reads, each with its description:
the table is generated from the fields (tools/render_settings_docs.py) and must be current."""

from __future__ import annotations

import re

from adapters.composition.settings import Settings
from devtools.docs.regions import replace_region
from devtools.docs.settings_table import PAGE, REGION, render, rows


def test_every_setting_has_a_description() -> None:
    undescribed = [name.upper() for name, field in Settings.model_fields.items() if not field.description]
    assert not undescribed, f"give these a Field(description=...): {undescribed}"


def test_the_page_lists_the_same_variables_as_settings() -> None:
    listed = re.findall(r"^\| `([A-Z0-9_]+)` \|", PAGE.read_text(), re.MULTILINE)
    assert sorted(listed) == sorted(name.upper() for name in Settings.model_fields)


def test_the_page_is_what_the_generator_writes() -> None:
    current = PAGE.read_text()
    assert replace_region(current, REGION, render()) == current, (
        "docs/configuration.md is stale: run .venv/bin/python tools/render_settings_docs.py"
    )


def test_a_default_and_a_secret_are_shown_as_an_operator_needs_them() -> None:
    table = {variable: (default, meaning) for variable, default, meaning in rows()}
    assert table["GRPC_MAX_MESSAGE_BYTES"][0] == "`67108864` (64 MiB)"
    assert table["BYTEMARK_CLIENT_ID"][0] == "required for `serve`"
    assert table["MYSQL_URL"][1].endswith("Its value is never shown in an error or a log.")
