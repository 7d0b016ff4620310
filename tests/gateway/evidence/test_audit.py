"""The audit log: one bounded JSON line per message, RFC 3339 UTC times, never a body."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gateway.configuration.settings import AuditSettings
from gateway.evidence.audit import (
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    AuditLog,
    DeliveryAttempt,
    audit_record,
    clean_record,
    format_time,
)
from sanitizers.report import PartReport, Report
from sanitizers.vocabulary import Action, Reason, Verdict

SECRET = "SECRET-BODY-MARKER-機密本文"
RFC3339_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
T0 = datetime(2026, 11, 22, 1, 8, 34, 123456, tzinfo=UTC)


def _report() -> Report:
    return Report(
        verdict=Verdict.DELIVER,
        reasons=[Reason.HTML_BODY],
        parts=[
            PartReport(
                path="1.1",
                declared_type="text/html",
                action=Action.CONVERTED,
                reason=Reason.HTML_BODY,
                size=2048,
                sha256="ab" * 32,
                charset="iso-2022-jp",
                detail=f"first words: {SECRET}",
            ),
            PartReport(
                path="2",
                declared_type="application/vnd.ms-excel",
                action=Action.SANITIZED,
                reason=Reason.MACRO,
                sha256="cd" * 32,
                filename="請求書①.xls",
                kind="office",
                detected_type="application/vnd.ms-excel",
                findings=[Reason.MACRO, Reason.METADATA],
                removed=["VBA project"],
            ),
        ],
        size=31_000,
        sha256="ef" * 32,
        message_id="<20261122.abc@example.jp>",
        from_="山田 <taro@example.jp>",
        subject=f"件名 {SECRET}",
        timings_ms={"parse": 0.41, "html": 0.38},
        defects=["missing boundary end"],
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_record_from_report_is_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    record = audit_record(
        queue_id="Q1",
        client="192.0.2.1",
        helo="mx.example.net",
        mail_from="taro@example.jp",
        rcpt_to=["hanako@city.example.lg.jp"],
        report=_report(),
        state="delivered",
        quarantine_id="20261122T010834Z-0123456789ab",
        timings={"deliver": 12.3456},
        deliveries=[
            DeliveryAttempt(T0, "lgwan-mta:25", 451, "4.3.0 try later"),
            DeliveryAttempt(T0 + timedelta(minutes=5), "lgwan-mta:25", 250, "2.0.0 Ok: queued"),
        ],
    )
    with AuditLog(path) as log:
        log.write(record)
    [line] = _lines(path)
    assert next(iter(line)) == "time"
    assert RFC3339_MS_Z.match(line["time"])
    assert line["queue_id"] == "Q1"
    assert line["quarantine_id"] == "20261122T010834Z-0123456789ab"
    assert line["verdict"] == "deliver"
    assert line["reasons"] == ["html_body", "macro", "metadata"]
    assert line["message_id"] == "<20261122.abc@example.jp>"
    assert line["size"] == 31_000
    assert line["state"] == "delivered"
    assert line["timings"] == {"parse": 0.41, "html": 0.38, "deliver": 12.346}
    assert line["parts"][1] == {
        "path": "2",
        "action": "sanitized",
        "reason": "macro",
        "sha256": "cd" * 32,
        "kind": "office",
        "filename": "請求書①.xls",
        "declared_type": "application/vnd.ms-excel",
        "detected_type": "application/vnd.ms-excel",
        "size": 0,
        "findings": ["macro", "metadata"],
        "removed": ["VBA project"],
    }
    assert [d["code"] for d in line["deliveries"]] == [451, 250]
    assert line["deliveries"][1]["time"] == "2026-11-22T01:13:34.123Z"
    assert "dropped_keys" not in line


def test_no_body_text_ever_reaches_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    record = audit_record(
        queue_id="Q1",
        client="192.0.2.1",
        helo="h",
        mail_from="a@example.jp",
        rcpt_to=["b@example.jp"],
        report=_report(),
        state="delivered",
    )
    # A careless caller adds the body under some key: it is dropped, its name is listed.
    record["body"] = SECRET
    record["raw"] = SECRET.encode()
    record["parts"][0]["text"] = SECRET
    record["deliveries"] = [{"time": T0, "host": "h", "code": 250, "data": SECRET}]
    with AuditLog(path) as log:
        log.write(record)
    text = path.read_text(encoding="utf-8")
    assert "SECRET-BODY-MARKER" not in text
    assert "機密本文" not in text
    [line] = _lines(path)
    assert line["dropped_keys"] == ["body", "raw"]


def test_bytes_are_never_written() -> None:
    line = clean_record({"queue_id": b"Q1 " + SECRET.encode(), "reasons": [b"x"]})
    assert line["queue_id"] == "<bytes omitted>"
    assert line["reasons"] == ["<bytes omitted>"]


def test_control_characters_are_stripped_and_strings_bounded() -> None:
    line = clean_record(
        {
            "helo": 'evil\r\n{"forged": 1}\x1b[2J\x00\u202etxt.exe',
            "mail_from": "x" * 5000,
            "rcpt_to": [f"u{i}@example.jp" for i in range(MAX_LIST_ITEMS + 5)],
        },
        now=T0,
    )
    assert line["helo"] == 'evil{"forged": 1}[2Jtxt.exe'
    assert len(line["mail_from"]) == MAX_STRING_CHARS
    assert line["mail_from"].endswith("…")
    assert len(line["rcpt_to"]) == MAX_LIST_ITEMS
    assert line["rcpt_to_omitted"] == 5
    serialised = json.dumps(line, ensure_ascii=False)
    assert "\n" not in serialised
    assert "\x1b" not in serialised


def test_time_is_first_and_caller_time_is_replaced() -> None:
    line = clean_record({"queue_id": "Q1", "time": "yesterday"}, now=T0)
    assert list(line) == ["time", "queue_id"]
    assert line["time"] == "2026-11-22T01:08:34.123Z"


def test_format_time_converts_to_utc_and_refuses_naive() -> None:
    jst = timezone(timedelta(hours=9))
    assert format_time(datetime(2026, 11, 22, 10, 0, 0, 5000, tzinfo=jst)) == (
        "2026-11-22T01:00:00.005Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 11, 22, 10, 0))


def test_non_finite_numbers_and_deep_nesting_stay_valid_json() -> None:
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    line = clean_record({"timings": {"x": float("nan"), "y": float("inf")}, "error": deep})
    assert line["timings"] == {"x": None, "y": None}
    assert "too deep" in json.dumps(line)
    json.loads(json.dumps(line, allow_nan=False))


def test_record_without_report() -> None:
    record = audit_record(
        queue_id="Q9",
        client="192.0.2.9",
        helo="h",
        mail_from="",
        rcpt_to=["b@example.jp"],
        state="held",
        error="crash",
        attempts=3,
        size=100,
    )
    line = clean_record(record)
    assert line["verdict"] is None
    assert line["error"] == "crash"
    assert line["attempts"] == 3
    assert line["deliveries"] == []


def test_japanese_is_written_as_utf8_not_escaped(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.write({"rcpt_to": ["経理課@city.example.lg.jp"]})
    assert "経理課" in path.read_text(encoding="utf-8")


def test_stdout_stream() -> None:
    stream = io.StringIO()
    log = AuditLog(None, stream=stream)
    log.write({"queue_id": "Q1"})
    log.write({"queue_id": "Q2"})
    lines = stream.getvalue().splitlines()
    assert [json.loads(x)["queue_id"] for x in lines] == ["Q1", "Q2"]


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)

    def worker(n: int) -> None:
        for i in range(200):
            log.write({"queue_id": f"Q{n}-{i}", "helo": "x" * 900})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    lines = _lines(path)
    assert len(lines) == 1600
    assert len({line["queue_id"] for line in lines}) == 1600


def test_rotation_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, fsync=True) as log:
        log.write({"queue_id": "before"})
        path.rename(tmp_path / "audit.jsonl.1")  # what logrotate does
        log.write({"queue_id": "after"})
    assert [x["queue_id"] for x in _lines(tmp_path / "audit.jsonl.1")] == ["before"]
    assert [x["queue_id"] for x in _lines(path)] == ["after"]


def test_settings_resolve_paths(tmp_path: Path) -> None:
    assert AuditSettings().resolve_path(tmp_path) == tmp_path / "audit" / "audit.jsonl"
    assert AuditSettings(path="-").resolve_path(tmp_path) is None
    assert AuditSettings(path="/var/log/m.jsonl").resolve_path(tmp_path) == Path("/var/log/m.jsonl")
    with pytest.raises(ValueError, match="extra"):
        AuditSettings.model_validate({"file": "x"})
    log = AuditLog.from_settings(AuditSettings(), tmp_path)
    log.write({"queue_id": "Q1"})
    log.close()
    assert _lines(tmp_path / "audit" / "audit.jsonl")[0]["queue_id"] == "Q1"


def test_write_failure_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with caplog.at_level("ERROR", logger="mukaika.audit"):
        log.write({"queue_id": "Q1", "body": SECRET})
    assert log.errors == 1
    assert "No space left on device" in caplog.text
    assert '"queue_id":"Q1"' in caplog.text  # the record survives in the service log
    assert "SECRET-BODY-MARKER" not in caplog.text
    strict = AuditLog(tmp_path / "strict.jsonl", raise_errors=True)
    with pytest.raises(OSError, match="No space"):
        strict.write({"queue_id": "Q2"})
    monkeypatch.undo()
    log.write({"queue_id": "Q3"})
    assert [x["queue_id"] for x in _lines(path)] == ["Q3"]
    log.close()
    strict.close()


def test_directory_removed_under_the_log_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    with AuditLog(path) as log:
        log.write({"queue_id": "Q1"})
        shutil.rmtree(tmp_path / "logs")
        log.write({"queue_id": "Q2"})
    assert [x["queue_id"] for x in _lines(path)] == ["Q2"]
