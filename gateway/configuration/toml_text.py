"""Configuration written as TOML text: the effective configuration (``check-config``) and the
shipped defaults with each setting's description (``check-config --defaults``, which is what
``config/defaults.toml`` holds; a test keeps the committed file equal to it).

Only what the configuration holds is written: tables, arrays, strings, numbers, booleans and
dates. The standard library reads TOML but does not write it, and these few rules are all
the model needs.
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import date
from typing import Any

from pydantic import BaseModel

from gateway.configuration.config import Config

WIDTH = 95

HEADER = """\
# mukaika shipped defaults: every setting, its default value and what it means.
# Generated from the configuration model (sanitizers/policy.py, sanitizers/cdr/settings.py,
# gateway/configuration/settings.py) by `mukaika check-config --defaults`: edit the model,
# not this file. Copy the keys you change into your own file (mukaika serve --config FILE);
# it is merged over these, and files in local.d/ beside it over that.
"""


def scalar(value: Any) -> str:
    """One TOML value (inline tables and arrays included)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key(k)} = {scalar(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)


def key(name: str) -> str:
    """A bare key when TOML allows one, else a quoted key."""
    if name and name.isascii() and all(c.isalnum() or c in "-_" for c in name):
        return name
    return json.dumps(name, ensure_ascii=False)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(data: dict[str, Any], name: str, lines: list[str], array: bool = False) -> None:
    plain = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_array(v)}
    if name and (plain or array or not data):
        lines.append(f"\n[[{name}]]" if array else f"\n[{name}]")
    for k, value in plain.items():
        lines.append(f"{key(k)} = {scalar(value)}")
    for k, value in data.items():
        full = f"{name}.{key(k)}" if name else key(k)
        if isinstance(value, dict):
            _table(value, full, lines)
        elif _is_table_array(value):
            for item in value:
                _table(item, full, lines, array=True)


def to_toml(data: dict[str, Any]) -> str:
    """``data`` (JSON-like: tables, arrays, strings, numbers, booleans, dates) as TOML text."""
    lines: list[str] = []
    _table(data, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"


# --- the shipped defaults, described ---------------------------------------------------------


def _comment(text: str) -> list[str]:
    plain = re.sub(r"(:[a-z]+:)?`+([^`]*)`+", r"\2", " ".join(text.split()))
    return [f"# {line}" for line in textwrap.wrap(plain, WIDTH - 2, break_on_hyphens=False)]


def _section_doc(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip().split("\n\n")[0]


def _default_value(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(str(item) for item in value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [str(v) if not isinstance(v, bool | int | float) else v for v in value]
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, bool | int | float):
        return value
    return str(value)


def _describe(model: BaseModel, name: str, lines: list[str]) -> None:
    """One table: its scalar settings, then its nested tables (sections and mappings)."""
    fields = type(model).model_fields
    nested = [f for f, info in fields.items() if isinstance(getattr(model, f), BaseModel)]
    mappings = [f for f in fields if isinstance(getattr(model, f), dict)]
    lines.append("")
    lines.extend(_comment(_section_doc(type(model))))
    lines.append(f"[{name}]")
    for field, info in fields.items():
        if field in nested or field in mappings:
            continue
        lines.extend(_comment(info.description or ""))
        lines.append(f"{key(field)} = {scalar(_default_value(getattr(model, field)))}")
    for field in mappings:
        lines.append("")
        lines.extend(_comment(fields[field].description or ""))
        lines.append(f"[{name}.{key(field)}]")
        for item, value in _default_value(getattr(model, field)).items():
            lines.append(f"{key(item)} = {scalar(value)}")
    for field in nested:
        _describe(getattr(model, field), f"{name}.{key(field)}", lines)


def defaults_toml() -> str:
    """Every setting of the model with its default, each preceded by its description."""
    config = Config()
    lines = [HEADER.rstrip("\n")]
    for listed in ("rules", "tenants"):
        lines.append("")
        lines.extend(_comment(Config.model_fields[listed].description or ""))
        lines.append(f"# ({listed} is a list of [[{listed}]] tables and has no default entries.)")
    for field in Config.model_fields:
        value = getattr(config, field)
        if isinstance(value, BaseModel):
            _describe(value, key(field), lines)
    return "\n".join(lines) + "\n"
