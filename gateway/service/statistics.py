"""The log review (policy 6(5)⑥ウ): the figures of a period for the console's statistics page
and the operators' daily summary mail, and the summary's Japanese text.

The counts come from the store (:mod:`gateway.store.statistics` says why, and what is not
there); the expired exceptions of the configuration (``[[rules]]`` with ``exception`` past
``expires``) come from the configuration in force, as ``check-config`` reports them. A period
is at most ``digest.statistics_max_days`` long and reads at most
``digest.statistics_max_messages`` messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from gateway.configuration.config import Config
from gateway.configuration.rules import Rule
from gateway.evidence.quarantine.entries import HELD_STATES
from gateway.service.decision_notices import shown_time
from gateway.store import Store
from gateway.store.statistics import Figures, figures
from sanitizers.vocabulary import MessageState, Reason, RequestState, Verdict, label

WAITING: Final = tuple(sorted(str(state) for state in HELD_STATES))


class PeriodError(ValueError):
    """A period that is empty, reversed or longer than allowed."""


@dataclass(frozen=True, slots=True)
class Review:
    """The figures of one period and the configuration's expired exceptions."""

    figures: Figures
    expired_rules: tuple[Rule, ...]


class Statistics:
    """The review's figures over one store, with one configuration's bounds."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def check_period(self, since: datetime, until: datetime) -> None:
        longest = timedelta(days=self.config.digest.statistics_max_days)
        if until <= since:
            raise PeriodError("the period ends before it starts")
        if until - since > longest:
            raise PeriodError(
                f"the period is longer than digest.statistics_max_days "
                f"({self.config.digest.statistics_max_days})"
            )

    def review(
        self,
        since: datetime,
        until: datetime,
        *,
        now: datetime,
        today: date | None = None,
        tenant: str | None = None,
    ) -> Review:
        """The figures of ``[since, until)`` (with ``tenant``: of that tenant's mail and
        rules only); ``today`` (the host's local date, as the rules use it) decides which
        configured exceptions have expired."""
        self.check_period(since, until)
        settings = self.config.digest
        counted = figures(
            self.store,
            since,
            until,
            waiting_states=WAITING,
            top_count=settings.top_count,
            max_messages=settings.statistics_max_messages,
            now=now,
            tenant=tenant,
        )
        day = today or date.today()
        rules = self.config.rules if tenant is None else ()
        for configured in self.config.tenants:
            if tenant in (None, configured.name):
                rules += configured.rules
        expired = tuple(rule for rule in rules if rule.expired(day))
        return Review(counted, expired)


def _label(
    code: str, kind: type[Verdict] | type[Reason] | type[MessageState] | type[RequestState]
) -> str:
    try:
        return label(kind(code), "ja")
    except ValueError:
        return code


def summary_text(review: Review, config: Config) -> str:
    """The Japanese text of the operators' daily summary of ``review``."""
    f = review.figures
    zone = config.service.display_timezone
    lines = [
        "メール無害化ゲートウェイの日次集計です（ログの定期的な確認のため）。",
        f"期間：{shown_time(f.since, zone)} から {shown_time(f.until, zone)} まで",
        "",
        f"受け付けたメール：{f.messages} 通",
    ]
    if f.partial:
        lines.append(f"（上限 {f.messages} 通までを集計。期間を短くしてください）")
    lines.append("判定：")
    for verdict in Verdict:
        lines.append(f"  {label(verdict, 'ja')}：{f.verdicts.get(str(verdict), 0)} 通")
    lines.append(f"拒否（内容の確認後）：{f.refused} 通")
    lines.append("理由（件数の多い順）：")
    lines += [f"  {_label(code, Reason)}：{count} 通" for code, count in f.reasons] or ["  なし"]
    lines.append("差出人（上位）：")
    lines += [f"  {sender}：{count} 通" for sender, count in f.top_senders] or ["  なし"]
    lines.append("宛先（上位）：")
    lines += [f"  {rcpt}：{count} 通" for rcpt, count in f.top_recipients] or ["  なし"]
    lines.append("")
    backlog = sum(f.held_backlog.values())
    lines.append(f"判断待ちの保留メール（現在）：{backlog} 通")
    for state, count in sorted(f.held_backlog.items()):
        lines.append(f"  {_label(state, MessageState)}：{count} 通")
    if f.oldest_waiting is not None:
        lines.append(f"  最も古いもの：{shown_time(f.oldest_waiting, zone)} 受付")
    lines.append("期間中の申請の判断：")
    lines += [
        f"  {_label(state, RequestState)}：{count} 件"
        for state, count in sorted(f.decisions.items())
    ] or ["  なし"]
    lines.append(f"期限切れとなった例外措置の承認：{f.expired_approvals} 件")
    lines.append(f"期限切れの例外措置（設定）：{len(review.expired_rules)} 件")
    lines += [f"  {rule.name}（期限 {rule.expires}）" for rule in review.expired_rules]
    lines += [
        "",
        "接続の段階で拒否したもの（中継・サイズ・送信ドメイン認証など）は、"
        "メトリクス mukaika_rejected_total で確認してください。",
    ]
    if config.console.public_url:
        lines.append(f"詳細：{config.console.public_url.rstrip('/')}/statistics")
    return "\n".join(lines) + "\n"
