"""The daily mails: a digest per recipient address of the mail held for it, and the operators'
summary of the log review; built here, sent by ``mukaika digest send`` or serve's daily job.

Digest: for each address of an enabled console user (several users may share one, such as a
課 mailbox), the mail to that address received in the day before the run that is still waiting
(held, awaiting a password, requested, denied), newest first, at most ``digest.max_entries``.
Each entry carries a signed link (:func:`gateway.processing.unlock_links.digest_links`: the
reference, that address, an expiry) to the console's digest page. The link only opens a page:
its GET changes nothing, so a mail scanner that follows it releases nothing; the page asks for
a sign-in, then lets through only a user who reads mail for that address; asking for a release
is a POST with Django's CSRF token on the message page. A digest forwarded to someone else is
worth nothing to them once they sign in as themselves.

Summary: the figures of the statistics page (:mod:`.statistics`) for the same day, to
``digest.summary_recipients``.

Every mail goes through the LGWAN-side MTA (``delivery.relay_host``; a tenant's recipient
through that tenant's ``relay_host``) from the gateway's notice
sender with the null reverse-path, one connection per mail; a mail that cannot be sent is
logged, counted in the run's audit line (event ``digest``) and not retried until the next day.
Values from mail are the index's cleaned ones and go into the text body only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Final
from zoneinfo import ZoneInfo

from gateway.configuration.config import Config, tenants_of
from gateway.delivery.client import send_once
from gateway.evidence.ports import AuditPort
from gateway.evidence.quarantine import QuarantineEntry
from gateway.evidence.quarantine.index import MailFilter, QuarantineIndex
from gateway.processing.unlock_links import UnlockLinks
from gateway.service.decision_notices import shown_time
from gateway.service.statistics import WAITING, Statistics, summary_text
from gateway.store import Store
from gateway.store.users import enabled_addresses
from sanitizers.vocabulary import AuditEvent, MessageState, Reason, label

log = logging.getLogger("mukaika.digest")

# A digest covers the day before the run.
PERIOD: Final = timedelta(days=1)
DIGEST_SUBJECT: Final = "保留メールのお知らせ"
SUMMARY_SUBJECT: Final = "メール無害化の日次集計"
_REASONS: Final = frozenset(str(reason) for reason in Reason)
_STATES: Final = frozenset(str(state) for state in MessageState)


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail to send: its recipients and its bytes."""

    to: tuple[str, ...]
    subject: str
    text: str
    message: bytes


def _mail(to: Sequence[str], subject: str, text: str, from_address: str, now: datetime) -> Mail:
    message = EmailMessage(policy=SMTP)
    message["From"] = from_address
    message["To"] = ", ".join(to) if all(a.isascii() for a in to) else "undisclosed-recipients:;"
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid()
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, charset="utf-8")
    return Mail(tuple(to), subject, text, message.as_bytes())


def _reasons(entry: QuarantineEntry) -> str:
    shown = [label(Reason(r), "ja") for r in entry.reasons if r in _REASONS]
    return "、".join(shown) or "—"


def _state(entry: QuarantineEntry) -> str:
    return label(MessageState(entry.state), "ja") if entry.state in _STATES else entry.state


def digest_text(
    address: str,
    entries: Sequence[QuarantineEntry],
    more: bool,
    *,
    links: UnlockLinks,
    config: Config,
    since: datetime,
    until: datetime,
) -> str:
    """The Japanese text of one address's digest."""
    zone = config.service.display_timezone
    expires = shown_time(until + timedelta(seconds=links.lifetime_seconds), zone)
    lines = [
        f"{address} 宛てのメールのうち、{shown_time(since, zone)} から "
        f"{shown_time(until, zone)} までに受け付けた次の {len(entries)} 通が保留されています。",
        "確認して必要なものは、リンク先の画面でサインインのうえ、理由を添えて受信の許可を申請してください。",
        "リンクを開いただけでは、メールは配送されません。",
        f"リンクの有効期限：{expires}（{address} のメールを読む利用者だけが使えます）",
        "",
    ]
    for number, entry in enumerate(entries, 1):
        lines += [
            f"{number}. 件名：{entry.subject or '（なし）'}",
            f"   差出人：{entry.mail_from or '<>'}",
            f"   受付日時：{shown_time(entry.received_at, zone)}",
            f"   状態：{_state(entry)}",
            f"   理由：{_reasons(entry)}",
            f"   確認：{links.sign(entry.id, address)[0]}",
            "",
        ]
    if more:
        lines += [
            f"ほかにも保留されたメールがあります（{len(entries)} 通まで表示）。"
            "コンソールの一覧で確認してください。",
            "",
        ]
    lines.append(f"問い合わせ先：{config.console.contact or '情報システム担当'}")
    return "\n".join(lines) + "\n"


class Digests:
    """Builds and sends the day's digests and summary of one installation."""

    def __init__(
        self,
        config: Config,
        store: Store,
        links: UnlockLinks,
        audit: AuditPort,
        from_address: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.links = links
        self.audit = audit
        self.from_address = from_address
        self.clock = clock
        self.index = QuarantineIndex(store)

    def build(self) -> list[Mail]:
        """The digests (addresses with held mail only, sorted) and the summary of the day
        before now."""
        until = self.clock()
        since = until - PERIOD
        settings = self.config.digest
        addresses = enabled_addresses(self.store, settings.max_recipients + 1)
        if len(addresses) > settings.max_recipients:
            log.warning(
                "digest: more addresses than digest.max_recipients (%d): the rest get none",
                settings.max_recipients,
            )
        mails: list[Mail] = []
        for address in addresses[: settings.max_recipients]:
            found = self.index.search(
                MailFilter(states=WAITING, since=since, until=until, recipients=(address,)),
                limit=settings.max_entries + 1,
            )
            if not found:
                continue
            text = digest_text(
                address,
                found[: settings.max_entries],
                len(found) > settings.max_entries,
                links=self.links,
                config=self.config,
                since=since,
                until=until,
            )
            subject = f"[mukaika] {DIGEST_SUBJECT}（{len(found[: settings.max_entries])}通）"
            mails.append(_mail((address,), subject, text, self.from_address, until))
        if settings.summary_recipients:
            review = Statistics(self.config, self.store).review(since, until, now=until)
            text = summary_text(review, self.config)
            subject = f"[mukaika] {SUMMARY_SUBJECT}"
            mails.append(
                _mail(settings.summary_recipients, subject, text, self.from_address, until)
            )
        return mails

    async def send(self, mails: Sequence[Mail], actor: str) -> tuple[int, int]:
        """Send ``mails``; (sent, failed). One audit line for the run, by ``actor``."""
        delivery = self.config.delivery
        tenants = tenants_of(self.config)
        sent = failed = 0
        for mail in mails:
            # Each recipient through their own tenant's MTA (the shared one without a tenant).
            routes: dict[tuple[str, int], list[str]] = {}
            for address in mail.to:
                relay = tenants.relay(tenants.tenant_of(address))
                routes.setdefault(relay or (delivery.relay_host, delivery.relay_port), []).append(
                    address
                )
            try:
                for (host, port), recipients in routes.items():
                    await send_once(
                        host, port, "", recipients, mail.message, delivery.timeout_seconds
                    )
            except Exception as exc:  # noqa: BLE001 - any failure is logged and counted
                log.warning("digest to %s failed: %s", ", ".join(mail.to), exc)
                failed += 1
            else:
                sent += 1
        self.audit.write(
            {
                "event": AuditEvent.DIGEST,
                "actor": actor,
                "count": sent,
                "outcome": f"sent {sent}, failed {failed}",
            }
        )
        return sent, failed


def next_run(config: Config, now: datetime) -> datetime:
    """The next moment after ``now`` at ``digest.send_at`` in the display time zone."""
    zone = ZoneInfo(config.service.display_timezone) if config.service.display_timezone else None
    local = now.astimezone(zone)
    hour, minute = config.digest.send_hour_minute
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due <= local:
        due = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return due.astimezone(UTC)


async def always() -> bool:
    return True


class DailyDigests:
    """serve's job: the digests and the summary once a day at ``digest.send_at``.

    ``held`` is asked before each round whether this node runs it (a job that must run once
    per cluster); :meth:`round` is the one place a round happens."""

    # The longest sleep between looks at the clock (a clock set forward is noticed).
    LOOK_SECONDS: Final = 300.0

    def __init__(self, digests: Digests, held: Callable[[], Awaitable[bool]] = always) -> None:
        self.digests = digests
        self.held = held

    async def run_forever(self) -> None:
        due = next_run(self.digests.config, self.digests.clock())
        while True:
            now = self.digests.clock()
            if now < due:
                await asyncio.sleep(min((due - now).total_seconds(), self.LOOK_SECONDS))
                continue
            try:
                await self.round()
            except Exception:
                log.exception("digest: the daily round failed")
            due = next_run(self.digests.config, self.digests.clock())

    async def round(self) -> tuple[int, int]:
        """One day's digests and summary, if this node runs the job; (sent, failed)."""
        if not await self.held():
            return 0, 0
        mails = await asyncio.to_thread(self.digests.build)
        return await self.digests.send(mails, "serve")
