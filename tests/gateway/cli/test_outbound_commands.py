"""``mukaika sanitize --direction outbound`` and ``explain --direction outbound``: the outbound
decision without sending, exit codes as inbound (0 pass, 10 hold, 11 reject), ``-o`` the mail
as it would leave; ``mukaika outbound cancel`` without a running service."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode

CONFIG = """
[smtp]
accept_domains = ["city.example.lg.jp"]
[outbound]
bcc_threshold = 1
"""


def _mail(body: str, *, extra: str = "") -> bytes:
    return (
        "From: yamada@city.example.lg.jp\r\n"
        "To: a@example.com, b@example.com, kacho@city.example.lg.jp\r\n"
        f"Subject: test\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mukaika.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "extra", "expected"),
    [
        ("ご確認ください。", "", ExitCode.OK),
        ("個人番号 6214 9832 0257", "", ExitCode.HOLD),
        ("転送です。", "Auto-Submitted: auto-forwarded\r\n", ExitCode.REJECT),
    ],
)
def test_sanitize_outbound_exits_with_the_decision_and_writes_what_leaves(
    tmp_path: Path, config: Path, body: str, extra: str, expected: ExitCode
) -> None:
    source, output, report = tmp_path / "in.eml", tmp_path / "out.eml", tmp_path / "r.json"
    source.write_bytes(_mail(body, extra=extra))
    code, _, err = _run(
        "sanitize", "--direction", "outbound", str(source), "-o", str(output),
        "--report", str(report), "--config", str(config),
    )  # fmt: skip
    assert code == expected, err
    written = output.read_bytes()
    assert b"To: kacho@city.example.lg.jp\r\n" in written  # Bcc conversion
    assert written.endswith(_mail(body, extra=extra).partition(b"\r\n\r\n")[2])
    decision = json.loads(report.read_text(encoding="utf-8"))
    assert decision["direction"] == "outbound"
    assert "621498320257" not in report.read_text(encoding="utf-8")


def test_explain_outbound_shows_reasons_order_and_conversion(tmp_path: Path, config: Path) -> None:
    source = tmp_path / "in.eml"
    source.write_bytes(_mail("マイナンバー：621498320257"))
    code, out, err = _run(
        "explain", "--direction", "outbound", str(source), "--config", str(config)
    )
    assert code == ExitCode.HOLD, err
    assert "personal_number" in out
    assert "delay → filters and approval → conversion" in out
    assert "Bcc conversion removed 2" in out


def test_cancel_needs_the_running_service(tmp_path: Path, config: Path) -> None:
    code, _, err = _run(
        "outbound", "cancel", "20261203101500-0a1b2c3d4e", "--sender", "a@city.example.lg.jp",
        "--config", str(config), "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert code == ExitCode.UNAVAILABLE
    assert "cancelling needs the service" in err
