"""Tenants in the running gateway, over real SMTP: a message for two tenants is split, each
copy sanitized with its tenant's policy and rules and delivered to its tenant's MTA only;
audit lines, quarantine entries and metrics carry the tenant."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.configuration.config import Config
from gateway.observation.metrics import Metrics
from gateway.processing.pool import InlineSanitizer
from gateway.queue.spool import Envelope, new_queue_id
from gateway.service.assembly import Gateway, Parts
from sanitizers.policy import Policy
from tests.authdns import AuthDns
from tests.gateway.relaykit import FakeAudit, FakeQuarantine, Sink, make_config, wait_until

KITA = "taro@city.kita.example.lg.jp"
MINAMI = "hanako@town.minami.example.lg.jp"
MAIL = (
    "From: Bank <info@bank.example.co.jp>\r\n"
    f"To: {KITA}, {MINAMI}\r\n"
    "Subject: =?UTF-8?B?6KuL5rGC5pu4?=\r\n"
    "Message-ID: <tenants@example.jp>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "請求書をお送りします。\r\n"
).encode()


def tenants_config(tmp_path: Path, shared: Sink, kita: Sink, minami: Sink) -> Config:
    base = make_config(tmp_path, shared.port, smtp={"accept_domains": []})
    data = base.model_dump()
    data["tenants"] = [
        {
            "name": "kita",
            "domains": ["city.kita.example.lg.jp"],
            "relay_host": "127.0.0.1",
            "relay_port": kita.port,
            # Kita's own layer: a policy and a rule for all its recipients.
            "policy": {"output": {"subject_tag": "[北市]"}},
            "rules": [
                {
                    "name": "kita-bank",
                    "senders": ["bank.example.co.jp"],
                    "policy": {"output": {"subject_tag": "[北市・銀行]"}},
                }
            ],
        },
        {
            "name": "minami",
            "domains": ["town.minami.example.lg.jp"],
            "relay_host": "127.0.0.1",
            "relay_port": minami.port,
        },
    ]
    return Config.model_validate(data)


def subject(raw: bytes) -> str:
    for line in raw.decode("ascii", "replace").split("\r\n"):
        if line.lower().startswith("subject:"):
            return str(make_header(decode_header(line.split(":", 1)[1].strip())))
    raise AssertionError("no subject")


async def start(config: Config) -> tuple[Gateway, FakeQuarantine, FakeAudit, Metrics, int]:
    quarantine, audit, metrics = FakeQuarantine(), FakeAudit(), Metrics()
    parts = Parts(
        sanitizer=InlineSanitizer(Policy(), ThreadPoolExecutor(2)),
        quarantine=quarantine,
        audit=audit,
        metrics=metrics,
        free_bytes=lambda: 10**12,
        receive_in_process=True,
    )
    gateway = Gateway(config, parts)
    _, port = await gateway.start()
    return gateway, quarantine, audit, metrics, port


async def test_a_message_for_two_tenants_reaches_each_tenants_mta_only(tmp_path: Path) -> None:
    shared, kita, minami = Sink(), Sink(), Sink()
    for sink in (shared, kita, minami):
        await sink.start()
    gateway, quarantine, audit, metrics, port = await start(
        tenants_config(tmp_path, shared, kita, minami)
    )
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            await client.sendmail("info@bank.example.co.jp", [KITA, MINAMI], MAIL)
        (to_kita,) = await kita.wait_for(1)
        (to_minami,) = await minami.wait_for(1)
        await wait_until(
            lambda: len([r for r in audit.records if r.get("event") == "message"]) == 2
        )
    finally:
        await gateway.stop()
        for sink in (shared, kita, minami):
            await sink.stop()
    # Each MTA got its own tenant's recipient and nothing else; the shared relay nothing.
    assert to_kita.rcpt_tos == [KITA]
    assert to_minami.rcpt_tos == [MINAMI]
    assert shared.messages == []
    # Kita's policy and its rule applied to Kita's copy only.
    assert subject(to_kita.data).startswith("[北市・銀行]")
    assert subject(to_minami.data) == "請求書"
    lines: dict[str, dict[str, Any]] = {
        r["tenant"]: r for r in audit.records if r.get("event") == "message"
    }
    assert set(lines) == {"kita", "minami"}
    assert lines["kita"]["rules"] == ["kita-bank"]
    assert lines["minami"].get("rules") is None
    assert sorted(quarantine.tenants.values()) == ["kita", "minami"]
    text = metrics.render().decode()
    for tenant in ("kita", "minami"):
        assert f'mukaika_tenant_messages_total{{outcome="delivered",tenant="{tenant}"}} 1.0' in text
        assert f'mukaika_tenant_messages_total{{outcome="deliver",tenant="{tenant}"}} 1.0' in text


async def test_a_recipient_of_no_tenant_is_refused_at_rcpt(tmp_path: Path) -> None:
    shared, kita, minami = Sink(), Sink(), Sink()
    for sink in (shared, kita, minami):
        await sink.start()
    gateway, *_, port = await start(tenants_config(tmp_path, shared, kita, minami))
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            await client.mail("info@bank.example.co.jp")
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await client.rcpt("someone@example.lg.jp")
            await client.rcpt(KITA)  # a tenant's domain is an accepted domain
    finally:
        await gateway.stop()
        for sink in (shared, kita, minami):
            await sink.stop()
    assert refused.value.code == 554  # relay denied: in no tenant's domains


async def test_mail_of_a_tenant_no_longer_configured_waits_and_never_goes_elsewhere(
    tmp_path: Path,
) -> None:
    shared, kita, minami = Sink(), Sink(), Sink()
    for sink in (shared, kita, minami):
        await sink.start()
    gateway, *_ = await start(tenants_config(tmp_path, shared, kita, minami))
    envelope = Envelope(
        queue_id=new_queue_id(),
        mail_from="info@bank.example.co.jp",
        rcpt_tos=("a@city.gone.example.lg.jp",),
        received_at=time.time(),
        tenant="gone",
        verdict="deliver",
    )
    try:
        gateway.spool.put("outgoing", envelope, MAIL)
        await gateway.worker.delivering.deliver(envelope, MAIL)
        waiting, _ = gateway.spool.load("outgoing", envelope.queue_id)
    finally:
        await gateway.stop()
        for sink in (shared, kita, minami):
            await sink.stop()
    assert waiting.last_error == "451 4.3.0 tenant 'gone' is not configured: not delivered"
    assert waiting.deliveries[-1]["host"] == "(no MTA for tenant 'gone'):0"
    assert shared.messages == kita.messages == minami.messages == []


async def test_outbound_mail_is_its_senders_tenants_and_leaves_by_its_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kita's outbound mail goes to Kita's relay ([tenants.outbound]), its entry is Kita's,
    and a refused one's notice goes back through Kita's own LGWAN-side MTA."""
    from tests.e2e import test_outbound as outbound

    shared_lgwan, kita_lgwan, shared_relay, kita_relay = Sink(), Sink(), Sink(), Sink()
    for sink in (shared_lgwan, kita_lgwan, shared_relay, kita_relay):
        await sink.start()
    data_dir = tmp_path / "data"
    base = outbound._config(
        data_dir, shared_lgwan, shared_relay, policy={"personal_number": "reject"}
    ).model_dump()
    base["smtp"]["accept_domains"] = []
    base["tenants"] = [
        {
            "name": "kita",
            "domains": [outbound.DOMAIN],
            "relay_host": "127.0.0.1",
            "relay_port": kita_lgwan.port,
            "outbound": {"relay_port": kita_relay.port, "disclaimer": "北市役所からの送信です。"},
        },
        {
            "name": "minami",
            "domains": ["town.minami.example.lg.jp"],
            "relay_host": "127.0.0.1",
            "relay_port": shared_lgwan.port,
        },
    ]
    try:
        async with outbound._gateway(Config.model_validate(base)) as gateway:
            await outbound._send(gateway, outbound._mail(text="資料をお送りします。"))
            (sent,) = await kita_relay.wait_for(1)
            await outbound._send(gateway, outbound._mail(text="マイナンバーは 6214 9832 0257 です"))
            (notice,) = await kita_lgwan.wait_for(1)
    finally:
        for sink in (shared_lgwan, kita_lgwan, shared_relay, kita_relay):
            await sink.stop()
    assert sent.rcpt_tos == [outbound.PARTNER]
    assert "北市役所からの送信です。" in sent.data.decode("utf-8")  # Kita's own disclaimer
    assert notice.rcpt_tos == [outbound.SENDER]
    assert shared_relay.messages == shared_lgwan.messages == []
    # quarantine list --json names the tenant of each entry.
    assert [entry["tenant"] for entry in outbound._entries(monkeypatch, data_dir)] == [
        "kita",
        "kita",
    ]


async def test_each_tenants_copy_carries_its_own_authserv_id(
    tmp_path: Path, auth_dns: AuthDns
) -> None:
    shared, kita, minami = Sink(), Sink(), Sink()
    for sink in (shared, kita, minami):
        await sink.start()
    data = tenants_config(tmp_path, shared, kita, minami).model_dump()
    data["auth"].update(enabled=True, nameservers=[auth_dns.nameserver])
    data["tenants"][0]["auth"] = {"authserv_id": "mx.city.kita.example.lg.jp"}
    gateway, *_, port = await start(Config.model_validate(data))
    raw = auth_dns.sign(
        MAIL.replace(b"info@bank.example.co.jp", b"info@partner.co.jp"), "partner.co.jp"
    )
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        async with client:
            await client.sendmail("info@partner.co.jp", [KITA, MINAMI], raw)
        (to_kita,) = await kita.wait_for(1)
        (to_minami,) = await minami.wait_for(1)
    finally:
        await gateway.stop()
        for sink in (shared, kita, minami):
            await sink.stop()
    kita_header = to_kita.parsed()["Authentication-Results"]
    minami_header = to_minami.parsed()["Authentication-Results"]
    assert str(kita_header).startswith("mx.city.kita.example.lg.jp; ")
    assert str(minami_header).startswith("gw.test; ")  # the shared one: smtp.hostname
    assert "dkim=pass" in str(kita_header)


async def test_a_reload_applies_a_tenants_rules_and_keeps_its_mta_until_a_restart(
    tmp_path: Path,
) -> None:
    shared, kita, minami = Sink(), Sink(), Sink()
    for sink in (shared, kita, minami):
        await sink.start()
    config = tenants_config(tmp_path, shared, kita, minami)
    gateway, *_ = await start(config)
    try:
        data = config.model_dump()
        data["tenants"][1]["policy"] = {"output": {"subject_tag": "[南町]"}}
        assert gateway.reload(Config.model_validate(data)) == []
        rules = gateway.worker.rules
        assert rules is not None
        (group,) = rules.groups(sender="a@example.com", recipients=[MINAMI], client="")
        assert group.policy.output.subject_tag == "[南町]"
        data["tenants"][1]["relay_port"] = shared.port  # a new MTA: only after a restart
        data["tenants"][1]["policy"] = {"output": {"subject_tag": "[変更]"}}
        assert gateway.reload(Config.model_validate(data)) == ["tenants"]
        (group,) = gateway.worker.rules.groups(  # type: ignore[union-attr]
            sender="a@example.com", recipients=[MINAMI], client=""
        )
        assert group.policy.output.subject_tag == "[南町]"  # the running tenants stay whole
        assert gateway.config.tenants[1].relay_port == minami.port
    finally:
        await gateway.stop()
        for sink in (shared, kita, minami):
            await sink.stop()


async def test_a_released_copy_goes_to_its_tenants_mta_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release is a new copy spooled from the quarantine entry: it keeps the entry's tenant."""
    from tests.e2e import test_release as release

    shared, kita = Sink(), Sink()
    for sink in (shared, kita):
        await sink.start()
    data_dir = tmp_path / "data"
    data = release._config(data_dir, shared.port).model_dump()
    data["tenants"] = [
        {
            "name": "kita",
            "domains": [release.RCPT.rpartition("@")[2]],
            "relay_host": "127.0.0.1",
            "relay_port": kita.port,
        }
    ]
    cli = release.Cli(data_dir, monkeypatch)
    try:
        async with release._gateway(Config.model_validate(data)) as (_, port):
            cli.users()
            raw = release._mail(("見積書.zip", release._encrypted_zip(), "application/zip"))
            ref = await release._held(cli, kita, port, raw)
            code, _, err = cli("alice", "quarantine", "release", ref)
            assert code == 0, err
            (_, released) = await kita.wait_for(2)
    finally:
        for sink in (shared, kita):
            await sink.stop()
    assert release._parsed(released.data)["X-Mukaika-Verdict"] == "deliver"
    assert released.rcpt_tos == [release.RCPT]
    assert shared.messages == []
    assert release._entry(cli)["tenant"] == "kita"
