"""``mukaika sanitize``: single messages, batches, exit codes and errors."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from gateway.cli import main
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
    config.write_text("[policy.limits]\nmax_message_bytes = 50\n", encoding="utf-8")
    source, out = tmp_path / "in.eml", tmp_path / "out.eml"
    source.write_bytes(text_mail("x" * 100))
    assert main(["sanitize", str(source), "-o", str(out), "--config", str(config)]) == 10
    assert "保留" in body_text(out.read_bytes())


def test_invalid_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[policy.limits]\nmax_mesage_bytes = 50\n", encoding="utf-8")
    assert main(["sanitize", "--config", str(config), str(tmp_path / "x")]) == 3
    err = capsys.readouterr().err
    assert "policy.limits.max_mesage_bytes: unknown key" in err
    assert str(config) in err


def test_unreadable_input_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sanitize", str(tmp_path / "missing.eml")]) == 3
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
    assert main(["sanitize", "--batch", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 3
