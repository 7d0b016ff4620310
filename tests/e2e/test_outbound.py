"""The outbound direction end to end on real sockets: the outbound listener, the checks, the
store's approval workflow through the commands, a recording smarthost (the prefecture's
security cloud) and a recording LGWAN-side MTA (where the sender's notices arrive).

The console's approval page is the console issue's: here the approver decides with the
command line, which calls the same service functions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage, Message
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config
from gateway.processing.pool import InlineSanitizer
from gateway.service.assembly import Gateway, Parts
from tests.clamd import EICAR
from tests.gateway.relaykit import Sink, make_config
from tests.sanitizers.document_fixtures import xlsx

DOMAIN = "city.example.lg.jp"
SENDER = f"yamada@{DOMAIN}"
APPROVER = f"kacho@{DOMAIN}"
PARTNER = "tantou@partner.example.co.jp"
NUMBERS = [621498320257, 123456789018]


@pytest.fixture
async def lgwan() -> AsyncIterator[Sink]:
    sink = await Sink().start()
    yield sink
    await sink.stop()


@pytest.fixture
async def smarthost() -> AsyncIterator[Sink]:
    sink = await Sink().start()
    yield sink
    await sink.stop()


def _config(data_dir: Path, lgwan: Sink, smarthost: Sink, **outbound: Any) -> Config:
    settings: dict[str, Any] = {
        "enabled": True,
        "listen": "127.0.0.1:0",
        "client_networks": ["127.0.0.0/8"],
        "relay_host": "127.0.0.1",
        "relay_port": smarthost.port,
        "tls": "none",
        "bcc_threshold": 10,
        "groups": [{"name": "総務課", "senders": [DOMAIN], "approvers": [APPROVER]}],
    }
    settings.update(outbound)
    policy = settings.pop("policy", {})
    scanner = settings.pop("scanner", {})
    base = make_config(
        data_dir,
        lgwan.port,
        smtp={"accept_domains": [DOMAIN]},
        release={"poll_interval_seconds": 0.05},
        outbound=settings,
    ).model_dump(mode="python")
    base["policy"].setdefault("outbound", {}).update(policy)
    base["scanner"].update(scanner)
    return Config.model_validate(base)


@contextlib.asynccontextmanager
async def _gateway(config: Config) -> AsyncIterator[Gateway]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        gateway = Gateway(config, Parts(sanitizer=InlineSanitizer(config.policy, executor)))
        try:
            await gateway.start()
            yield gateway
        finally:
            await gateway.stop()


@contextlib.contextmanager
def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setenv("SUDO_USER", user)
        patch.setenv("SUDO_UID", "4242")
        yield


# The part of the configuration the commands need: who approves whose mail.
GROUPS_TOML = f"""
[[outbound.groups]]
name = "総務課"
senders = ["{DOMAIN}"]
approvers = ["{APPROVER}"]
"""


def _cli(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    user: str,
    *argv: str,
    groups: str = GROUPS_TOML,
) -> tuple[int, str, str]:
    config = data_dir.parent / "mukaika.toml"
    config.write_text(groups, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with _as(monkeypatch, user), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--data-dir", str(data_dir), "--config", str(config)])
    return code, out.getvalue(), err.getvalue()


def _mail(
    *,
    to: list[str] | None = None,
    text: str = "資料をお送りします。",
    files: tuple[tuple[str, bytes], ...] = (),
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = f"山田 <{SENDER}>"
    message["To"] = ", ".join(to or [PARTNER])
    message["Subject"] = "名簿の送付"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text, charset="utf-8")
    for name, data in files:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


async def _send(gateway: Gateway, raw: bytes, recipients: list[str] | None = None) -> str:
    """Hand ``raw`` to the outbound listener as the LGWAN-side MTA would; its queue id."""
    assert gateway.outbound_address is not None
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=gateway.outbound_address[1], start_tls=False, timeout=10
    )
    async with client:
        _, reply = await client.sendmail(SENDER, recipients or [PARTNER], raw)
    return reply.rsplit(" ", 1)[-1]


async def _until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _entries(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> list[dict[str, Any]]:
    code, out, err = _cli(monkeypatch, data_dir, "root", "quarantine", "list", "--json")
    assert code == ExitCode.OK, err
    return [json.loads(line) for line in out.splitlines()]


def _text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def _notices(lgwan: Sink) -> list[Message]:
    return [email.message_from_bytes(m.data) for m in lgwan.messages]


def _audit(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "audit" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def test_my_numbers_are_held_approved_by_the_group_approver_and_arrive(
    tmp_path: Path, lgwan: Sink, smarthost: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    sheet = xlsx([["氏名", "個人番号"], *[[f"住民{i}", n] for i, n in enumerate(NUMBERS)]])
    raw = _mail(files=(("名簿.xlsx", sheet),))
    async with _gateway(_config(data_dir, lgwan, smarthost)) as gateway:
        for name in (APPROVER, "tanin@city.example.lg.jp"):
            code, _, err = _cli(
                monkeypatch,
                data_dir,
                "root",
                "user",
                "add",
                name,
                "--role",
                "approver",
                "--no-password",
            )
            assert code == ExitCode.OK, err
        await _send(gateway, raw)
        await _until(
            lambda: any(e["state"] == "release_requested" for e in _entries(monkeypatch, data_dir))
        )
        ref = _entries(monkeypatch, data_dir)[0]["id"]
        await lgwan.wait_for(1)
        held = _notices(lgwan)[0]
        assert lgwan.messages[0].rcpt_tos == [SENDER]
        assert "承認者（上長）の承認を待つ" in _text(held)
        assert "個人番号（マイナンバー）を含むため" in _text(held)
        assert ref in _text(held)
        assert smarthost.messages == []
        # An approver outside the sender's group may not decide.
        code, _, err = _cli(
            monkeypatch, data_dir, "tanin@city.example.lg.jp", "quarantine", "approve", ref
        )
        assert code == ExitCode.DENIED, err
        code, _, err = _cli(monkeypatch, data_dir, APPROVER, "quarantine", "approve", ref)
        assert code == ExitCode.OK, err
        arrived = await smarthost.wait_for(1)
        await lgwan.wait_for(2)
    assert arrived[0].rcpt_tos == [PARTNER]
    assert arrived[0].mail_from == SENDER
    assert arrived[0].data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")  # as written
    assert "承認者が送信を承認" in _text(_notices(lgwan)[1])
    lines = _audit(data_dir)
    held_line = next(line for line in lines if line.get("state") == "held")
    assert held_line["direction"] == "outbound"
    assert held_line["reasons"] == ["personal_number"]
    assert "621498320257" not in json.dumps(lines)
    assert any(line.get("event") == "approval" and line.get("actor") == APPROVER for line in lines)
    delivered = [line for line in lines if line.get("state") == "delivered"]
    assert delivered
    assert delivered[0]["direction"] == "outbound"


async def test_rejected_mail_never_arrives_and_its_sender_is_told(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    config = _config(data_dir, lgwan, smarthost, policy={"personal_number": "reject"})
    async with _gateway(config) as gateway:
        await _send(gateway, _mail(text="マイナンバーは 6214 9832 0257 です"))
        await lgwan.wait_for(1)
        await _until(lambda: bool(gateway.spool.ids("dead")))
    assert smarthost.messages == []
    notice = _text(_notices(lgwan)[0])
    assert "送信の規則により送信されませんでした" in notice
    assert "個人番号（マイナンバー）を含むため" in notice
    assert "6214" not in notice  # the number is never repeated


async def test_automatic_forwarding_to_the_outside_is_refused(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    async with _gateway(_config(data_dir, lgwan, smarthost)) as gateway:
        await _send(gateway, _mail(headers={"Auto-Submitted": "auto-forwarded"}))
        await lgwan.wait_for(1)
    assert smarthost.messages == []
    assert "外部への自動転送のため" in _text(_notices(lgwan)[0])


async def test_the_sender_cancels_during_the_delay(
    tmp_path: Path, lgwan: Sink, smarthost: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    async with _gateway(_config(data_dir, lgwan, smarthost, delay_seconds=600)) as gateway:
        queue_id = await _send(gateway, _mail())
        # The command waits for serve's answer: it runs beside the service's event loop.
        code, _, err = await asyncio.to_thread(
            _cli, monkeypatch, data_dir, "root", "outbound", "cancel", queue_id, "--sender", PARTNER
        )
        assert code == ExitCode.DENIED, err  # not that sender's mail
        code, out, err = await asyncio.to_thread(
            _cli, monkeypatch, data_dir, "root", "outbound", "cancel", queue_id, "--sender", SENDER
        )
        assert code == ExitCode.OK, err
        assert "送信を取り消しました" in out
        await lgwan.wait_for(1)
        code, _, err = await asyncio.to_thread(
            _cli, monkeypatch, data_dir, "root", "outbound", "cancel", queue_id, "--sender", SENDER
        )
        assert code == ExitCode.NOT_FOUND, err
        assert gateway.spool.ids("dead") == [queue_id]
    assert smarthost.messages == []
    assert "送信を取り消しました" in _text(_notices(lgwan)[0])


async def test_twenty_outside_recipients_in_to_arrive_as_bcc(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    outside = [f"user{i}@partner{i % 3}.example.com" for i in range(20)]
    recipients = [*outside, APPROVER]
    async with _gateway(_config(data_dir, lgwan, smarthost)) as gateway:
        await _send(gateway, _mail(to=recipients), recipients)
        arrived = await smarthost.wait_for(1)
    assert sorted(arrived[0].rcpt_tos) == sorted(recipients)  # the envelope keeps them all
    headers = email.message_from_bytes(arrived[0].data)
    assert headers["To"] == APPROVER  # the internal one stays
    (line,) = [line for line in _audit(data_dir) if line.get("state") == "delivered"]
    assert line["conversion"]["bcc_converted"] == 20
    assert not any(address in arrived[0].data.decode() for address in outside)


async def test_only_outside_recipients_become_undisclosed(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    outside = [f"user{i}@example.com" for i in range(12)]
    async with _gateway(_config(data_dir, lgwan, smarthost)) as gateway:
        await _send(gateway, _mail(to=outside), outside)
        arrived = await smarthost.wait_for(1)
    assert email.message_from_bytes(arrived[0].data)["To"] == "undisclosed-recipients:;"


@pytest.mark.clamd
async def test_a_virus_test_file_outbound_is_refused(
    tmp_path: Path, lgwan: Sink, smarthost: Sink, clamd_socket: Path
) -> None:
    data_dir = tmp_path / "data"
    config = _config(
        data_dir,
        lgwan,
        smarthost,
        scanner={"enabled": True, "address": f"unix:{clamd_socket}"},
    )
    async with _gateway(config) as gateway:
        await _send(gateway, _mail(files=(("test.com", EICAR),)))
        await lgwan.wait_for(1)
        await _until(lambda: bool(gateway.spool.ids("dead")))
    assert smarthost.messages == []
    assert "malware" in json.dumps(_audit(data_dir))


async def test_clamd_unreachable_defers_outbound_mail(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    config = _config(
        data_dir,
        lgwan,
        smarthost,
        scanner={"enabled": True, "address": f"unix:{tmp_path}/no-clamd.sock"},
    )
    async with _gateway(config) as gateway:
        queue_id = await _send(gateway, _mail(files=(("a.txt", b"hello"),)))
        await _until(lambda: "temporary" in gateway.spool.envelope("incoming", queue_id).last_error)
    assert smarthost.messages == []


async def test_no_open_relay_on_either_listener(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    config = _config(data_dir, lgwan, smarthost, client_networks=["192.0.2.0/24"])
    async with _gateway(config) as gateway:
        assert gateway.address is not None
        assert gateway.outbound_address is not None
        for port in (gateway.address[1], gateway.outbound_address[1]):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
            async with client:
                await client.mail("someone@outside.example.net")
                with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                    await client.rcpt("victim@elsewhere.example.org")
                assert refused.value.code == 554
    assert smarthost.messages == []
    assert lgwan.messages == []


async def test_nobody_decides_in_time_so_it_is_refused_with_a_notice(
    tmp_path: Path, lgwan: Sink, smarthost: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    config = _config(data_dir, lgwan, smarthost, approval_expiry_seconds=0.5)
    async with _gateway(config) as gateway:
        await _send(gateway, _mail(text="個人番号 621498320257"))
        await lgwan.wait_for(2, within=30)
        await _until(lambda: _entries(monkeypatch, data_dir)[0]["state"] == "denied")
        ref = _entries(monkeypatch, data_dir)[0]["id"]
        # A refused outbound mail is never released inward (sanitized, to the LGWAN side).
        code, _, err = _cli(
            monkeypatch,
            data_dir,
            "root",
            "user",
            "add",
            "ops",
            "--role",
            "operator",
            "--no-password",
        )
        assert code == ExitCode.OK, err
        code, _, err = _cli(monkeypatch, data_dir, "ops", "quarantine", "release", ref)
        assert code == ExitCode.WRONG_STATE, err
    assert smarthost.messages == []
    assert "承認者により送信が認められませんでした" in _text(_notices(lgwan)[1])


async def test_a_mailbox_that_sends_too_much_is_held(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    data_dir = tmp_path / "data"
    config = _config(data_dir, lgwan, smarthost, max_per_sender_per_hour=1)
    async with _gateway(config) as gateway:
        await _send(gateway, _mail())
        await smarthost.wait_for(1)
        await _send(gateway, _mail())
        await lgwan.wait_for(1)
        exposition = gateway.metrics.render().decode()  # type: ignore[attr-defined]
    assert len(smarthost.messages) == 1
    assert "送信数が上限を超えたため" in _text(_notices(lgwan)[0])
    assert 'mukaika_outbound_rate_limited_total{scope="sender"} 1.0' in exposition


async def test_required_tls_domains_wait_for_a_relay_that_offers_starttls(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    """The recording smarthost offers no STARTTLS: mail to a domain that requires TLS is
    deferred (never sent in clear), mail to others leaves (tls = "opportunistic")."""
    data_dir = tmp_path / "data"
    config = _config(
        data_dir,
        lgwan,
        smarthost,
        tls="opportunistic",
        require_tls_domains=["secure.example.jp"],
    )
    async with _gateway(config) as gateway:
        secure_id = await _send(gateway, _mail(to=["a@secure.example.jp"]), ["a@secure.example.jp"])
        await _send(gateway, _mail())
        await smarthost.wait_for(1)
        await _until(lambda: gateway.spool.find(secure_id) == "outgoing")
        await _until(lambda: gateway.spool.envelope("outgoing", secure_id).attempts >= 1)
        assert "STARTTLS" in gateway.spool.envelope("outgoing", secure_id).last_error
    assert [m.rcpt_tos for m in smarthost.messages] == [[PARTNER]]


def test_outbound_auth_without_the_password_hasher_does_not_start(
    tmp_path: Path, lgwan: Sink, smarthost: Sink
) -> None:
    config = _config(tmp_path / "data", lgwan, smarthost, auth=True)
    with pytest.raises(RuntimeError, match="password hasher"):
        Gateway(config, Parts())


async def test_two_of_two_approvers_from_the_command_line(
    tmp_path: Path, lgwan: Sink, smarthost: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    second = f"bucho@{DOMAIN}"
    group = {"name": "総務課", "senders": [DOMAIN], "approvers": [APPROVER, second]}
    groups = (
        GROUPS_TOML.replace(
            f'approvers = ["{APPROVER}"]', f'approvers = ["{APPROVER}", "{second}"]'
        )
        + "approvals_required = 2\n"
    )
    config = _config(data_dir, lgwan, smarthost, groups=[group | {"approvals_required": 2}])
    async with _gateway(config) as gateway:
        for name in (APPROVER, second):
            code, _, err = _cli(
                monkeypatch,
                data_dir,
                "root",
                "user",
                "add",
                name,
                "--role",
                "approver",
                "--no-password",
                groups=groups,
            )
            assert code == ExitCode.OK, err
        await _send(gateway, _mail(text="マイナンバーは 6214 9832 0257 です"))
        await _until(
            lambda: any(e["state"] == "release_requested" for e in _entries(monkeypatch, data_dir))
        )
        ref = _entries(monkeypatch, data_dir)[0]["id"]
        code, out, err = _cli(
            monkeypatch, data_dir, APPROVER, "quarantine", "approve", ref, groups=groups
        )
        assert code == ExitCode.OK, err
        assert "waits for the other approvers" in out
        code, _, err = _cli(
            monkeypatch, data_dir, APPROVER, "quarantine", "approve", ref, groups=groups
        )
        assert code != ExitCode.OK  # never twice by the same approver
        assert "approved this mail already" in err
        assert smarthost.messages == []
        code, out, err = _cli(
            monkeypatch, data_dir, second, "quarantine", "approve", ref, groups=groups
        )
        assert code == ExitCode.OK, err
        assert "serve carries it out" in out
        arrived = await smarthost.wait_for(1)
    assert arrived[0].rcpt_tos == [PARTNER]
    counts = [
        (line["actor"], line["approvals"])
        for line in _audit(data_dir)
        if line.get("event") == "approval"
    ]
    assert counts == [(APPROVER, 1), (second, 2)]
