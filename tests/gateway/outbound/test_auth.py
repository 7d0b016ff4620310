"""SMTP AUTH on the outbound listener, over real sockets: no MAIL without a login, a wrong
password refused, the sender must be the user's, AUTH refused before STARTTLS (unless the
loopback exception is on), and guessing locks the user name and then the client address
(a locked login is refused even with the right password)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway.configuration.config import Config
from gateway.console.passwords import check
from gateway.outbound.auth import OutboundLogins
from gateway.outbound.listener import outbound_listener
from gateway.receiving.smtp import Received, SmtpServer
from gateway.store import Store
from gateway.store.users import add_user
from sanitizers.vocabulary import UserRole
from tests.gateway.console.consolekit import PASSWORD, configure_django, hashed
from tests.gateway.receiving.test_smtp import certificate  # noqa: F401 - a fixture
from tests.storekit import migrated_store

YAMADA = "yamada@city.example.lg.jp"
MAIL = b"From: yamada@city.example.lg.jp\r\nTo: partner@example.com\r\nSubject: x\r\n\r\nbody\r\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    configure_django()
    with migrated_store(tmp_path) as store:
        add_user(
            store,
            "yamada",
            UserRole.RECIPIENT,
            "test",
            password_hash=hashed(PASSWORD),
            addresses=(YAMADA,),
        )
        add_user(store, "suzuki", UserRole.RECIPIENT, "test", password_hash=hashed(PASSWORD))
        add_user(store, "nopass", UserRole.RECIPIENT, "test")
        yield store


class Listener:
    def __init__(self, store: Store, **outbound: Any) -> None:
        smtp: dict[str, Any] = {"accept_domains": ["city.example.lg.jp"], "min_free_disk_bytes": 0}
        smtp.update(outbound.pop("smtp", {}))
        settings = {"listen": "127.0.0.1:0", "client_networks": ["127.0.0.0/8"], "auth": True}
        self.config = Config.model_validate({"smtp": smtp, "outbound": settings | outbound})
        self.accepted: list[Received] = []
        self.server: SmtpServer = outbound_listener(
            self.config,
            self.accept,
            lambda: 10**12,
            on_reject=lambda _: None,
            login=OutboundLogins(store, self.config.outbound, check),
        )
        self.port = 0

    async def accept(self, received: Received) -> str:
        self.accepted.append(received)
        return f"Q{len(self.accepted)}"

    def client(self, **options: Any) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname="127.0.0.1", port=self.port, start_tls=False, timeout=30, **options
        )


@pytest.fixture
async def listener(store: Store) -> AsyncIterator[Listener]:
    async with _running(Listener(store)) as running:
        yield running


class _running:
    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    async def __aenter__(self) -> Listener:
        _, self.listener.port = await self.listener.server.start("127.0.0.1", 0)
        return self.listener

    async def __aexit__(self, *_: object) -> None:
        await self.listener.server.close()


async def _login(client: aiosmtplib.SMTP, user: str, password: str) -> int:
    try:
        response = await client.login(user, password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        return exc.code
    return response.code


async def test_no_mail_without_a_login_and_a_wrong_password_is_refused(
    listener: Listener,
) -> None:
    async with listener.client() as client:
        code, _ = await client.execute_command(b"MAIL", b"FROM:<" + YAMADA.encode() + b">")
        assert code == 530
        assert await _login(client, "yamada", "not the password") == 535
        assert await _login(client, "yamada", PASSWORD) == 235
        await client.sendmail(YAMADA, ["partner@example.com"], MAIL)
    assert [r.mail_from for r in listener.accepted] == [YAMADA]


@pytest.mark.parametrize("user", ["nobody", "nopass"])
async def test_unknown_and_password_less_users_are_refused(listener: Listener, user: str) -> None:
    async with listener.client() as client:
        assert await _login(client, user, PASSWORD) == 535


async def test_the_sender_must_be_the_users_own(store: Store, listener: Listener) -> None:
    async with listener.client() as client:
        assert await _login(client, "yamada", PASSWORD) == 235
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail("kacho@city.example.lg.jp")
        assert refused.value.code == 553
        assert "not owned by the authenticated user" in refused.value.message
    async with _running(Listener(store, auth_sender_match=False)) as loose:
        async with loose.client() as client:
            assert await _login(client, "yamada", PASSWORD) == 235
            await client.sendmail("kacho@city.example.lg.jp", ["partner@example.com"], MAIL)
        assert len(loose.accepted) == 1


async def test_auth_only_after_starttls_without_the_loopback_exception(
    store: Store,
    certificate: tuple[Path, Path],  # noqa: F811 - the fixture
) -> None:
    cert, key = certificate
    strict = Listener(
        store,
        auth_loopback_without_tls=False,
        smtp={"tls_cert_file": str(cert), "tls_key_file": str(key)},
    )
    async with _running(strict):
        async with strict.client() as client:
            code, message = await client.execute_command(b"AUTH", b"PLAIN")
            assert code == 538
            assert "Encryption required" in message
        async with strict.client(validate_certs=False) as client:
            await client.starttls()
            assert await _login(client, "yamada", PASSWORD) == 235
            await client.sendmail(YAMADA, ["partner@example.com"], MAIL)
        assert len(strict.accepted) == 1


async def test_guessing_locks_the_user_then_the_address(store: Store) -> None:
    guarded = Listener(store, auth_max_failures=3)
    async with _running(guarded):
        async with guarded.client() as client:
            for _ in range(3):
                assert await _login(client, "yamada", "a guess") == 535
        async with guarded.client() as client:
            # Locked: the right password is refused all the same, with the same answer.
            assert await _login(client, "yamada", PASSWORD) == 535
        async with guarded.client() as client:
            assert await _login(client, "suzuki", PASSWORD) == 235  # another user: not locked
        async with guarded.client() as client:
            # Guesses at many names from one address lock the address (3 x 10 failures).
            for n in range(26):
                assert await _login(client, f"guess{n}", "a guess") == 535
        async with guarded.client() as client:
            assert await _login(client, "suzuki", PASSWORD) == 535
    rows = _limits(store)
    assert rows[("smtp_user", "yamada")] >= 3
    assert rows[("smtp_address", "127.0.0.1")] >= 30


def _limits(store: Store) -> dict[tuple[str, str], int]:
    from sqlalchemy import select

    from gateway.store.schema import login_limits

    with store.reading() as db:
        rows = db.execute(select(login_limits)).mappings()
        return {(row["scope"], row["subject"]): int(row["failures"]) for row in rows}
