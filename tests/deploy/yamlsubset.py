"""A strict reader for the block-style YAML subset used by deploy/prometheus/alerts.yml.

PyYAML is not a dependency of the project, and the rules file must still be checked in CI.
This reader accepts only what that file uses: mappings and lists in block style (two-space
steps), plain scalars, double-quoted strings (JSON escapes) and full-line comments. Anything
else (flow collections, anchors, tags, block scalars, tabs, a plain scalar that YAML could
read differently such as ``a: b`` or ``x #y``) is an error, so a file this reader accepts
means the same to any YAML parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

_INDICATORS = tuple("[]{}&*!|>'%@`,?")


class YamlSubsetError(ValueError):
    pass


def _scalar(text: str, lineno: int) -> Any:
    if text.startswith('"'):
        try:
            value, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as exc:
            raise YamlSubsetError(f"line {lineno}: bad double-quoted string: {exc}") from exc
        if text[end:].strip():
            raise YamlSubsetError(f"line {lineno}: text after a quoted string")
        if not isinstance(value, str):
            raise YamlSubsetError(f"line {lineno}: not a string")
        return value
    if text.startswith(_INDICATORS) or ": " in text or " #" in text or text.endswith(":"):
        raise YamlSubsetError(f"line {lineno}: ambiguous plain scalar {text!r}: quote it")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("null", "~", "yes", "no", "on", "off") or re.fullmatch(r"-?\d+\.\d*", text):
        raise YamlSubsetError(f"line {lineno}: {text!r} means different things to YAML versions")
    return text


def _lines(text: str) -> list[tuple[int, str, int]]:
    out: list[tuple[int, str, int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw:
            raise YamlSubsetError(f"line {lineno}: tab")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if indent % 2:
            raise YamlSubsetError(f"line {lineno}: indentation is not a multiple of two")
        out.append((indent, stripped, lineno))
    return out


def _block(lines: list[tuple[int, str, int]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        return _list(lines, i, indent)
    return _mapping(lines, i, indent)


def _list(lines: list[tuple[int, str, int]], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines) and lines[i][0] == indent:
        _, text, lineno = lines[i]
        if not text.startswith("- "):
            raise YamlSubsetError(f"line {lineno}: expected a list item")
        rest = text[2:].strip()
        if re.match(r"[A-Za-z_][\w.-]*:( |$)", rest):
            # "- key: value" opens a mapping whose further keys are two columns deeper.
            lines[i] = (indent + 2, rest, lineno)
            value, i = _mapping(lines, i, indent + 2)
        else:
            value, i = _scalar(rest, lineno), i + 1
        items.append(value)
    return items, i


def _mapping(lines: list[tuple[int, str, int]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        _, text, lineno = lines[i]
        match = re.fullmatch(r"([A-Za-z_][\w.-]*):(?: (.*))?", text)
        if match is None:
            raise YamlSubsetError(f"line {lineno}: expected 'key: value'")
        key, rest = match[1], (match[2] or "").strip()
        if key in mapping:
            raise YamlSubsetError(f"line {lineno}: duplicate key {key!r}")
        if rest:
            mapping[key], i = _scalar(rest, lineno), i + 1
            continue
        i += 1
        if i >= len(lines) or lines[i][0] <= indent:
            raise YamlSubsetError(f"line {lineno}: {key!r} has no value")
        mapping[key], i = _block(lines, i, lines[i][0])
    if i < len(lines) and lines[i][0] > indent:
        raise YamlSubsetError(f"line {lines[i][2]}: unexpected indentation")
    return mapping, i


def load(text: str) -> Any:
    """The document in ``text`` (a mapping or a list at the top level)."""
    lines = _lines(text)
    if not lines:
        raise YamlSubsetError("empty document")
    value, i = _block(lines, 0, lines[0][0])
    if i != len(lines):
        raise YamlSubsetError(f"line {lines[i][2]}: unexpected indentation")
    return value
