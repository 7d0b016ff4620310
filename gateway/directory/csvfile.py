"""``mukaika user import --csv FILE``: the staff from a CSV file.

The file: UTF-8, with or without a byte order mark (Excel's "CSV UTF-8" writes one), commas
between columns, double quotes around a value that holds a comma; its first row is the header
``name,role,addresses,group`` and every other row one user:

- ``name``: the login name (letters, digits and . _ @ -);
- ``role``: recipient, operator, approver, auditor or admin;
- ``addresses``: the user's mail addresses separated by spaces (may be empty);
- ``group``: the user's groups (課) separated by spaces (may be empty); an approver approves the
  held outbound mail of their groups' members.

Blank rows are skipped. Every row is checked before anything is written, and a file with any
bad row is refused whole, with each problem as ``line N: reason`` (N the line in the file,
counting the header as line 1).

Threat model: the file is an administrator's, but it may be a wrong file or damaged; it is read
bounded (``directory.max_users`` rows of at most :data:`MAX_ROW_BYTES` each), decoded strictly
(a byte that is not UTF-8 is reported by its line), and each value checked by :mod:`.records`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Final

from gateway.directory.records import ImportRefused, checked_people, person
from gateway.store.directory import Person

HEADER: Final = ("name", "role", "addresses", "group")
# One row: a name, a role, 100 addresses of up to 320 characters, the groups.
MAX_ROW_BYTES: Final = 40 * 1024
# Problems reported at most (the rest are counted).
MAX_PROBLEMS: Final = 50
# Excel's byte order mark.
BOM: Final = b"\xef\xbb\xbf"


def read_csv(path: Path, max_users: int) -> list[Person]:
    """The people of the CSV file at ``path``; :class:`ImportRefused` listing every problem
    (OSError when the file cannot be read)."""
    limit = (max_users + 1) * MAX_ROW_BYTES
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ImportRefused(
            [f"{path}: larger than {limit} bytes (directory.max_users rows); nothing imported"]
        )
    text = _decoded(data.removeprefix(BOM))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    found: list[tuple[str, Person]] = []
    header_seen = False
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"line {reader.line_num}: not CSV ({exc})")
            break
        line = f"line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if not header_seen:
            header_seen = True
            if tuple(cell.strip().lower() for cell in row) != HEADER:
                raise ImportRefused(
                    [f"{line}: the header must be {','.join(HEADER)} (found {','.join(row)!r})"]
                )
            continue
        if len(row) != len(HEADER):
            problems.append(
                f"{line}: {len(row)} columns, expected {len(HEADER)} ({','.join(HEADER)})"
            )
            continue
        name, role, addresses, groups = (cell.strip() for cell in row)
        try:
            groups_listed = [group for group in groups.split(" ") if group]
            found.append((line, person(name, role, addresses.split(), groups_listed)))
        except ValueError as exc:
            problems.append(f"{line}: {exc}")
    if not header_seen:
        raise ImportRefused([f"{path}: empty (the header {','.join(HEADER)} is missing)"])
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS} more problems")
        raise ImportRefused([*shown, "nothing imported"])
    return checked_people(found, max_users)


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRefused(
            [f"line {line}: not UTF-8 (byte {exc.start}; save the file as CSV UTF-8)"]
        ) from None
