"""The log review's figures over a day of test mail with known counts, the decisions and
expired exceptions beside them, the bounds on a period, and the operators' summary text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.configuration.settings import StoreSettings
from gateway.service.held_mail import HeldMail
from gateway.service.statistics import WAITING, PeriodError, Statistics, summary_text
from gateway.store.schema import requests
from gateway.store.statistics import figures
from tests.gateway.relaykit import FakeAudit
from tests.gateway.service.daykit import KACHO, NOW, RIN, Day, day_config, day_of_mail

DAY = (NOW - timedelta(days=1), NOW)
EXPIRED_RULE = {
    "name": "keiri-zip",
    "recipients": ["keiri@city.example.lg.jp"],
    "exception": True,
    "approved_by": "情報政策課長",
    "reason": "監査法人との資料交換",
    "expires": "2026-12-01",
}


@pytest.fixture
def day(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Day]:
    """The day on each backend of the store (SQLite, PostgreSQL)."""
    config = day_config(
        tmp_path / "data",
        rules=(EXPIRED_RULE,),
        scanner={"enabled": True},
        store=store_settings.model_dump(),
    )
    with day_of_mail(config) as built:
        yield built


def test_the_figures_of_the_day(day: Day) -> None:
    review = Statistics(day.config, day.store).review(*DAY, now=NOW, today=date(2026, 12, 4))
    f = review.figures
    assert (f.messages, f.partial, f.refused) == (7, False, 1)
    assert f.verdicts == {"hold": 5, "deliver": 1, "reject": 1}
    assert f.reasons == [("macro", 3), ("executable", 2), ("encrypted_archive", 1), ("malware", 1)]
    assert f.top_senders == [
        ("partner@example.com", 3),
        ("spam@example.net", 2),
        ("billing@example.co.jp", 1),
        ("unknown@example.net", 1),
    ]
    assert f.top_recipients == [(RIN, 5), (KACHO, 2), ("someone@city.example.lg.jp", 1)]
    assert f.held_backlog == {"held": 5, "awaiting_password": 1}  # the old one included
    assert f.oldest_waiting == NOW - timedelta(hours=30)
    assert [rule.name for rule in review.expired_rules] == ["keiri-zip"]
    assert (
        Statistics(day.config, day.store)
        .review(*DAY, now=NOW, today=date(2026, 12, 1))
        .expired_rules
        == ()
    )


def test_top_lists_are_cut_at_top_count(day: Day) -> None:
    config = day.config.model_copy(
        update={"digest": day.config.digest.model_copy(update={"top_count": 1})}
    )
    f = Statistics(config, day.store).review(*DAY, now=NOW).figures
    assert (f.top_senders, f.top_recipients) == ([("partner@example.com", 3)], [(RIN, 5)])


def test_decisions_and_expired_approvals_of_the_period(day: Day) -> None:
    held = HeldMail(day.store, day.config, FakeAudit())
    held.request(day.refs["invoice"], "rin", "必要です")
    held.deny(day.refs["invoice"], "aki", "不要です")
    held.request(day.refs["quote"], "oto", "取引先の見積書", parts=["1"])
    held.approve(day.refs["quote"], "aki")
    now = datetime.now(UTC)
    around_now = (now - timedelta(hours=1), now + timedelta(hours=1))
    f = Statistics(day.config, day.store).review(*around_now, now=now).figures
    assert f.decisions == {"denied": 1, "approved": 1}
    assert f.expired_approvals == 0
    with day.store.writing() as db:  # the exception's approval ran out during the day
        db.execute(
            update(requests)
            .where(requests.c.kind == "exception")
            .values(expires_at=NOW - timedelta(hours=1))
        )
    f = Statistics(day.config, day.store).review(*DAY, now=now).figures
    assert (f.expired_approvals, f.decisions) == (1, {})


def test_a_period_is_bounded(day: Day) -> None:
    statistics = Statistics(day.config, day.store)
    with pytest.raises(PeriodError, match="statistics_max_days"):
        statistics.review(NOW - timedelta(days=32), NOW, now=NOW)
    with pytest.raises(PeriodError, match="ends before"):
        statistics.review(NOW, NOW, now=NOW)
    part = figures(day.store, *DAY, waiting_states=WAITING, top_count=10, max_messages=3, now=NOW)
    assert (part.messages, part.partial) == (3, True)
    assert sum(part.verdicts.values()) == 3  # the first three of the day, counted


def test_the_summary_text_is_exact(day: Day) -> None:
    review = Statistics(day.config, day.store).review(*DAY, now=NOW, today=date(2026, 12, 4))
    assert summary_text(review, day.config).splitlines() == [
        "メール無害化ゲートウェイの日次集計です（ログの定期的な確認のため）。",
        "期間：2026-12-03 08:00 JST から 2026-12-04 08:00 JST まで",
        "",
        "受け付けたメール：7 通",
        "判定：",
        "  配送：1 通",
        "  保留：5 通",
        "  拒否：1 通",
        "拒否（内容の確認後）：1 通",
        "理由（件数の多い順）：",
        "  マクロを含むため：3 通",
        "  実行ファイルまたはスクリプトのため：2 通",
        "  パスワード付きの圧縮ファイルで検査できないため：1 通",
        "  ウイルスが検出されたため：1 通",
        "差出人（上位）：",
        "  partner@example.com：3 通",
        "  spam@example.net：2 通",
        "  billing@example.co.jp：1 通",
        "  unknown@example.net：1 通",
        "宛先（上位）：",
        "  rin@city.example.lg.jp：5 通",
        "  kacho@city.example.lg.jp：2 通",
        "  someone@city.example.lg.jp：1 通",
        "",
        "判断待ちの保留メール（現在）：6 通",
        "  パスワード入力待ち：1 通",
        "  保留（宛先には通知のみ）：5 通",
        "  最も古いもの：2026-12-03 02:00 JST 受付",
        "期間中の申請の判断：",
        "  なし",
        "期限切れとなった例外措置の承認：0 件",
        "期限切れの例外措置（設定）：1 件",
        "  keiri-zip（期限 2026-12-01）",
        "",
        "接続の段階で拒否したもの（中継・サイズ・送信ドメイン認証など）は、"
        "メトリクス mukaika_rejected_total で確認してください。",
        "詳細：https://mukaika.city.example.lg.jp/statistics",
    ]


def test_a_tenants_figures_are_of_its_own_mail(day: Day) -> None:
    day.quarantine.index.update(day.refs["urgent"], tenant="kita")
    statistics = Statistics(day.config, day.store)
    own = statistics.review(*DAY, now=NOW, tenant="kita").figures
    assert (own.messages, own.top_recipients, own.held_backlog) == (1, [(KACHO, 1)], {"held": 1})
    assert statistics.review(*DAY, now=NOW, tenant="minami").figures.messages == 0
    assert statistics.review(*DAY, now=NOW, tenant="kita").expired_rules == ()  # shared rules
    assert statistics.review(*DAY, now=NOW).figures.messages == 7
