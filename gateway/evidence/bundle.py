"""Evidence for an incident (7(3)): one quarantined message exported with its record, and the
export checked later.

:func:`export` writes into a new directory:

- ``original.eml``: the original as received, read from the quarantine and checked against the
  SHA-256 recorded when it was kept (the same value as in the receiving audit line);
- ``report.json``: the index entry as recorded (envelope, verdict, reason codes, state, node)
  and the sanitizer's report of each part from the message's ``message`` audit lines;
- ``decisions.json``: every decision of the held-mail workflow on it, from the store;
- ``audit.jsonl``: every audit line naming it, from the live log and its rotated files
  (gzip ones too), oldest first;
- ``manifest.json``: the reference, who exported it when on which node, and the size and
  SHA-256 of every file above;
- ``manifest.seal``: the SHA-256 of ``manifest.json`` and an HMAC-SHA256 of it keyed by this
  installation's secret key (``[console] secret_key_file``, through a key derived for this
  purpose only).

The export writes an audit line (event ``evidence``) with the manifest's SHA-256, so the
installation's own log records what was handed over.

:func:`verify` checks, in order: the seal's SHA-256 against ``manifest.json``; the HMAC with
the installation's key (unless the caller has none: ``--hashes-only``); every listed file's
presence, size and SHA-256; that no other file was added; that ``original.eml`` is the original
the quarantine recorded. The first problem found per file is reported, naming the file and
what changed.

What it proves, and what it does not (threat model: someone who can edit the exported
directory). A changed byte, a removed or added file and an edited manifest are each found.
Someone who also recomputes every SHA-256 and the seal's digest defeats the hashes alone; the
HMAC stops them, because the key never leaves the gateway. So a verification with the key
shows that the export is, byte for byte, what this installation wrote. It does not prove that
to someone without the key (the HMAC is not a public signature: whoever holds the key, that
is root or the service's account on the gateway, can make an export that verifies); for
them, compare the manifest's SHA-256 with the one in the gateway's audit line (kept apart, e.g.
by syslog to a SOC) or written into the incident record when it was exported. It does not
prove what arrived on the wire beyond what the gateway recorded at receipt, and a new secret
key makes older exports verifiable by their hashes only.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from gateway.evidence.audit import format_time
from gateway.evidence.quarantine import Quarantine
from gateway.store.workflow import history

FORMAT: Final = "mukaika-evidence/1"
MANIFEST: Final = "manifest.json"
SEAL: Final = "manifest.seal"
ORIGINAL: Final = "original.eml"
REPORT: Final = "report.json"
DECISIONS: Final = "decisions.json"
AUDIT: Final = "audit.jsonl"
# The HMAC key is derived from the installation's secret key for this purpose only, so an
# evidence seal can never be taken for a session or a link signature, or the other way round.
KEY_PURPOSE: Final = b"mukaika evidence manifest seal v1"
# Audit lines of one message kept at most (a message has a few; the rest are counted).
MAX_AUDIT_LINES: Final = 10000
# A manifest or seal larger than this is not one (a verify reads no more).
MAX_MANIFEST_BYTES: Final = 1024 * 1024


class EvidenceError(Exception):
    """The export cannot be made (the message says why)."""


@dataclass(frozen=True, slots=True)
class Exported:
    directory: Path
    manifest_sha256: str
    files: tuple[str, ...]
    audit_lines: int


def seal_key(secret_key: str) -> bytes:
    """The HMAC key of evidence seals, derived from the installation's secret key."""
    return hmac.new(secret_key.encode("utf-8"), KEY_PURPOSE, hashlib.sha256).digest()


def export(
    quarantine: Quarantine,
    ref: str,
    out: Path,
    *,
    audit_path: Path | None,
    key: bytes,
    actor: str,
    node: str,
) -> Exported:
    """Write the evidence of ``ref`` into the new directory ``out`` (see the module docstring).
    ``out`` must not exist, or be an empty directory."""
    entry = quarantine.get(ref)
    original = quarantine.read_original(ref)  # checked against the recorded SHA-256
    decisions = [
        {k: format_time(v) if isinstance(v, datetime) else v for k, v in d.to_dict().items()}
        for d in history(quarantine.index.store, ref)
    ]
    lines, omitted = _audit_lines(audit_path, ref)
    report = {
        "entry": entry.to_dict(),
        "parts": [
            line["parts"] for line in lines if line.get("event") == "message" and "parts" in line
        ],
    }
    contents = {
        ORIGINAL: original,
        REPORT: _json(report),
        DECISIONS: _json(decisions),
        AUDIT: b"".join(
            json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            for line in lines
        ),
    }
    _make_directory(out)
    for name, data in contents.items():
        _write(out / name, data)
    manifest = _json(
        {
            "format": FORMAT,
            "reference": ref,
            "original_sha256": entry.sha256,
            "exported_at": format_time(datetime.now(UTC)),
            "exported_by": actor,
            "node": node,
            "audit_log": str(audit_path) if audit_path is not None else None,
            "audit_lines_omitted": omitted,
            "files": [
                {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in contents.items()
            ],
        }
    )
    digest = hashlib.sha256(manifest).hexdigest()
    mac = hmac.new(key, manifest, hashlib.sha256).hexdigest()
    _write(out / MANIFEST, manifest)
    _write(out / SEAL, f"sha256 {digest}\nhmac-sha256 {mac}\n".encode())
    _fsync_directory(out)
    return Exported(out, digest, (*contents, MANIFEST, SEAL), len(lines))


def verify(directory: Path, key: bytes | None) -> list[str]:
    """Every problem found in the export at ``directory`` (empty when intact); ``key`` None
    skips the HMAC (see the module docstring for what that leaves)."""
    if not directory.is_dir():
        return [f"{directory}: not a directory"]
    try:
        manifest = _read_small(directory / MANIFEST)
    except FileNotFoundError:
        return [f"{MANIFEST} is missing"]
    except (OSError, ValueError) as exc:
        return [f"{MANIFEST}: {exc}"]
    try:
        seal = _read_small(directory / SEAL).decode("ascii").split()
    except FileNotFoundError:
        return [f"{SEAL} is missing"]
    except UnicodeDecodeError:
        return [f"{SEAL} is not a seal"]
    except (OSError, ValueError) as exc:
        return [f"{SEAL}: {exc}"]
    fields = dict(zip(seal[0::2], seal[1::2], strict=False))
    if set(fields) != {"sha256", "hmac-sha256"}:
        return [f"{SEAL} is not a seal (expected its sha256 and hmac-sha256 lines)"]
    digest = hashlib.sha256(manifest).hexdigest()
    if not hmac.compare_digest(digest, fields["sha256"]):
        return [f"{MANIFEST} changed: its SHA-256 is {digest}, the seal says {fields['sha256']}"]
    if key is not None and not hmac.compare_digest(
        hmac.new(key, manifest, hashlib.sha256).hexdigest(), fields["hmac-sha256"]
    ):
        return [
            f"{SEAL}: the HMAC does not match this installation's key: the manifest and seal were "
            "rewritten (or the export comes from another installation or an older key)"
        ]
    try:
        listed = json.loads(manifest)
        files = {item["name"]: item for item in listed["files"]}
        if listed.get("format") != FORMAT:
            return [f"{MANIFEST}: unknown format {listed.get('format')!r}"]
    except (ValueError, KeyError, TypeError):
        return [f"{MANIFEST} is not a manifest of this format"]
    problems = [_file_problem(directory, name, item) for name, item in sorted(files.items())]
    found = [p for p in problems if p is not None]
    for extra in sorted(_present(directory) - set(files) - {MANIFEST, SEAL}):
        found.append(f"{extra}: not in the manifest (a file was added)")
    original = files.get(ORIGINAL)
    if original is None or original.get("sha256") != listed.get("original_sha256"):
        found.append(f"{ORIGINAL}: not the original the quarantine recorded")
    return found


def _file_problem(directory: Path, name: str, item: Mapping[str, Any]) -> str | None:
    path = directory / name
    if "/" in name or name in ("", ".", ".."):
        return f"{MANIFEST}: {name!r} is not a file name of an export"
    try:
        size = path.stat().st_size
        sha = _sha256_file(path)
    except FileNotFoundError:
        return f"{name}: missing (the manifest lists it)"
    except OSError as exc:
        return f"{name}: cannot be read ({exc.strerror})"
    if size != item.get("bytes"):
        return f"{name}: changed: {size} bytes, the manifest says {item.get('bytes')}"
    if sha != item.get("sha256"):
        return f"{name}: changed: SHA-256 {sha}, the manifest says {item.get('sha256')}"
    return None


def _present(directory: Path) -> set[str]:
    """Every entry below ``directory`` (relative names; subdirectories count as added)."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def _audit_lines(path: Path | None, ref: str) -> tuple[list[dict[str, Any]], int]:
    """The audit lines naming ``ref``, oldest first, at most MAX_AUDIT_LINES; and how many
    more there were."""
    found: list[dict[str, Any]] = []
    omitted = 0
    needle = json.dumps(ref).encode()
    for raw in _log_lines(path):
        if needle not in raw:
            continue  # cheap: most lines are of other messages
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("quarantine_id") == ref:
            if len(found) < MAX_AUDIT_LINES:
                found.append(line)
            else:
                omitted += 1
    return found, omitted


def _log_lines(path: Path | None) -> Iterator[bytes]:
    """The lines of the rotated files (oldest first) and then of the live file."""
    if path is None:
        return
    rotated = [p for p in path.parent.glob(f"{path.name}[.-]*") if p.is_file()]
    for candidate in [*sorted(rotated, key=lambda p: p.stat().st_mtime), path]:
        opener = gzip.open if candidate.suffix == ".gz" else open
        try:
            with opener(candidate, "rb") as handle:
                yield from handle
        except FileNotFoundError:
            continue


def _is_report(line: Mapping[str, Any]) -> bool:
    """Whether an audit line carries the sanitizer's report of the message's parts."""
    return line.get("event", "message") == "message" and "parts" in line


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def _make_directory(out: Path) -> None:
    try:
        out.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not out.is_dir() or any(out.iterdir()):
            raise EvidenceError(f"{out} exists and is not an empty directory") from None


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_small(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_MANIFEST_BYTES} bytes")
    return data


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
