"""Outbound rate limits: per sender and overall, a sliding hour; held mail is not counted."""

from __future__ import annotations

from gateway.outbound.rates import WINDOW_SECONDS, RateLimits


def test_per_sender_limit_then_the_window_slides() -> None:
    now = [0.0]
    limits = RateLimits(per_sender=3, overall=0, clock=lambda: now[0])
    assert [limits.take("A@x.jp") for _ in range(3)] == [None, None, None]
    assert limits.take("a@X.jp") == "sender"  # case-insensitive
    assert limits.take("b@x.jp") is None  # another sender is not affected
    now[0] = WINDOW_SECONDS + 1
    assert limits.take("a@x.jp") is None


def test_overall_limit_and_refusals_are_not_counted() -> None:
    limits = RateLimits(per_sender=0, overall=2, clock=lambda: 0.0)
    assert limits.take("a@x.jp") is None
    assert limits.take("b@x.jp") is None
    assert limits.take("c@x.jp") == "all"
    assert limits.take("c@x.jp") == "all"


def test_no_limits_count_nothing() -> None:
    limits = RateLimits(per_sender=0, overall=0)
    assert all(limits.take("a@x.jp") is None for _ in range(1000))
