"""Delivery to the LGWAN-side MTA with aiosmtplib: pooled connections, per-recipient outcome.

Intent: turn every way a delivery can go into one of three answers per recipient —
delivered, temporary (retry later) or permanent (dead letter and a notice). Anything that is
not a clear 5xx from the relay (timeouts, refused or broken connections, 4xx, TLS trouble)
is temporary: the message stays in the spool. Only sanitized messages reach this module.

Connections are reused (RSET between messages is done by aiosmtplib on errors; a connection
that failed in any other way is dropped) and capped at ``connections``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from gateway.configuration.settings import DeliverySettings

log = logging.getLogger("mukaika.delivery")


@dataclass(slots=True)
class Outcome:
    """What happened to each recipient of one attempt."""

    delivered: list[str] = field(default_factory=list)
    temporary: dict[str, str] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)

    def fail_all(self, recipients: list[str], reply: str, *, permanent: bool) -> Outcome:
        target = self.permanent if permanent else self.temporary
        for rcpt in recipients:
            target[rcpt] = reply
        return self


def _reply(code: int, message: str) -> str:
    text = " ".join(message.split())[:200]
    return f"{code} {text}"


def client_tls_context(settings: DeliverySettings) -> ssl.SSLContext | None:
    if settings.tls == "none":
        return None
    context = ssl.create_default_context(cafile=settings.tls_ca_file or None)
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Deliverer:
    """Sends messages to one relay over a small pool of reusable connections."""

    def __init__(
        self,
        settings: DeliverySettings,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.settings = settings
        self.host = host or settings.relay_host
        self.port = port or settings.relay_port
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.connections)
        self._tls = client_tls_context(settings)

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=s.timeout_seconds,
            use_tls=s.tls == "tls",
            # None: STARTTLS when the server offers it (opportunistic).
            start_tls=None if s.tls == "opportunistic" else s.tls == "starttls",
            validate_certs=s.tls_verify,
            tls_context=self._tls,
            local_hostname=s.helo_name or None,
        )

    async def _client(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        client = self._new_client()
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return client

    async def deliver(self, sender: str, recipients: list[str], message: bytes) -> Outcome:
        outcome = Outcome()
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._client()
                addresses = [sender, *recipients]
                options = [] if all(a.isascii() for a in addresses) else ["SMTPUTF8"]
                errors, _ = await client.sendmail(sender, recipients, message, mail_options=options)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                for refused in exc.recipients:
                    target = outcome.permanent if refused.code >= 500 else outcome.temporary
                    target[refused.recipient] = _reply(refused.code, refused.message)
                self._release(client)
                return outcome
            except (aiosmtplib.SMTPConnectResponseError, aiosmtplib.SMTPHeloError) as exc:
                # The relay refused the session, not this message: try again later.
                self._drop(client)
                return outcome.fail_all(recipients, _reply(exc.code, exc.message), permanent=False)
            except aiosmtplib.SMTPResponseException as exc:
                self._release(client)
                return outcome.fail_all(
                    recipients, _reply(exc.code, exc.message), permanent=exc.code >= 500
                )
            except aiosmtplib.SMTPNotSupported as exc:
                self._release(client)
                return outcome.fail_all(recipients, f"554 {exc}", permanent=True)
            except ValueError as exc:
                # aiosmtplib refused an address it could not send safely.
                self._release(client)
                return outcome.fail_all(recipients, f"553 5.1.3 {exc}", permanent=True)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                self._drop(client)
                reason = f"4.4.1 {type(exc).__name__}: {exc}"[:200]
                return outcome.fail_all(recipients, reason, permanent=False)
            except BaseException:
                self._drop(client)
                raise
            for rcpt in recipients:
                error = errors.get(rcpt)
                if error is None:
                    outcome.delivered.append(rcpt)
                elif error.code >= 500:
                    outcome.permanent[rcpt] = _reply(error.code, error.message)
                else:
                    outcome.temporary[rcpt] = _reply(error.code, error.message)
            self._release(client)
            return outcome

    def _release(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            self._idle.append(client)

    def _drop(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None:
            client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


async def send_once(
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    message: bytes,
    timeout_seconds: float,
) -> None:
    """One message over one new connection (delivery-status notices); raises on failure.
    ``sender`` may be "" (the null reverse-path notices must use)."""
    client = aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout_seconds, start_tls=False)
    async with client:
        await client.sendmail(sender, recipients, message)


class Unrouted(Deliverer):
    """The place of a mail whose tenant is not configured (any more): every attempt fails
    temporarily, so the mail waits in the queue, is reported, and never reaches another
    tenant's MTA."""

    def __init__(self, settings: DeliverySettings, tenant: str) -> None:
        super().__init__(settings)
        self.host, self.port = f"(no MTA for tenant {tenant!r})", 0
        self.tenant = tenant

    async def deliver(self, sender: str, recipients: list[str], message: bytes) -> Outcome:
        reply = f"451 4.3.0 tenant {self.tenant!r} is not configured: not delivered"
        return Outcome().fail_all(recipients, reply, permanent=False)
