"""The daily digests of a day of test mail with known counts: one per address with held mail of
that day (shared mailboxes included), exact Japanese text, links signed for that address that
verify (and expire), the summary to the operators, sent through the LGWAN-side MTA; the serve
job's schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.configuration.config import Config
from gateway.processing.unlock_links import (
    LinkRefusal,
    LinkRefused,
    UnlockLinks,
    digest_links,
)
from gateway.service.digests import DailyDigests, Digests, Mail, next_run
from gateway.store import Store
from gateway.store.singleton import DIGEST_JOB, SingletonLocks
from tests.gateway.relaykit import FakeAudit, Sink
from tests.gateway.service.daykit import KACHO, NOW, PUBLIC_URL, RIN, Day, day_config, day_of_mail

KEY = "digest-test-key-0123456789abcdef0123456789abcdef"
FROM = "mukaika-notice@city.example.lg.jp"


@pytest.fixture
def day(tmp_path: Path) -> Iterator[Day]:
    with day_of_mail(day_config(tmp_path / "data")) as built:
        yield built


def _links(day: Day, clock: float | None = None) -> UnlockLinks:
    moment = NOW.timestamp() if clock is None else clock
    return digest_links(KEY, PUBLIC_URL, day.config.digest.link_lifetime_seconds, lambda: moment)


def _digests(day: Day, config: Config | None = None) -> Digests:
    return Digests(config or day.config, day.store, _links(day), FakeAudit(), FROM, lambda: NOW)


def _by_address(mails: list[Mail]) -> dict[str, Mail]:
    return {", ".join(mail.to): mail for mail in mails}


def test_one_digest_per_address_with_held_mail_of_the_day(day: Day) -> None:
    mails = _by_address(_digests(day).build())
    assert sorted(mails) == ["joho@city.example.lg.jp", KACHO, RIN]
    assert mails[RIN].subject == "[mukaika] 保留メールのお知らせ（3通）"
    assert mails[KACHO].subject == "[mukaika] 保留メールのお知らせ（2通）"
    rin = mails[RIN].text
    assert rin.count(f"{PUBLIC_URL}digest/") == 3
    subjects = [line for line in rin.splitlines() if ". 件名：" in line]
    assert subjects == ["1. 件名：請求書（12月分）", "2. 件名：資料送付", "3. 件名：見積書"]


def test_the_digest_text_is_exact(day: Day) -> None:
    text = _by_address(_digests(day).build())[KACHO].text
    lines = text.splitlines()
    assert lines[:5] == [
        f"{KACHO} 宛てのメールのうち、2026-12-03 08:00 JST から 2026-12-04 08:00 JST までに"
        "受け付けた次の 2 通が保留されています。",
        "確認して必要なものは、リンク先の画面でサインインのうえ、理由を添えて受信の許可を申請してください。",
        "リンクを開いただけでは、メールは配送されません。",
        f"リンクの有効期限：2026-12-07 08:00 JST（{KACHO} のメールを読む利用者だけが使えます）",
        "",
    ]
    assert lines[5:11] == [
        "1. 件名：見積書",
        "   差出人：partner@example.com",
        "   受付日時：2026-12-03 22:00 JST",
        "   状態：保留（宛先には通知のみ）",
        "   理由：実行ファイルまたはスクリプトのため、マクロを含むため",
        lines[10],
    ]
    assert lines[10].startswith(f"   確認：{PUBLIC_URL}digest/")
    assert lines[-1] == "問い合わせ先：情報政策課 内線1234"


def test_each_link_names_its_message_and_the_digests_address(day: Day) -> None:
    text = _by_address(_digests(day).build())[KACHO].text
    links = [line.split("確認：", 1)[1] for line in text.splitlines() if "確認：" in line]
    claims = [_links(day).verify(link.rsplit("/", 1)[1]) for link in links]
    assert [(c.reference, c.recipient) for c in claims] == [
        (day.refs["quote"], KACHO),
        (day.refs["urgent"], KACHO),
    ]
    token = links[0].rsplit("/", 1)[1]
    # Not a PPAP link, and worthless once expired.
    with pytest.raises(LinkRefused):
        UnlockLinks(KEY, PUBLIC_URL, 3600, lambda: NOW.timestamp()).verify(token)
    later = (NOW + timedelta(days=3, seconds=1)).timestamp()
    with pytest.raises(LinkRefused) as refused:
        _links(day, later).verify(token)
    assert refused.value.reason is LinkRefusal.EXPIRED


def test_a_long_day_is_cut_at_max_entries_and_says_so(day: Day) -> None:
    config = day.config.model_copy(
        update={"digest": day.config.digest.model_copy(update={"max_entries": 2})}
    )
    rin = _by_address(_digests(day, config).build())[RIN]
    assert rin.subject == "[mukaika] 保留メールのお知らせ（2通）"
    assert (
        "ほかにも保留されたメールがあります（2 通まで表示）。コンソールの一覧で確認してください。"
        in (rin.text.splitlines())
    )


def test_no_summary_without_summary_recipients(day: Day) -> None:
    config = day.config.model_copy(
        update={"digest": day.config.digest.model_copy(update={"summary_recipients": ()})}
    )
    assert sorted(_by_address(_digests(day, config).build())) == [KACHO, RIN]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    relay = await Sink().start()
    yield relay
    await relay.stop()


async def test_the_round_sends_each_mail_through_the_lgwan_mta(day: Day, sink: Sink) -> None:
    config = day_config(day.data_dir, sink.port)
    audit = FakeAudit()
    digests = Digests(config, day.store, _links(day), audit, FROM, lambda: NOW)
    assert await DailyDigests(digests).round() == (3, 0)
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [
        "joho@city.example.lg.jp",
        KACHO,
        RIN,
    ]
    assert {m.mail_from for m in sink.messages} == {"<>"}
    assert [(r["event"], r["outcome"]) for r in audit.records] == [("digest", "sent 3, failed 0")]


async def test_a_node_that_does_not_hold_the_job_sends_nothing(day: Day, sink: Sink) -> None:
    async def not_ours() -> bool:
        return False

    digests = Digests(
        day_config(day.data_dir, sink.port), day.store, _links(day), FakeAudit(), FROM
    )
    assert await DailyDigests(digests, held=not_ours).round() == (0, 0)
    assert sink.messages == []


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (datetime(2026, 12, 3, 22, 59, tzinfo=UTC), datetime(2026, 12, 3, 23, 0, tzinfo=UTC)),
        (datetime(2026, 12, 3, 23, 0, tzinfo=UTC), datetime(2026, 12, 4, 23, 0, tzinfo=UTC)),
        (datetime(2026, 12, 4, 1, 0, tzinfo=UTC), datetime(2026, 12, 4, 23, 0, tzinfo=UTC)),
    ],
)
def test_the_job_runs_at_send_at_in_the_display_time_zone(
    day: Day, now: datetime, due: datetime
) -> None:
    assert next_run(day.config, now) == due


def test_send_at_must_be_a_time_of_day(tmp_path: Path) -> None:
    for wrong in ("8:00", "24:00", "08:60", "08:00:00", "朝"):
        with pytest.raises(ValueError, match="HH:MM"):
            day_config(tmp_path, digest={"send_at": wrong})


def test_digests_need_the_consoles_address(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"digest.enabled needs console.public_url"):
        Config.model_validate({"digest": {"enabled": True}})


async def test_two_nodes_on_postgresql_send_the_day_once(
    tmp_path: Path, postgres_url: str, sink: Sink
) -> None:
    """Each node asks for the job's advisory lock before its round; the holder sends, the
    other nothing; when the holder goes, the other takes the job over."""
    config = day_config(tmp_path / "data", sink.port, store={"url": postgres_url})
    with day_of_mail(config) as pg_day:
        nodes = [
            SingletonLocks(Store.from_settings(config.store, tmp_path, create=False), name)
            for name in ("node-a", "node-b")
        ]
        try:
            jobs = [
                DailyDigests(
                    Digests(config, locks.store, _links(pg_day), FakeAudit(), FROM, lambda: NOW),
                    held=locks.job(DIGEST_JOB).held,
                )
                for locks in nodes
            ]
            assert [await jobs[0].round(), await jobs[1].round()] == [(3, 0), (0, 0)]
            assert len(sink.messages) == 3
            nodes[0].close()  # node-a stops
            assert await jobs[1].round() == (3, 0)
        finally:
            for locks in nodes:
                locks.close()
                locks.store.close()


async def test_a_tenants_recipients_get_their_digests_through_its_own_mta(
    day: Day, sink: Sink
) -> None:
    tenant_mta = await Sink().start()
    data = day_config(day.data_dir, sink.port).model_dump()
    data["smtp"]["accept_domains"] = []
    data["tenants"] = [
        {
            "name": "city",
            "domains": ["city.example.lg.jp"],
            "relay_host": "127.0.0.1",
            "relay_port": tenant_mta.port,
        }
    ]
    config = Config.model_validate(data)
    try:
        digests = Digests(config, day.store, _links(day), FakeAudit(), FROM, lambda: NOW)
        assert await DailyDigests(digests).round() == (3, 0)
    finally:
        await tenant_mta.stop()
    assert sorted(m.rcpt_tos[0] for m in tenant_mta.messages) == [
        "joho@city.example.lg.jp",
        KACHO,
        RIN,
    ]
    assert sink.messages == []  # the shared LGWAN-side MTA got none of them
