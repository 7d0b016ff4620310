"""``mukaika quarantine list|show|export|purge`` on a temporary data directory."""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli import quarantine as quarantine_cli
from gateway.cli.exit_codes import ExitCode
from sanitizers.report import Report
from sanitizers.vocabulary import Reason, Verdict
from tests.storekit import quarantine_in, replace_original

T0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
RAW = "Subject: test\r\n\r\n本文\r\n".encode()

Run = Callable[..., tuple[int, str, str]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mukaika")
    subparsers = parser.add_subparsers(dest="command", required=True)
    quarantine_cli.register(subparsers)
    return parser


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(["quarantine", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with quarantine_in(data / "quarantine", 90) as q:
        held = q.store(
            "Q1",
            RAW,
            client="192.0.2.1",
            helo="mx.example.net",
            mail_from="taro@example.jp",
            rcpt_to=["hanako@city.example.lg.jp"],
            received_at=T0,
        )
        q.record_result(
            held,
            Report(
                verdict=Verdict.HOLD,
                reasons=[Reason.ENCRYPTED_ARCHIVE],
                from_="山田 太郎 <taro@example.jp>",
                subject="見積書の送付について①\x1b[31m",
            ),
        )
        q.record_delivery(held, "held")
        later = datetime(2026, 12, 1, tzinfo=UTC)
        delivered = q.store(
            "Q2",
            RAW + b"2",
            client="192.0.2.2",
            helo="h",
            mail_from="",
            rcpt_to=["a@city.example.lg.jp"],
            received_at=later,
        )
        q.record_delivery(delivered, "delivered")
    return data


def _ids(data_dir: Path) -> list[str]:
    with quarantine_in(data_dir / "quarantine", 90) as q:
        return [e.id for e in q.list()]


def test_list_shows_japanese_subject_as_is(run: Run, data_dir: Path) -> None:
    code, out, _ = run("list", "--data-dir", str(data_dir))
    assert code == ExitCode.OK
    lines = out.splitlines()
    assert lines[0].startswith("ID")
    assert len(lines) == 3
    assert "見積書の送付について①" in out
    assert "山田 太郎" in out
    assert "\x1b" not in out


def test_list_filters_and_json(run: Run, data_dir: Path) -> None:
    code, out, _ = run("list", "--data-dir", str(data_dir), "--state", "held", "--json")
    assert code == ExitCode.OK
    [entry] = [json.loads(line) for line in out.splitlines()]
    assert entry["state"] == "held"
    assert entry["verdict"] == "hold"
    assert entry["subject"] == "見積書の送付について①[31m"
    code, out, _ = run("list", "--data-dir", str(data_dir), "--since", "2026-11-15", "--json")
    assert [json.loads(x)["queue_id"] for x in out.splitlines()] == ["Q2"]
    code, out, err = run("list", "--data-dir", str(data_dir), "--verdict", "reject")
    assert (code, out) == (ExitCode.OK, "")
    assert "no quarantined messages match" in err


def test_show(run: Run, data_dir: Path) -> None:
    qid = _ids(data_dir)[1]
    code, out, _ = run("show", qid, "--data-dir", str(data_dir))
    assert code == ExitCode.OK
    assert f"id            {qid}" in out
    assert "encrypted_archive" in out
    assert "hanako@city.example.lg.jp" in out
    code, out, _ = run("show", qid, "--data-dir", str(data_dir), "--json")
    assert json.loads(out)["id"] == qid


def test_show_null_sender(run: Run, data_dir: Path) -> None:
    code, out, _ = run("show", _ids(data_dir)[0], "--data-dir", str(data_dir))
    assert code == ExitCode.OK
    assert "<> (null sender)" in out


@pytest.mark.parametrize("qid", ["20261101T093000Z-000000000000", "not-an-id"])
def test_unknown_id_is_a_clear_error(run: Run, data_dir: Path, qid: str) -> None:
    for action in (["show", qid], ["export", qid, "out.eml"]):
        code, out, err = run(*action, "--data-dir", str(data_dir))
        assert code == ExitCode.NOT_FOUND
        assert out == ""
        assert f"no quarantined message with id '{qid}'" in err


def test_export_to_file(run: Run, data_dir: Path, tmp_path: Path) -> None:
    qid = _ids(data_dir)[1]
    out_file = tmp_path / "original.eml"
    code, _, err = run("export", qid, str(out_file), "--data-dir", str(data_dir))
    assert code == ExitCode.OK
    assert out_file.read_bytes() == RAW
    assert "SHA-256 verified" in err
    code, _, err = run("export", qid, str(out_file), "--data-dir", str(data_dir))
    assert code == ExitCode.USAGE
    assert "--force" in err
    code, _, _ = run("export", qid, str(out_file), "--force", "--data-dir", str(data_dir))
    assert code == ExitCode.OK


def test_export_to_stdout(data_dir: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    qid = _ids(data_dir)[1]
    args = _parser().parse_args(["quarantine", "export", qid, "-", "--data-dir", str(data_dir)])
    assert args.func(args) == ExitCode.OK
    assert capsysbinary.readouterr().out == RAW


def test_export_refuses_a_terminal(
    run: Run, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    code, out, err = run("export", _ids(data_dir)[1], "-", "--data-dir", str(data_dir))
    assert (code, out) == (ExitCode.USAGE, "")
    assert "terminal" in err


def test_tampered_original_exit_code(run: Run, data_dir: Path, tmp_path: Path) -> None:
    qid = _ids(data_dir)[1]
    replace_original(data_dir, qid, [gzip.compress(b"altered")])
    out_file = tmp_path / "x.eml"
    code, _, err = run("export", qid, str(out_file), "--data-dir", str(data_dir))
    assert code == ExitCode.INTEGRITY
    assert "integrity failure" in err
    assert not out_file.exists()


def test_purge(run: Run, data_dir: Path) -> None:
    code, out, _ = run("purge", "--data-dir", str(data_dir), "--now", "2027-02-15", "--dry-run")
    assert code == ExitCode.OK
    assert "would purge 1 message(s)" in out
    assert len(_ids(data_dir)) == 2
    code, out, _ = run("purge", "--data-dir", str(data_dir), "--now", "2027-02-15T00:00+09:00")
    assert code == ExitCode.OK
    assert "purged 1 message(s)" in out
    assert len(_ids(data_dir)) == 1


def test_missing_quarantine_is_an_error(run: Run, tmp_path: Path) -> None:
    code, _, err = run("list", "--data-dir", str(tmp_path / "nowhere"))
    assert code == ExitCode.NOT_FOUND
    assert "no quarantine at" in err
    assert not (tmp_path / "nowhere").exists()  # never created by a read command


def test_invalid_config_exits_config(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[nonsense]\nkey = 1\n", encoding="utf-8")
    code, _, err = run("list", "--config", str(config))
    assert code == ExitCode.CONFIG
    assert f"mukaika quarantine: {config}: nonsense: unknown key" in err
    assert "nonsense" in err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["list", "--since", "yesterday"], ["list", "--limit", "0"], ["frobnicate"]):
        with pytest.raises(SystemExit) as info:
            _parser().parse_args(["quarantine", *argv])
        assert info.value.code == 2
    assert "not an ISO 8601 date" in capsys.readouterr().err


def test_config_file_gives_data_dir_and_retention(run: Run, data_dir: Path, tmp_path: Path) -> None:
    from gateway.configuration.config import Config

    if "service" not in Config.model_fields or "quarantine" not in Config.model_fields:
        pytest.skip("the configuration has no [service] / [quarantine] sections yet")
    config = tmp_path / "mukaika.toml"
    config.write_text(
        f'[service]\ndata_dir = "{data_dir}"\n\n[quarantine]\nretention_days = 30\n',
        encoding="utf-8",
    )
    code, out, _ = run("list", "--config", str(config), "--json")
    assert code == ExitCode.OK
    assert len(out.splitlines()) == 2
    code, out, _ = run("purge", "--config", str(config), "--now", "2026-12-15", "--dry-run")
    assert code == ExitCode.OK
    assert "would purge 1 message(s) past retention (30 days" in out


def test_verify(run: Run, data_dir: Path) -> None:
    code, out, _ = run("verify", "--data-dir", str(data_dir))
    assert code == ExitCode.OK
    assert "verified 2 original(s): 2 intact, 0 failed" in out
    qid = _ids(data_dir)[0]
    replace_original(data_dir, qid, [])
    code, out, _ = run("verify", "--data-dir", str(data_dir))
    assert code == ExitCode.INTEGRITY
    assert f"FAILED {qid}: the stored original is missing" in out
    assert "1 intact, 1 failed" in out
    code, out, _ = run("verify", _ids(data_dir)[1], "--data-dir", str(data_dir))
    assert (code, out.strip()) == (ExitCode.OK, "verified 1 original(s): 1 intact, 0 failed")
    code, _, err = run("verify", "nope", "--data-dir", str(data_dir))
    assert code == ExitCode.NOT_FOUND
    assert "no quarantined message with id 'nope'" in err


def test_unreadable_store_is_a_clear_error(run: Run, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "store.sqlite3").write_bytes(b"this is not a database" * 100)
    code, out, err = run("list", "--data-dir", str(tmp_path / "data"))
    assert (code, out) == (ExitCode.IO_ERROR, "")
    assert "cannot open the store" in err
    assert "not a database" in err
