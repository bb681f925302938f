"""The chart's README lists every value of values.yaml with its default, type and limits: the
table is generated (tools/render_chart_readme.py) and must be current."""

from __future__ import annotations

import re

import yaml

from devtools.docs.chart_values import CHART, PAGE, REGION, comments, leaves, render
from devtools.docs.regions import replace_region


def test_the_readme_is_what_the_generator_writes() -> None:
    current = PAGE.read_text()
    assert replace_region(current, REGION, render()) == current, (
        "the chart README is stale: run .venv/bin/python tools/render_chart_readme.py"
    )


def test_every_value_of_values_yaml_has_a_row() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    listed = set(re.findall(r"^\| `([\w.]+)` \|", PAGE.read_text(), re.MULTILINE))
    assert {dotted for dotted, _, is_leaf in leaves(values) if is_leaf} <= listed


def test_a_row_carries_the_comment_above_its_key_and_the_schemas_limits() -> None:
    text = PAGE.read_text()
    assert "| `refresh.shards` | integer | `3` | completions = parallelism = shards Range 1..100. |" in text
    assert (
        "| `grpc.preStopSleepSeconds` | integer | `5` | Sleep before SIGTERM so endpoints and client DNS drop"
        " the pod while it still serves. Range 0..60. |"
    ) in text


def test_comments_belong_to_the_key_below_them_and_a_blank_line_ends_them() -> None:
    found = comments("# top\na:\n  # inner\n  b: 1\n\n# orphan\n\nc: 2\n")
    assert found == {"a": "top", "a.b": "inner"}
