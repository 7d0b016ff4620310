"""DMARC aggregate reports (RFC 7489 section 7) for a day of test mail evaluated against the
real loopback DNS server: recorded, aggregated, checked against the RFC's schema, sent only to
destinations that pass the section 7.1 check."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.settings import AuthSettings
from gateway.senderauth.evaluate import Authenticator, Transaction
from gateway.senderauth.reports import (
    Recorder,
    aggregate,
    build_reports,
    read_day,
    schema_problems,
)
from gateway.senderauth.resolver import Resolver
from gateway.service.dmarc_reporting import hand_in_files
from tests.authdns import PARTNER_IP, STRANGER_IP, AuthDns
from tests.storekit import migrated_store

DAY = date(2026, 12, 2)
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()


def mail(sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: staff@city.example.lg.jp\r\nSubject: s\r\n"
        "Message-ID: <r@example.jp>\r\nDate: Wed, 02 Dec 2026 21:00:00 +0900\r\n\r\nbody\r\n"
    ).encode()


def record_day(auth_dns: AuthDns, directory: Path) -> None:
    settings = AuthSettings(enabled=True, nameservers=(auth_dns.nameserver,))
    checker = Authenticator(settings, authserv_id="mx.city.example.lg.jp")
    recorder = Recorder(directory, clock=lambda: NOON)
    day_of_mail = [
        (
            auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp"),
            PARTNER_IP,
            "info@partner.co.jp",
        ),
        (
            auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp"),
            PARTNER_IP,
            "info@partner.co.jp",
        ),
        (mail("ceo@partner.co.jp"), STRANGER_IP, "ceo@partner.co.jp"),
        (mail("ceo@bank.co.jp"), STRANGER_IP, "x@bank.co.jp"),
        (mail("a@leaky.co.jp"), STRANGER_IP, "a@leaky.co.jp"),
        (mail("mayor@town.ne.jp"), PARTNER_IP, "mayor@town.ne.jp"),
    ]
    for raw, ip, sender in day_of_mail:
        transaction = Transaction(ip, "", sender)
        evaluation = checker.evaluate(raw, transaction)
        recorder.record(evaluation, transaction, evaluation.outcome.action)


def test_a_day_of_mail_gives_valid_reports_to_verified_destinations(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    record_day(auth_dns, tmp_path)
    lookup = Resolver((auth_dns.nameserver,), 5, 0).budget()
    reports = build_reports(
        aggregate(read_day(tmp_path, DAY)),
        DAY,
        org_name="例市",
        email="dmarc@city.example.lg.jp",
        lookup=lookup,
    )
    by_domain = {report.domain: report for report in reports}
    assert set(by_domain) == {"partner.co.jp", "bank.co.jp", "leaky.co.jp", "town.ne.jp"}
    for report in reports:
        assert schema_problems(report.xml) == []
    # The policy domain's own organisation: no check needed.
    assert by_domain["partner.co.jp"].destinations == ("dmarc-rua@partner.co.jp",)
    # Outside, and it published <domain>._report._dmarc.<its domain>.
    assert by_domain["bank.co.jp"].destinations == ("reports@dmarc-vendor.ne.jp",)
    # Outside, and it did not: never sent there.
    assert by_domain["leaky.co.jp"].destinations == ()
    assert (
        "collector.ne.jp does not accept reports for leaky.co.jp"
        in by_domain["leaky.co.jp"].refused[0]
    )
    feedback = ET.fromstring(by_domain["partner.co.jp"].xml)
    assert feedback.findtext("report_metadata/org_name") == "例市"
    assert feedback.findtext("policy_published/p") == "reject"
    rows = {
        (r.findtext("row/source_ip"), r.findtext("row/policy_evaluated/disposition")): int(
            r.findtext("row/count") or 0
        )
        for r in feedback.findall("record")
    }
    assert rows == {(PARTNER_IP, "none"): 2, (STRANGER_IP, "reject"): 1}
    begin = int(datetime(2026, 12, 2, tzinfo=UTC).timestamp())
    assert feedback.findtext("report_metadata/date_range/begin") == str(begin)


def test_damaged_record_lines_are_skipped(auth_dns: AuthDns, tmp_path: Path) -> None:
    record_day(auth_dns, tmp_path)
    (tmp_path / f"{DAY.isoformat()}.1.jsonl").write_text(
        '{"broken\n' + "x" * 100_000 + "\n" + json.dumps({"policy": "not a table"}) + "\n"
    )
    lookup = Resolver((auth_dns.nameserver,), 5, 0).budget()
    reports = build_reports(
        aggregate(read_day(tmp_path, DAY)), DAY, org_name="o", email="e@x.jp", lookup=lookup
    )
    assert len(reports) == 4


def test_the_command_writes_each_report_and_its_mail(
    auth_dns: AuthDns, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "var"
    # Another node's day, handed in to the store, and this node's, still in its files.
    record_day(auth_dns, data_dir / "dmarc")
    with migrated_store(data_dir) as store:
        hand_in_files(store, data_dir / "dmarc", "node-2", date(2026, 12, 3))
    record_day(auth_dns, data_dir / "dmarc")
    config = tmp_path / "mukaika.toml"
    config.write_text(
        f'[service]\ndata_dir = "{data_dir}"\n'
        f'[auth]\nenabled = true\nnameservers = ["{auth_dns.nameserver}"]\n'
        '[auth.reports]\nenabled = true\nfrom_address = "dmarc@city.example.lg.jp"\n'
        'org_name = "例市"\n',
        encoding="utf-8",
    )
    args = ["dmarc-reports", "--config", str(config), "--day", DAY.isoformat()]
    assert main([*args, "--dry-run"]) == ExitCode.OK
    assert "partner.co.jp: report" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == ExitCode.OK
    mails = sorted(out.glob("*.eml"))
    assert len(mails) == 3  # leaky.co.jp has no verified destination
    message = message_from_bytes(mails[0].read_bytes(), policy=default)
    assert message["Subject"].startswith("Report Domain: ")
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename().startswith("example.lg.jp!")
    xml = gzip.decompress(attachment.get_content())
    assert schema_problems(xml) == []
    counts = [int(r.findtext("row/count") or 0) for r in ET.fromstring(xml).findall("record")]
    assert sum(counts) in {2, 4, 6}  # each node's rows of the domain, counted together
    partner = next(out.glob("*!partner.co.jp!*.xml.gz"))
    rows = ET.fromstring(gzip.decompress(partner.read_bytes())).findall("record")
    assert sorted(int(r.findtext("row/count") or 0) for r in rows) == [2, 4]


def test_the_command_needs_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mukaika.toml"
    config.write_text(
        f'[service]\ndata_dir = "{tmp_path / "none"}"\n[auth]\nenabled = true\n'
        '[auth.reports]\nenabled = true\nfrom_address = "d@city.example.lg.jp"\norg_name = "o"\n',
        encoding="utf-8",
    )
    assert main(["dmarc-reports", "--config", str(config), "--dry-run"]) == ExitCode.NOT_FOUND
    assert "no store at" in capsys.readouterr().err


def test_the_command_refuses_when_reports_are_off(tmp_path: Path) -> None:
    config = tmp_path / "mukaika.toml"
    config.write_text("[auth]\nenabled = true\n")
    assert main(["dmarc-reports", "--config", str(config), "--dry-run"]) == ExitCode.CONFIG


def test_mail_outside_the_pct_sample_is_reported_with_its_override(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    settings = AuthSettings(enabled=True, nameservers=(auth_dns.nameserver,))
    recorder = Recorder(tmp_path, clock=lambda: NOON)
    for percentile in (10, 90):  # inside the sample of pct=25, then outside it
        checker = Authenticator(settings, authserv_id="mx.city.example.lg.jp")
        checker.sample = lambda value=percentile: value  # type: ignore[misc]
        transaction = Transaction(STRANGER_IP, "", "ceo@sampled.co.jp")
        evaluation = checker.evaluate(mail("ceo@sampled.co.jp"), transaction)
        recorder.record(evaluation, transaction, evaluation.outcome.action)
    lookup = Resolver((auth_dns.nameserver,), 5, 0).budget()
    [report] = build_reports(
        aggregate(read_day(tmp_path, DAY)), DAY, org_name="o", email="e@x.jp", lookup=lookup
    )
    assert schema_problems(report.xml) == []
    feedback = ET.fromstring(report.xml)
    assert feedback.findtext("policy_published/pct") == "25"
    rows = {
        (
            r.findtext("row/policy_evaluated/disposition"),
            r.findtext("row/policy_evaluated/reason/type"),
        )
        for r in feedback.findall("record")
    }
    assert rows == {("reject", None), ("quarantine", "sampled_out")}


def test_each_tenant_reports_its_own_mail_with_its_own_settings(
    auth_dns: AuthDns, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    directory = data_dir / "dmarc"
    checker = Authenticator(
        AuthSettings(enabled=True, nameservers=(auth_dns.nameserver,)), authserv_id="mx.jp"
    )
    recorder = Recorder(directory, clock=lambda: NOON)
    for raw, ip, sender, tenants in (
        (
            auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp"),
            PARTNER_IP,
            "info@partner.co.jp",
            ("kita", "minami"),
        ),  # one message for both tenants
        (mail("ceo@bank.co.jp"), STRANGER_IP, "x@bank.co.jp", ("minami",)),
    ):
        transaction = Transaction(ip, "", sender)
        evaluation = checker.evaluate(raw, transaction)
        recorder.record(evaluation, transaction, evaluation.outcome.action, tenants)
    domains = {
        t: {r["policy"]["domain"] for r in read_day(directory, DAY, t)}
        for t in ("kita", "minami", "")
    }
    assert domains == {
        "kita": {"partner.co.jp"},
        "minami": {"partner.co.jp", "bank.co.jp"},
        "": set(),
    }
    config = tmp_path / "mukaika.toml"
    config.write_text(
        f'[service]\ndata_dir = "{data_dir}"\n'
        f'[auth]\nenabled = true\nnameservers = ["{auth_dns.nameserver}"]\n'
        '[[tenants]]\nname = "kita"\ndomains = ["city.kita.example.lg.jp"]\n'
        'relay_host = "127.0.0.1"\n'
        '[tenants.auth.reports]\nenabled = true\nfrom_address = "dmarc@city.kita.example.lg.jp"\n'
        'org_name = "北市"\n'
        '[[tenants]]\nname = "minami"\ndomains = ["town.minami.example.lg.jp"]\n'
        'relay_host = "127.0.0.1"\n',
        encoding="utf-8",
    )
    migrated_store(data_dir).close()
    out = tmp_path / "out"
    args = ["dmarc-reports", "--config", str(config), "--day", DAY.isoformat(), "--out", str(out)]
    assert main([*args, "--tenant", "kita"]) == ExitCode.OK
    (sent,) = sorted(out.glob("*.eml"))
    message = message_from_bytes(sent.read_bytes(), policy=default)
    assert message["From"] == "dmarc@city.kita.example.lg.jp"
    assert "Report Domain: partner.co.jp" in message["Subject"]
    # Minami's reports are off; an unknown tenant is refused.
    assert main([*args, "--tenant", "minami"]) == ExitCode.CONFIG
    assert main([*args, "--tenant", "higashi"]) == ExitCode.CONFIG
