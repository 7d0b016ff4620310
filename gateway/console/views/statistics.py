"""The statistics page of the log review (policy 6(5)⑥ウ), for operators and auditors: the
figures of a chosen period (:mod:`gateway.service.statistics`), read-only.

A tenant's user sees the figures of that tenant's mail, decisions and rules only. A period
is whole days in the display time zone (``service.display_timezone``, else the
host's), at most ``digest.statistics_max_days``; a longer or reversed one is refused (400), so
one request reads a bounded number of rows. The figures are counts and the index's cleaned
addresses, shown through the templates' escaping.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from gateway.console.middleware import ConsoleUser
from gateway.console.runtime import current
from gateway.console.views.access import requires
from gateway.console.views.errors import error_page
from gateway.service.access import Permission
from gateway.service.statistics import PeriodError, Statistics
from sanitizers.vocabulary import Verdict

# The period shown when none is asked for: the last seven days, today included.
DEFAULT_DAYS = 7


def _zone() -> tzinfo | None:
    name = current().config.service.display_timezone
    return ZoneInfo(name) if name else datetime.now().astimezone().tzinfo


def _day(text: str, default: date) -> date | None:
    if not text:
        return default
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


@require_GET
@requires(Permission.SEE_STATISTICS)
def statistics(request: HttpRequest, user: ConsoleUser) -> HttpResponse:
    runtime = current()
    zone = _zone()
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    first = _day(request.GET.get("since", ""), today - timedelta(days=DEFAULT_DAYS - 1))
    last = _day(request.GET.get("until", ""), today)
    if first is None or last is None:
        return error_page(request, 400, _("Give the days as YYYY-MM-DD."))
    since = datetime.combine(first, time(), zone).astimezone(UTC)
    until = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    try:
        review = Statistics(runtime.config, runtime.store).review(
            since, until, now=now, today=datetime.now().date(), tenant=user.only_tenant
        )
    except PeriodError as exc:
        return error_page(request, 400, str(exc))
    figures = review.figures
    context = {
        "form": {"since": first.isoformat(), "until": last.isoformat()},
        "figures": figures,
        "verdicts": [(str(v), figures.verdicts.get(str(v), 0)) for v in Verdict],
        "backlog": sorted(figures.held_backlog.items()),
        "backlog_total": sum(figures.held_backlog.values()),
        "decisions": sorted(figures.decisions.items()),
        "expired_rules": review.expired_rules,
        "max_days": runtime.config.digest.statistics_max_days,
    }
    return render(request, "console/statistics.html", context)
