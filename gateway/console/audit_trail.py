"""The audit trail as the auditor's page reads it: the newest lines of the live audit log,
filtered, newest first.

Bounded: only the last :data:`MAX_TAIL_BYTES` of the file are read, and at most
:data:`MAX_LINES` lines are shown; older lines are in the rotated files, which the page does
not read (``zcat`` and ``jq`` do). Threat model: the lines were cleaned when they were written
(:mod:`gateway.evidence.audit`); they are still shown only through the templates' escaping,
and a line that is not a JSON object is skipped. A tenant's user reads only the lines that
name that tenant (the cluster's own lines, without a tenant, are not theirs).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

MAX_TAIL_BYTES: Final = 4 * 1024 * 1024
MAX_LINES: Final = 500


@dataclass(frozen=True)
class TrailFilter:
    event: str = ""
    actor: str = ""
    reference: str = ""
    tenant: str | None = None  # a tenant's user: that tenant's lines only


def _matches(line: dict[str, Any], wanted: TrailFilter) -> bool:
    if wanted.tenant is not None and line.get("tenant", "") != wanted.tenant:
        return False
    if wanted.event and line.get("event", "message") != wanted.event:
        return False
    if wanted.actor and wanted.actor not in (str(line.get("actor", "")), str(line.get("user", ""))):
        return False
    return not wanted.reference or wanted.reference == line.get("quarantine_id")


def recent_lines(path: Path, wanted: TrailFilter) -> list[dict[str, Any]]:
    """The newest matching lines of ``path`` (see the module docstring)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = max(0, size - MAX_TAIL_BYTES)
            handle.seek(start)
            data = handle.read(MAX_TAIL_BYTES)
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line was cut
    found: list[dict[str, Any]] = []
    for raw in reversed(lines):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and _matches(line, wanted):
            found.append(line)
            if len(found) >= MAX_LINES:
                break
    return found
