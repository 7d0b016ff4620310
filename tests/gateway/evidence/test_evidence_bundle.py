"""`mukaika quarantine evidence REF --out DIR` and `mukaika evidence verify DIR`: an export
verified; each kind of tampering (a changed byte, a removed file, an added file, an edited
manifest, and a tampered export whose hashes were all recomputed) refused with its reason."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.evidence.audit import AuditLog
from gateway.store.workflow import open_decision
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, RequestKind, Verdict
from tests.storekit import quarantine_in

ORIGINAL = (
    "From: 差出人 <sender@example.jp>\r\nTo: tanaka@city.example.lg.jp\r\n"
    "Subject: =?UTF-8?B?6KuL5rGC5pu4?=\r\n\r\n請求書を添付します。\r\n"
).encode()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def held(tmp_path: Path) -> tuple[Path, str]:
    """A data directory with one held message, its decision and audit lines (one of them in a
    rotated, gzipped file); the data directory and the reference."""
    data = tmp_path / "data"
    now = datetime.now(UTC)
    with quarantine_in(data / "quarantine") as quarantine:
        ref = quarantine.store(
            "Q1", ORIGINAL, client="192.0.2.1", helo="mx.example.jp",
            mail_from="sender@example.jp", rcpt_to=["tanaka@city.example.lg.jp"], received_at=now,
        )  # fmt: skip
        quarantine.record_result(ref, Report(verdict=Verdict.HOLD, reasons=[Reason.MACRO]))
        quarantine.record_delivery(ref, MessageState.HELD)
        open_decision(
            quarantine.index.store, ref, kind=RequestKind.RELEASE, actor="sato",
            reason="取引先からの請求書", now=now, allowed_from=(MessageState.HELD,),
            approved=False, expires_at=now + timedelta(days=1),
        )  # fmt: skip
    (data / "audit").mkdir()
    with gzip.open(data / "audit" / "audit.jsonl-20261201.gz", "wt", encoding="utf-8") as old:
        old.write(json.dumps({"event": "message", "quarantine_id": ref, "parts": [{"path": "1"}]}))
        old.write("\n" + json.dumps({"event": "message", "quarantine_id": "other"}) + "\n")
    with AuditLog(data / "audit" / "audit.jsonl") as audit:
        audit.write({"event": "request", "quarantine_id": ref, "actor": "sato"})
        audit.write({"event": "request", "quarantine_id": "someone-else", "actor": "x"})
    return data, ref


def _export(data: Path, ref: str, out: Path) -> None:
    code, stdout, err = run(
        "quarantine", "evidence", ref, "--out", str(out), "--data-dir", str(data)
    )
    assert code == ExitCode.OK, err
    assert "manifest SHA-256" in stdout


def _verify(data: Path, out: Path, *more: str) -> tuple[int, str]:
    code, stdout, err = run("evidence", "verify", str(out), "--data-dir", str(data), *more)
    return code, stdout + err


def test_an_export_holds_the_record_and_verifies(held: tuple[Path, str], tmp_path: Path) -> None:
    data, ref = held
    out = tmp_path / "evidence"
    _export(data, ref, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["original.eml", "report.json", "decisions.json", "audit.jsonl", "manifest.json",
         "manifest.seal"]
    )  # fmt: skip
    assert (out / "original.eml").read_bytes() == ORIGINAL
    lines = [json.loads(line) for line in (out / "audit.jsonl").read_text("utf-8").splitlines()]
    assert [line["event"] for line in lines] == ["message", "request"]  # rotated first
    assert all(line["quarantine_id"] == ref for line in lines)
    decisions = json.loads((out / "decisions.json").read_text("utf-8"))
    assert decisions[0]["reason"] == "取引先からの請求書"
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert report["entry"]["verdict"] == "hold"
    assert report["entry"]["reasons"] == ["macro"]
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["original_sha256"] == hashlib.sha256(ORIGINAL).hexdigest()
    code, said = _verify(data, out)
    assert code == ExitCode.OK, said
    assert "intact (hashes and seal)" in said
    trail = (data / "audit" / "audit.jsonl").read_text("utf-8").splitlines()
    recorded = json.loads(trail[-1])
    assert recorded["event"] == "evidence"
    seal = (out / "manifest.seal").read_text()
    assert f"sha256 {recorded['sha256']}\n" in seal


def _tampered(out: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(out, copy)
    return copy


def test_each_kind_of_tampering_is_refused_with_its_reason(
    held: tuple[Path, str], tmp_path: Path
) -> None:
    data, ref = held
    out = tmp_path / "evidence"
    _export(data, ref, out)

    byte = _tampered(out, tmp_path, "byte")
    changed = bytearray((byte / "original.eml").read_bytes())
    changed[-5] ^= 0x01
    (byte / "original.eml").write_bytes(bytes(changed))
    code, said = _verify(data, byte)
    assert code == ExitCode.INTEGRITY
    assert "original.eml: changed: SHA-256" in said

    removed = _tampered(out, tmp_path, "removed")
    (removed / "audit.jsonl").unlink()
    code, said = _verify(data, removed)
    assert code == ExitCode.INTEGRITY
    assert "audit.jsonl: missing (the manifest lists it)" in said

    added = _tampered(out, tmp_path, "added")
    (added / "note.txt").write_text("見なかったことに")
    code, said = _verify(data, added)
    assert code == ExitCode.INTEGRITY
    assert "note.txt: not in the manifest (a file was added)" in said

    edited = _tampered(out, tmp_path, "edited")
    text = (edited / "manifest.json").read_text("utf-8")
    (edited / "manifest.json").write_text(text.replace('"exported_by": "', '"exported_by": "x'))
    code, said = _verify(data, edited)
    assert code == ExitCode.INTEGRITY
    assert "manifest.json changed: its SHA-256 is" in said

    for missing in ("manifest.json", "manifest.seal"):
        gone = _tampered(out, tmp_path, f"no-{missing}")
        (gone / missing).unlink()
        code, said = _verify(data, gone)
        assert code == ExitCode.INTEGRITY
        assert f"{missing} is missing" in said


def test_a_rehashed_forgery_is_caught_by_the_seal_only(
    held: tuple[Path, str], tmp_path: Path
) -> None:
    """Someone who edits the original and recomputes every hash in the manifest and the seal
    (but has not the installation's key) passes a check of the hashes, never the seal's."""
    data, ref = held
    out = tmp_path / "evidence"
    _export(data, ref, out)
    forged = _tampered(out, tmp_path, "forged")
    fake = ORIGINAL.replace("請求書".encode(), "領収書".encode())
    (forged / "original.eml").write_bytes(fake)
    manifest = json.loads((forged / "manifest.json").read_text("utf-8"))
    digest = hashlib.sha256(fake).hexdigest()
    manifest["original_sha256"] = digest
    for item in manifest["files"]:
        if item["name"] == "original.eml":
            item.update(bytes=len(fake), sha256=digest)
    raw = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
    (forged / "manifest.json").write_bytes(raw)
    old_mac = (forged / "manifest.seal").read_text().split()[-1]
    (forged / "manifest.seal").write_text(
        f"sha256 {hashlib.sha256(raw).hexdigest()}\nhmac-sha256 {old_mac}\n"
    )
    code, said = _verify(data, forged)
    assert code == ExitCode.INTEGRITY
    assert "the HMAC does not match this installation's key" in said
    code, said = _verify(data, forged, "--hashes-only")
    assert code == ExitCode.OK  # the documented limit of a check without the key
    assert "the seal's HMAC not checked" in said


def test_refusals_of_the_commands(held: tuple[Path, str], tmp_path: Path) -> None:
    data, ref = held
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    code, _, err = run("quarantine", "evidence", ref, "--out", str(busy), "--data-dir", str(data))
    assert code == ExitCode.USAGE
    assert "exists and is not an empty directory" in err
    code, _, err = run(
        "quarantine", "evidence", "20261204T000000Z-0000000000000000", "--out",
        str(tmp_path / "none"), "--data-dir", str(data),
    )  # fmt: skip
    assert code == ExitCode.NOT_FOUND, err
    out = tmp_path / "evidence"
    _export(data, ref, out)
    elsewhere = tmp_path / "other-installation"
    elsewhere.mkdir()
    code, said = _verify(elsewhere, out)
    assert code == ExitCode.CONFIG
    assert "--hashes-only" in said
    code, said = _verify(data, tmp_path / "nothing")
    assert code == ExitCode.INPUT
    assert os.path.isdir(out)


def test_after_a_new_secret_key_only_the_hashes_verify(
    held: tuple[Path, str], tmp_path: Path
) -> None:
    data, ref = held
    out = tmp_path / "evidence"
    _export(data, ref, out)
    (data / "secret_key").write_text("0" * 64 + "\n")
    code, said = _verify(data, out)
    assert code == ExitCode.INTEGRITY
    assert "the HMAC does not match this installation's key" in said
    code, said = _verify(data, out, "--hashes-only")
    assert code == ExitCode.OK, said
