"""The configuration page's table, one row per `Settings` field, from the field's description:
the settings module stays the one place a variable is added and explained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from adapters.composition.settings import SERVE_REQUIRED, UNECHOED_VARIABLES, Settings

PAGE = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
REGION = "settings"
MIB = 1024 * 1024


class UndescribedSetting(ValueError):
    pass


def render_default(variable: str, default: Any) -> str:
    if default is None:
        return "required for `serve`" if variable in SERVE_REQUIRED else "unset"
    if isinstance(default, SecretStr):
        return "(secret)"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float):
        return f"`{default:g}`"
    if isinstance(default, int) and default >= MIB and default % MIB == 0:
        return f"`{default}` ({default // MIB} MiB)"
    if isinstance(default, tuple | list | frozenset):
        return ", ".join(f"`{item}`" for item in default)
    return f"`{default}`"


def rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) in the order the fields are declared."""
    found = []
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        if not field.description:
            raise UndescribedSetting(f"{variable}: give its Field a description (it is its documentation)")
        meaning = field.description
        if variable in UNECHOED_VARIABLES:
            meaning += " Its value is never shown in an error or a log."
        found.append((variable, render_default(variable, field.default), meaning))
    return found


def render() -> str:
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for variable, default, meaning in rows():
        cell = meaning.replace("|", "\\|")  # a pipe would end the Markdown cell
        lines.append(f"| `{variable}` | {default} | {cell} |")
    return "\n".join(lines) + "\n"
