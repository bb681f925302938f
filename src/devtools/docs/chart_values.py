"""The chart README's values table, from values.yaml (defaults, and the comment above each key)
and values.schema.json (types and limits): one row per value, so a value added to the chart
appears in its README without anyone writing it twice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[3] / "deploy" / "helm" / "bytemark-ticket-cache"
PAGE = CHART / "README.md"
REGION = "values"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):")
_COMMENT = re.compile(r"^ *# ?(?P<text>.*)$")


def comments(values_yaml: str) -> dict[str, str]:
    """Dotted key -> the comment lines right above it (a blank line ends a comment)."""
    found: dict[str, str] = {}
    pending: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    for line in values_yaml.splitlines():
        comment, key = _COMMENT.match(line), _KEY.match(line)
        if comment:
            pending.append(comment.group("text"))
            continue
        if key:
            indent = len(key.group("indent"))
            parents = [(i, k) for i, k in parents if i < indent]
            dotted = ".".join([k for _, k in parents] + [key.group("key")])
            if pending:
                found[dotted] = " ".join(pending)
            parents.append((indent, key.group("key")))
        pending = []
    return found


def schema_at(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = schema
    for part in dotted.split("."):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        node = properties.get(part) or (extra if isinstance(extra, dict) else {})
    return node


def type_of(node: dict[str, Any], default: Any) -> str:
    if "enum" in node:
        return "one of " + ", ".join(f"`{choice}`" for choice in node["enum"])
    declared = node.get("type")
    if isinstance(declared, list):
        return " or ".join(declared)
    if declared:
        return str(declared)
    return {bool: "boolean", int: "integer", str: "string", list: "array", dict: "object"}.get(
        type(default), "any"
    )


def limits(node: dict[str, Any]) -> str:
    low, high = node.get("minimum"), node.get("maximum")
    parts = []
    if low is not None or high is not None:
        parts.append(f"Range {'' if low is None else low}..{'' if high is None else high}.")
    if "pattern" in node:
        parts.append(f"Matches `{node['pattern']}`.")
    return " ".join(parts)


def leaves(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any, bool]]:
    """(dotted key, default, is_leaf) depth first, in the file's order; an empty map is a leaf."""
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield dotted, value, False
            yield from leaves(value, dotted + ".")
        else:
            yield dotted, value, True


def cell(text: str) -> str:
    """Markdown-safe: a pipe would end the cell, and `<release>` would be read as an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;") or "—"


def render() -> str:
    values_text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(values_text)
    schema = json.loads((CHART / "values.schema.json").read_text())
    notes = comments(values_text)
    lines = ["| Value | Type | Default | Description |", "|---|---|---|---|"]
    for dotted, default, is_leaf in leaves(values):
        node = schema_at(schema, dotted)
        description = notes.get(dotted) or node.get("description", "")
        if not is_leaf and not description:
            continue  # a map is shown by its values, unless it has something to say itself
        described = " ".join(part for part in (description, limits(node)) if part)
        shown = f"`{json.dumps(default)}`" if is_leaf else "(its values below)"
        lines.append(f"| `{dotted}` | {type_of(node, default)} | {cell(shown)} | {cell(described)} |")
    return "\n".join(lines) + "\n"
