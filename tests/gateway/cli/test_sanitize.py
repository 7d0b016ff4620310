"""``mukaika sanitize``: single messages, batches, exit codes and errors."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli import sanitize as cli_sanitize
from gateway.cli.exit_codes import ExitCode
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from tests.mailfactory import body_text, leaf, mail, text_mail

HTML_MAIL = mail(leaf("text/html; charset=utf-8", "<p>会議のお知らせ</p>".encode()))


def test_single_message_to_files_with_report(tmp_path: Path) -> None:
    source, out, report = tmp_path / "in.eml", tmp_path / "out.eml", tmp_path / "r.json"
    source.write_bytes(HTML_MAIL)
    code = main(["sanitize", str(source), "-o", str(out), "--report", str(report)])
    assert code == 0
    assert "会議のお知らせ" in body_text(out.read_bytes())
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["verdict"] == "deliver"
    assert data["parts"][0]["action"] == "converted"
    assert data["parts"][0]["reason"] == "html_body"


def test_stdin_to_stdout_with_report_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text_mail("こんにちは"))))
    assert main(["sanitize", "--report", "-"]) == 0
    captured = capfdbinary.readouterr()
    assert body_text(captured.out) == "こんにちは\n"
    assert json.loads(captured.err.decode("utf-8"))["verdict"] == "deliver"


def test_held_message_exits_10_and_still_writes_its_notice(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "[policy.limits]\nmax_message_bytes = 50\n[smtp]\nmax_message_bytes = 50\n",
        encoding="utf-8",
    )
    source, out = tmp_path / "in.eml", tmp_path / "out.eml"
    source.write_bytes(text_mail("x" * 100))
    assert main(["sanitize", str(source), "-o", str(out), "--config", str(config)]) == 10
    assert "保留" in body_text(out.read_bytes())


def test_invalid_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[policy.limits]\nmax_mesage_bytes = 50\n", encoding="utf-8")
    assert main(["sanitize", "--config", str(config), str(tmp_path / "x")]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert "policy.limits.max_mesage_bytes: unknown key" in err
    assert str(config) in err


def test_unreadable_input_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sanitize", str(tmp_path / "missing.eml")]) == ExitCode.INPUT
    assert "cannot read" in capsys.readouterr().err


def test_batch_over_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.eml").write_bytes(HTML_MAIL)
    (source / "sub" / "b.eml").write_bytes(text_mail("b"))
    out = tmp_path / "out"
    assert main(["sanitize", "--batch", str(source), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "a.eml",
        "a.json",
        "sub_b.eml",
        "sub_b.json",
    ]
    table = capsys.readouterr().out
    assert "deliver" in table
    assert "html_body" in table


def test_batch_over_an_mbox_and_a_maildir(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "box.mbox")
    box.add(text_mail("one"))
    box.add(HTML_MAIL)
    box.close()
    assert (
        main(["sanitize", "--batch", str(tmp_path / "box.mbox"), "--out", str(tmp_path / "o1")])
        == 0
    )
    assert len(list((tmp_path / "o1").glob("*.eml"))) == 2
    maildir = mailbox.Maildir(tmp_path / "md")
    maildir.add(text_mail("three"))
    assert main(["sanitize", "--batch", str(tmp_path / "md"), "--out", str(tmp_path / "o2")]) == 0
    outputs = list((tmp_path / "o2").glob("*.eml"))
    assert len(outputs) == 1
    assert body_text(outputs[0].read_bytes()) == "three\n"


def test_batch_needs_an_output_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sanitize", "--batch", "somewhere"]) == 2
    assert "--out" in capsys.readouterr().err


def test_batch_source_that_does_not_exist(tmp_path: Path) -> None:
    code = main(["sanitize", "--batch", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert code == ExitCode.INPUT


# A Subject that decodes (UTF-7) to a lone surrogate: it used to crash composition.
SURROGATE_MAIL = text_mail("b", "utf-8", ("From", "a@example.jp"), ("Subject", "=?utf-7?Q?+2D0-?="))


def test_batch_goes_on_past_a_message_that_used_to_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name, raw in (("a", text_mail("a")), ("b", SURROGATE_MAIL), ("c", text_mail("c"))):
        (source / f"{name}.eml").write_bytes(raw)
    out = tmp_path / "out"
    assert main(["sanitize", "--batch", str(source), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.eml")) == ["a.eml", "b.eml", "c.eml"]
    report = json.loads((out / "b.json").read_text(encoding="utf-8"))
    assert "lossy_decode" in report["reasons"]
    assert "lossy_decode" in capsys.readouterr().out


def test_single_message_that_used_to_crash_writes_its_output(tmp_path: Path) -> None:
    (tmp_path / "in.eml").write_bytes(SURROGATE_MAIL)
    code = main(["sanitize", str(tmp_path / "in.eml"), "-o", str(tmp_path / "out.eml")])
    assert code == 0
    assert (tmp_path / "out.eml").read_bytes().isascii()


def test_batch_reports_a_message_that_fails_and_processes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever escapes the pipeline for one message (here a fault injected for ``b``), the
    batch writes that message's status and carries on with the next."""
    real = cli_sanitize.sanitize_message

    def failing_for_b(raw: bytes, policy: Policy) -> SanitizeResult:
        if b"\r\n\r\nb" in raw:
            raise RuntimeError("injected fault")
        return real(raw, policy)

    monkeypatch.setattr(cli_sanitize, "sanitize_message", failing_for_b)
    source = tmp_path / "src"
    source.mkdir()
    for name in "abc":
        (source / f"{name}.eml").write_bytes(text_mail(name))
    out = tmp_path / "out"
    assert main(["sanitize", "--batch", str(source), "--out", str(out)]) == ExitCode.INTERNAL
    assert sorted(p.name for p in out.glob("*.eml")) == ["a.eml", "c.eml"]
    status = json.loads((out / "b.json").read_text(encoding="utf-8"))
    assert status == {"status": "not processed", "error": "RuntimeError: injected fault"}
    captured = capsys.readouterr()
    assert "b: not processed: RuntimeError: injected fault" in captured.err
    assert "not processed" in captured.out
