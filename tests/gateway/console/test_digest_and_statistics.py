"""The console's side of the digests and the log review: a digest link only opens a page (a
GET without a session reaches the sign-in page and changes nothing), leads its recipient to the
message, refuses a forwarded digest's reader, an expired or altered link; the statistics page
shows the known counts of a day of test mail, for operators and auditors only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.processing.unlock_links import digest_links
from gateway.service.digests import Digests
from gateway.store.workflow import history
from sanitizers.vocabulary import UserRole
from tests.gateway.console.consolekit import TEST_SECRET_KEY, ConsoleWorld, console_world
from tests.gateway.relaykit import FakeAudit
from tests.gateway.service.daykit import (
    KACHO,
    NOW,
    PUBLIC_URL,
    REN,
    RIN,
    Day,
    day_config,
    day_of_mail,
)

CONFIG = """
[service]
display_timezone = "Asia/Tokyo"
[console]
public_url = "{url}"
contact = "情報政策課 内線1234"
"""


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[ConsoleWorld, Day]]:
    config_file = tmp_path / "mukaika.toml"
    config_file.write_text(CONFIG.format(url=PUBLIC_URL), encoding="utf-8")
    with console_world(tmp_path / "data", config_file) as world:
        world.add("rin", UserRole.RECIPIENT, RIN, KACHO)
        world.add("ren", UserRole.RECIPIENT, REN, KACHO)
        world.add("mio", UserRole.RECIPIENT, "mio@city.example.lg.jp")
        world.add("oto", UserRole.OPERATOR)
        world.add("kai", UserRole.AUDITOR)
        with day_of_mail(day_config(tmp_path / "data"), users=False) as day:
            yield world, day


def _links_of(day: Day, address: str, *, age_seconds: float = 0) -> list[str]:
    """The paths of the links in ``address``'s digest, signed with the console's key
    ``age_seconds`` ago."""
    lifetime = day.config.digest.link_lifetime_seconds
    signed_at = time.time() - age_seconds
    links = digest_links(TEST_SECRET_KEY, PUBLIC_URL, lifetime, lambda: signed_at)
    mails = Digests(day.config, day.store, links, FakeAudit(), "n@x", lambda: NOW).build()
    (mail,) = [m for m in mails if m.to == (address,)]
    return [
        "/" + line.split("確認：", 1)[1][len(PUBLIC_URL) :]
        for line in mail.text.splitlines()
        if "確認：" in line
    ]


def test_a_link_without_a_session_only_reaches_the_sign_in_page(
    both: tuple[ConsoleWorld, Day],
) -> None:
    world, day = both
    links = _links_of(day, RIN)
    for link in links:
        response = world.client().get(link)
        assert response.status_code == 302
        assert response["Location"].startswith("/login?next=%2Fdigest%2F")
        assert world.client().post(link).status_code == 405  # a link is never an action
    assert all(history(world.store, ref) == [] for ref in day.refs.values())


def test_the_recipient_signs_in_and_lands_on_the_message(both: tuple[ConsoleWorld, Day]) -> None:
    world, day = both
    first = _links_of(day, RIN)[0]
    landing = world.signed_in("rin").get(first, follow=True)
    assert landing.status_code == 200
    assert landing.redirect_chain == [(f"/mail/{day.refs['invoice']}", 302)]
    assert 'id="ask-release"' in landing.content.decode()
    assert history(world.store, day.refs["invoice"]) == []  # opening asked for nothing


def test_a_shared_mailboxs_digest_serves_each_of_its_readers(
    both: tuple[ConsoleWorld, Day],
) -> None:
    world, day = both
    link = _links_of(day, KACHO)[0]
    assert world.signed_in("ren").get(link)["Location"] == f"/mail/{day.refs['quote']}"


def test_a_forwarded_digest_is_refused_to_another_signed_in_user(
    both: tuple[ConsoleWorld, Day],
) -> None:
    world, day = both
    link = _links_of(day, RIN)[0]
    for name in ("ren", "mio", "oto"):
        refused = world.signed_in(name).get(link)
        assert refused.status_code == 403
        assert "このリンクは別の宛先のダイジェストのものです。" in refused.content.decode()
    refusals = [
        line for line in world.audit_lines() if line.get("outcome", "").startswith("refused")
    ]
    assert [line["actor"] for line in refusals] == ["ren", "mio", "oto"]
    assert history(world.store, day.refs["invoice"]) == []


def test_an_expired_or_altered_link_is_refused(both: tuple[ConsoleWorld, Day]) -> None:
    world, day = both
    rin = world.signed_in("rin")
    expired = _links_of(day, RIN, age_seconds=3 * 86400 + 1)[0]  # valid for three days
    answer = rin.get(expired)
    assert answer.status_code == 403
    assert "このリンクは有効期限が切れています。" in answer.content.decode()
    good = _links_of(day, RIN)[0]
    altered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    answer = rin.get(altered)
    assert answer.status_code == 404
    assert "このリンクは無効です。" in answer.content.decode()
    ppap_path = good.replace("/digest/", "/ppap/")  # a digest link is not a PPAP link
    assert world.client().get(ppap_path).status_code == 404


def test_the_statistics_page_shows_the_known_counts(both: tuple[ConsoleWorld, Day]) -> None:
    world, _ = both
    for name in ("oto", "kai"):
        page = world.signed_in(name).get(
            "/statistics", {"since": "2026-12-03", "until": "2026-12-04"}
        )
        assert page.status_code == 200
        html = page.content.decode()
        assert '<span id="messages">8</span>' in html
        assert '<span id="refused">1</span>' in html
        assert '<span id="backlog">6</span>' in html
        assert "<tr><td>保留</td><td>6</td></tr>" in html
        assert "<tr><td>マクロを含むため</td><td>4</td></tr>" in html
        assert "<tr><td>partner@example.com</td><td>4</td></tr>" in html
        assert "<tr><td>rin@city.example.lg.jp</td><td>6</td></tr>" in html
    one_day = world.signed_in("oto").get(
        "/statistics", {"since": "2026-12-03", "until": "2026-12-03"}
    )
    assert '<span id="messages">3</span>' in one_day.content.decode()


def test_the_statistics_page_refuses_long_periods_and_other_roles(
    both: tuple[ConsoleWorld, Day],
) -> None:
    world, _ = both
    oto = world.signed_in("oto")
    assert oto.get("/statistics", {"since": "2026-01-01", "until": "2026-12-04"}).status_code == 400
    assert oto.get("/statistics", {"since": "2026-12-04", "until": "2026-12-01"}).status_code == 400
    assert oto.get("/statistics", {"since": "昨日"}).status_code == 400
    assert world.signed_in("rin").get("/statistics").status_code == 403
    assert world.client().get("/statistics").status_code == 302


def test_a_tenants_operator_sees_the_figures_of_its_tenant_only(
    both: tuple[ConsoleWorld, Day],
) -> None:
    world, day = both
    day.quarantine.index.update(day.refs["urgent"], tenant="kita")
    world.add("kita-oto", UserRole.OPERATOR, tenant="kita")
    page = world.signed_in("kita-oto").get(
        "/statistics", {"since": "2026-12-03", "until": "2026-12-04"}
    )
    html = page.content.decode()
    assert '<span id="messages">1</span>' in html
    assert "partner@example.com" not in html
