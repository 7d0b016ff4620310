"""A day of test mail with known counts, for the digests, the statistics and the summary.

NOW is 2026-12-04 08:00 in Tokyo (the digests' default send_at); the day is the 24 hours
before it. Users: rin reads rin@ and the 課 mailbox kacho@, ren reads ren@ and kacho@; nobody
reads someone@.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple

from gateway.configuration.config import Config
from gateway.evidence.quarantine import Quarantine
from gateway.store.users import add_user
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, UserRole, Verdict
from tests.storekit import migrated_store

NOW = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)  # 2026-12-04 08:00 JST
RIN, KACHO, REN, SOMEONE = (
    "rin@city.example.lg.jp",
    "kacho@city.example.lg.jp",
    "ren@city.example.lg.jp",
    "someone@city.example.lg.jp",
)
PUBLIC_URL = "https://mukaika.city.example.lg.jp/"

H, D, A = MessageState.HELD, MessageState.DELIVERED, MessageState.AWAITING_PASSWORD
HOLD, DELIVER, REJECT = Verdict.HOLD, Verdict.DELIVER, Verdict.REJECT
MACRO, EXE, ZIP = Reason.MACRO, Reason.EXECUTABLE, Reason.ENCRYPTED_ARCHIVE


class Sent(NamedTuple):
    name: str
    hours: float  # before NOW
    sender: str
    rcpt: tuple[str, ...]
    verdict: Verdict
    state: MessageState
    reasons: tuple[Reason, ...]
    subject: str


PARTNER, SPAM = "partner@example.com", "spam@example.net"
MAIL: Final = (
    Sent("invoice", 2, "billing@example.co.jp", (RIN,), HOLD, H, (MACRO,), "請求書（12月分）"),
    Sent("delivered", 3, PARTNER, (RIN,), DELIVER, D, (), "打合せ"),
    Sent("stranger", 4, SPAM, (SOMEONE,), HOLD, H, (MACRO,), "ご案内"),
    Sent("ppap", 5, PARTNER, (RIN,), HOLD, A, (ZIP,), "資料送付"),
    Sent(
        "refused", 6, "spam@example.net", (RIN,), REJECT, MessageState.DEAD, (Reason.MALWARE,), "x"
    ),
    Sent("quote", 10, PARTNER, (RIN, KACHO), HOLD, H, (MACRO, EXE), "見積書"),
    Sent("urgent", 20, "unknown@example.net", (KACHO,), HOLD, H, (EXE,), "至急"),
    Sent("old", 30, PARTNER, (RIN,), HOLD, H, (MACRO,), "先週の件"),
)


@dataclass
class Day:
    config: Config
    data_dir: Path
    quarantine: Quarantine
    refs: dict[str, str]

    @property
    def store(self) -> Any:
        return self.quarantine.index.store


def day_config(
    data_dir: Path,
    relay_port: int = 25,
    rules: tuple[dict[str, Any], ...] = (),
    **sections: dict[str, Any],
) -> Config:
    data: dict[str, Any] = {
        "service": {"data_dir": str(data_dir), "display_timezone": "Asia/Tokyo"},
        "delivery": {"relay_host": "127.0.0.1", "relay_port": relay_port, "timeout_seconds": 5},
        "console": {"public_url": PUBLIC_URL, "contact": "情報政策課 内線1234"},
        "digest": {"summary_recipients": ["joho@city.example.lg.jp"]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Config.model_validate(data | {"rules": list(rules)})


@contextlib.contextmanager
def day_of_mail(config: Config, *, users: bool = True, now: datetime = NOW) -> Iterator[Day]:
    """The day's mail (received in the day before ``now``) stored and indexed as the worker
    does, and (``users``) the users."""
    data_dir = Path(config.service.data_dir)
    with (
        migrated_store(data_dir, settings=config.store) as store,
        Quarantine.from_settings(config.quarantine, data_dir, store) as quarantine,
    ):
        if users:
            add_user(store, "rin", UserRole.RECIPIENT, "test", addresses=(RIN, KACHO))
            add_user(store, "ren", UserRole.RECIPIENT, "test", addresses=(REN, KACHO))
            add_user(store, "oto", UserRole.OPERATOR, "test")
            add_user(store, "aki", UserRole.APPROVER, "test")
        refs: dict[str, str] = {}
        for name, hours, sender, rcpt, verdict, state, reasons, subject in MAIL:
            qid = quarantine.store(
                f"Q-{name}",
                f"Subject: {name}\r\n\r\n{name}\r\n".encode(),
                client="192.0.2.1",
                helo="mx.example.com",
                mail_from=sender,
                rcpt_to=list(rcpt),
                received_at=now - timedelta(hours=hours),
            )
            quarantine.record_result(
                qid, Report(verdict=verdict, reasons=list(reasons), subject=subject)
            )
            quarantine.record_delivery(qid, state)
            refs[name] = qid
        yield Day(config, data_dir, quarantine, refs)
