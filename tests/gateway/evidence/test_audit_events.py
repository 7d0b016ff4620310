"""Audit lines of every kind carry an event from one vocabulary; rotated files past
``audit.retention_days`` go; every line can be copied to syslog."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from gateway.configuration.settings import AuditSettings
from gateway.evidence.audit import AuditLog, audit_record, clean_record
from gateway.evidence.message_record import message_record
from gateway.queue.spool import Envelope
from sanitizers.vocabulary import AuditEvent


def test_every_record_builder_names_its_event() -> None:
    envelope = Envelope(queue_id="20261122020021-fa0891d042", mail_from="a@x.jp", rcpt_tos=())
    assert message_record(envelope, "delivered", "none")["event"] == AuditEvent.MESSAGE
    built = audit_record(
        queue_id="q", client="c", helo="h", mail_from="m", rcpt_to=[], state="held"
    )
    assert built["event"] == AuditEvent.MESSAGE
    released = message_record(envelope.with_(release=7), "delivered", "none")
    assert released["request"] == 7


def test_workflow_fields_are_kept_and_cleaned() -> None:
    line = clean_record(
        {
            "event": AuditEvent.APPROVAL,
            "actor": "bob",
            "request": 3,
            "reason": "ok\x1b[31m\nforged",
            "raised_limits": {"max_parts": 10},
        }
    )
    assert line["actor"] == "bob"
    assert "\x1b" not in line["reason"]
    assert "\n" not in line["reason"]
    assert "dropped_keys" not in line


def test_rotated_files_past_retention_are_removed_never_the_live_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    old, recent = time.time() - 40 * 86400, time.time() - 5 * 86400
    with AuditLog(path) as audit:
        audit.write({"event": AuditEvent.MESSAGE})
        rotated = {
            "audit.jsonl-20261001.gz": old,
            "audit.jsonl.3": old,
            "audit.jsonl-20261125": recent,
            "other.log": old,
        }
        for name, mtime in rotated.items():
            (tmp_path / name).write_text("x")
            os.utime(tmp_path / name, (mtime, mtime))
        os.utime(path, (old, old))
        assert audit.purge_rotated(0) == 0
        assert audit.purge_rotated(30) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.jsonl",
        "audit.jsonl-20261125",
        "other.log",
    ]


def test_lines_are_copied_to_syslog(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(10)
        port = server.getsockname()[1]
        settings = AuditSettings(
            syslog=True, syslog_address=f"127.0.0.1:{port}", syslog_facility="local3"
        )
        with AuditLog.from_settings(settings, tmp_path) as audit:
            audit.write({"event": AuditEvent.RELEASE, "actor": "alice", "quarantine_id": "x"})
        datagram = server.recv(65536).decode()
    assert datagram.startswith(f"<{19 * 8 + 6}>mukaika-audit: ")  # local3.info
    line = json.loads(datagram.partition("mukaika-audit: ")[2].rstrip("\x00"))
    assert (line["event"], line["actor"]) == ("release", "alice")
    written = (tmp_path / "audit" / "audit.jsonl").read_text("utf-8")
    assert json.loads(written)["event"] == "release"  # the file stays the record


def test_an_unreachable_syslog_leaves_the_file_working(tmp_path: Path) -> None:
    settings = AuditSettings(syslog=True, syslog_address=str(tmp_path / "no-such-socket"))
    with AuditLog.from_settings(settings, tmp_path) as audit:
        audit.write({"event": AuditEvent.MESSAGE})
    assert (tmp_path / "audit" / "audit.jsonl").read_text("utf-8").count("\n") == 1
