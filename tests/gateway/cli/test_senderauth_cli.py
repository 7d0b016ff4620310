"""``mukaika sanitize`` and ``mukaika explain`` with ``--from``, ``--client`` and ``--helo``:
the gateway's sender authentication tried on a saved mail, against the loopback DNS server."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from tests.authdns import PARTNER_IP, STRANGER_IP, AuthDns

MAIL = (
    "From: info@partner.co.jp\r\nTo: staff@city.example.lg.jp\r\nSubject: 見積書\r\n"
    "Date: Thu, 03 Dec 2026 10:00:00 +0900\r\nMessage-ID: <cli@partner.co.jp>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n見積書です。\r\n"
).encode()


def setup(tmp_path: Path, auth_dns: AuthDns, raw: bytes) -> tuple[Path, Path]:
    config = tmp_path / "mukaika.toml"
    config.write_text(
        f'[smtp]\nhostname = "mx.city.example.lg.jp"\n'
        f'[auth]\nenabled = true\nnameservers = ["{auth_dns.nameserver}"]\n'
    )
    message = tmp_path / "mail.eml"
    message.write_bytes(raw)
    return config, message


def test_sanitize_evaluates_the_envelope_it_is_given(
    tmp_path: Path, auth_dns: AuthDns, capsys: pytest.CaptureFixture[str]
) -> None:
    config, message = setup(tmp_path, auth_dns, auth_dns.sign(MAIL, "partner.co.jp"))
    out = tmp_path / "out.eml"
    envelope = [
        "--from",
        "info@partner.co.jp",
        "--client",
        PARTNER_IP,
        "--helo",
        "mx.partner.co.jp",
    ]
    code = main(["sanitize", str(message), "-o", str(out), "--config", str(config), *envelope])
    assert code == ExitCode.OK
    header = message_from_bytes(out.read_bytes(), policy=default)["Authentication-Results"]
    assert header.startswith("mx.city.example.lg.jp; spf=none smtp.helo=mx.partner.co.jp;")
    assert "spf=pass smtp.mailfrom=info@partner.co.jp" in header
    assert "dmarc=pass" in header


def test_sanitize_of_a_forged_mail_exits_with_the_reject_verdict(
    tmp_path: Path, auth_dns: AuthDns
) -> None:
    config, message = setup(tmp_path, auth_dns, MAIL)
    report = tmp_path / "report.json"
    code = main(
        [
            "sanitize", str(message), "-o", str(tmp_path / "out.eml"), "--report", str(report),
            "--config", str(config), "--from", "x@partner.co.jp", "--client", STRANGER_IP,
        ]
    )  # fmt: skip
    assert code == ExitCode.REJECT
    auth = json.loads(report.read_text())["auth"]
    assert auth["action"] == "reject"
    assert auth["reasons"] == ["dmarc_reject"]


def test_explain_shows_the_results_and_the_helo(
    tmp_path: Path, auth_dns: AuthDns, capsys: pytest.CaptureFixture[str]
) -> None:
    config, message = setup(tmp_path, auth_dns, MAIL)
    args = ["explain", str(message), "--config", str(config), "--from", "x@partner.co.jp"]
    assert main([*args, "--client", STRANGER_IP, "--helo", "mail.town.ne.jp"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"client {STRANGER_IP} helo mail.town.ne.jp;" in out
    assert (
        "sender authentication: spf=none spf=fail dkim=none dmarc=fail; "
        "action reject (dmarc_reject)" in out
    )
    assert "verdict: reject" in out
