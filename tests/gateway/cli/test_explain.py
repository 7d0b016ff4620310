"""``mukaika explain``: a dry run on a Japanese mail with a macro .docm, per policy group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from tests.mailfactory import leaf, mail, multipart
from tests.sanitizers.cdr.office_fixtures import docm_with_vba

FILENAME = "請求書.docm"
HTML = "<p>請求書をお送りします。<a href='http://evil.example/x'>こちら</a></p>"


def japanese_mail() -> bytes:
    docm = leaf(
        "application/vnd.ms-word.document.macroEnabled.12",
        docm_with_vba(),
        cte="base64",
        extra=[
            (
                "Content-Disposition",
                "attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.docm",
            )
        ],
    )
    body = leaf("text/html; charset=utf-8", HTML.encode("utf-8"))
    return mail(
        multipart("mixed", [body, docm]),
        ("From", "Bank <info@bank.example.co.jp>"),
        ("To", "keiri@city.example.lg.jp, soumu@city.example.lg.jp"),
        ("Subject", "=?UTF-8?B?6KuL5rGC5pu4?="),
        ("Message-ID", "<explain@example.jp>"),
    )


CONFIG = """
[[rules]]
name = "defang-all"
[rules.policy.body]
links = "defang"

[[rules]]
name = "finance-exception"
recipients = ["keiri@city.example.lg.jp"]
exception = true
approved_by = "情報政策課 山田"
reason = "銀行の帳票"
expires = 2027-03-31
[rules.policy.attachments.by_kind]
ooxml = "keep_if_clean"
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    message = tmp_path / "mail.eml"
    message.write_bytes(japanese_mail())
    config = tmp_path / "mukaika.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return message, config


def snapshot(directory: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in directory.rglob("*")}


def test_explain_shows_groups_rules_exception_and_parts(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    message, config = files
    before = snapshot(message.parent)
    code = main(["explain", str(message), "--config", str(config), "--on", "2027-03-01"])
    out = capsys.readouterr().out
    assert code == 0
    assert snapshot(message.parent) == before  # no disk writes
    assert "resolve to 2 different policies" in out
    first, second = out.split("group 1: ")[1].split("group 2: ")
    assert first.startswith("keiri@city.example.lg.jp")
    assert "rules applied (in order, later wins): defang-all, finance-exception" in first
    assert "exception (例外措置) finance-exception: approved by 情報政策課 山田" in first
    assert "attachments.by_kind.ooxml: 'sanitize' -> 'keep_if_clean'" in first
    assert "body.links: 'keep' -> 'defang'" in first
    # keep_if_clean: the macro document is not clean, so it is removed, and the table says why.
    docm_line = next(line for line in first.splitlines() if FILENAME in line)
    assert docm_line.split()[3:7] == ["ooxml", "removed", "macro", "vba"]
    assert second.startswith("soumu@city.example.lg.jp")
    assert "finance-exception" not in second
    docm_line = next(line for line in second.splitlines() if FILENAME in line)
    assert docm_line.split()[3:6] == ["ooxml", "sanitized", "macro"]
    assert docm_line.split()[-1] == "請求書.docx"  # the name it is attached under
    html_line = next(line for line in second.splitlines() if "text/html" in line)
    assert "converted" in html_line
    assert "html_body" in html_line


def test_explain_with_envelope_options_and_expired_exception(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    message, config = files
    code = main(
        [
            "explain",
            str(message),
            "--config",
            str(config),
            "--from",
            "x@bank.example.co.jp",
            "--to",
            "keiri@city.example.lg.jp",
            "--client",
            "192.0.2.1",
            "--on",
            "2027-04-01",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "envelope: from <x@bank.example.co.jp> client 192.0.2.1; 1 recipient(s)" in out
    assert "group 2" not in out
    assert "rules applied (in order, later wins): defang-all\n" in out
    assert "skipped: exception finance-exception expired on 2027-03-31" in out


def test_explain_invalid_config_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]]\nname = 'x'\n[rules.policy]\nbodyy = {}\n")
    message = tmp_path / "m.eml"
    message.write_bytes(japanese_mail())
    assert main(["explain", str(message), "--config", str(bad)]) == ExitCode.CONFIG
    assert f"{bad}: rules[0] ('x').policy.bodyy: unknown key" in capsys.readouterr().err
    assert main(["explain", os.fspath(tmp_path / "absent.eml")]) == ExitCode.INPUT
