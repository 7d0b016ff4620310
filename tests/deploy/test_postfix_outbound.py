"""The outbound layout against Debian's real Postfix (guide section 14): the LGWAN-side MTA
relays mail for outside domains through mukaika's outbound listener (``relayhost``), keeps its
own domain local, and mukaika's notices to a sender come back through it into the sender's
mailbox.

    staff --SMTP--> Postfix (LGWAN side) --relayhost--> mukaika outbound --> smarthost (recording)
                      ^  Maildir of city.example.lg.jp  <-- notices ---------+
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.processing.pool import InlineSanitizer
from gateway.service.assembly import Gateway, Parts
from tests.deploy.mails import free_port
from tests.deploy.postfix_instance import PostfixInstance
from tests.deploy.test_postfix_e2e import postfix_root, running  # noqa: F401 - fixtures
from tests.gateway.relaykit import Sink, make_config

pytestmark = pytest.mark.postfix

DOMAIN = "city.example.lg.jp"
SENDER = f"yamada@{DOMAIN}"
PARTNER = "tantou@partner.example.co.jp"


def _mail(text: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"山田 <{SENDER}>"
    message["To"] = PARTNER
    message["Subject"] = "ご連絡"
    message.set_content(text, charset="utf-8")
    return message.as_bytes()


def _submit(port: int, raw: bytes) -> None:
    """As a staff member's mail client would: to the LGWAN-side Postfix."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(SENDER, [PARTNER], raw)


def _maildir(postfix: PostfixInstance) -> list[email.message.Message]:
    new = postfix.maildir / "new"
    if not new.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(new.iterdir())]


async def _until(predicate: Any, what: str, postfix: PostfixInstance, within: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen; Postfix log:\n{postfix.log()}")
        await asyncio.sleep(0.1)


async def test_lgwan_postfix_relays_outbound_through_mukaika(
    postfix_root: tuple[str, Path],  # noqa: F811 - the fixture
    running: list[Any],  # noqa: F811 - the fixture
) -> None:
    binary, root = postfix_root
    smarthost = await Sink().start()
    outbound_port = free_port()
    postfix = PostfixInstance(
        root,
        free_port(),
        DOMAIN,
        binary,
        main_cf_extra=f"relayhost = [127.0.0.1]:{outbound_port}\nsmtp_tls_security_level = none\n",
    )
    postfix.write_config()
    postfix.start()
    running.append(postfix)
    config = make_config(
        root / "mukaika",
        postfix.port,  # the LGWAN-side MTA: notices to senders go back through it
        smtp={"accept_domains": [DOMAIN]},
        release={"poll_interval_seconds": 0.05},
        outbound={
            "enabled": True,
            "listen": f"127.0.0.1:{outbound_port}",
            "client_networks": ["127.0.0.1/32"],
            "relay_host": "127.0.0.1",
            "relay_port": smarthost.port,
            "tls": "none",
        },
    )
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
            gateway = Gateway(config, Parts(sanitizer=InlineSanitizer(config.policy, executor)))
            await gateway.start()
            try:
                await asyncio.to_thread(_submit, postfix.port, _mail("打ち合わせの件です。"))
                await _until(lambda: len(smarthost.messages) == 1, "delivery", postfix)
                await asyncio.to_thread(_submit, postfix.port, _mail("個人番号 621498320257"))
                await _until(lambda: len(_maildir(postfix)) == 1, "the notice", postfix)
            finally:
                await gateway.stop()
    finally:
        await smarthost.stop()
    (arrived,) = smarthost.messages
    assert arrived.rcpt_tos == [PARTNER]
    assert "打ち合わせの件です。" in arrived.parsed().get_content()
    (notice,) = _maildir(postfix)
    payload = notice.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode("utf-8")
    assert "承認者（上長）の承認を待つ" in text
    assert "個人番号（マイナンバー）を含むため" in text
