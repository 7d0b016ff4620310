"""The pages besides the mail: the audit trail (auditors), the rules in force with their files
and expiring exceptions (operators and approvers), the explain page (the same code as mukaika
explain), the users (admins); the language; the style sheet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from gateway.console.views.rules import EXPIRING_SOON_DAYS
from sanitizers.vocabulary import UserRole
from tests.gateway.console.consolekit import ConsoleWorld, console_world, sample_mail

PAGES = {"/audit": {"kai"}, "/rules": {"oto", "aki"}, "/explain": {"oto", "aki"}, "/users": {"ada"}}


@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_page_opens_for_its_roles_only(world: ConsoleWorld, path: str) -> None:
    for name in ("rin", "oto", "aki", "kai", "ada"):
        status = world.signed_in(name).get(path).status_code
        assert status == (200 if name in PAGES[path] else 403), (path, name)
    assert world.client().get(path).status_code == 302


def test_the_audit_trail_shows_the_newest_lines_and_filters(world: ConsoleWorld) -> None:
    world.signed_in("oto")
    auditor = world.signed_in("kai")
    page = auditor.get("/audit").content.decode()
    assert "login" in page
    assert "oto" in page
    only_oto = auditor.get("/audit", {"event": "login", "actor": "oto"}).content.decode()
    assert "kai" not in only_oto.split("<tbody>")[1]


def test_the_audit_trail_cannot_be_changed_from_the_console(world: ConsoleWorld) -> None:
    assert world.signed_in("kai").post("/audit").status_code == 405


@pytest.fixture
def ruled(tmp_path: Path) -> Iterator[ConsoleWorld]:
    main = tmp_path / "mukaika.toml"
    main.write_text(
        '[[rules]]\nname = "keiri"\nrecipients = ["keiri@city.example.lg.jp"]\n'
        '[rules.policy.attachments.by_kind]\nzip = "remove"\n',
        encoding="utf-8",
    )
    local = tmp_path / "local.d"
    local.mkdir()
    soon = date.today() + timedelta(days=EXPIRING_SOON_DAYS - 1)
    later = date.today() + timedelta(days=EXPIRING_SOON_DAYS + 30)
    (local / "50-exceptions.toml").write_text(
        '[[rules]]\nname = "soon"\nsenders = ["partner.example.com"]\nexception = true\n'
        f'approved_by = "課長"\nreason = "取引先<b>"\nexpires = {soon.isoformat()}\n'
        '[[rules]]\nname = "later"\nsenders = ["other.example.com"]\nexception = true\n'
        f'approved_by = "課長"\nreason = "r"\nexpires = {later.isoformat()}\n',
        encoding="utf-8",
    )
    with console_world(tmp_path / "data", main) as world:
        world.add("oto", UserRole.OPERATOR)
        yield world


def test_the_rules_page_names_each_rules_file_and_marks_expiring_exceptions(
    ruled: ConsoleWorld, tmp_path: Path
) -> None:
    page = ruled.signed_in("oto").get("/rules").content.decode()
    assert str(tmp_path / "mukaika.toml") in page
    assert str(tmp_path / "local.d" / "50-exceptions.toml") in page
    rows = page.split("<tr")
    assert any('class="expiring"' in row and "soon" in row for row in rows)
    assert not any('class="expiring"' in row and ">later<" in row for row in rows)
    assert "取引先&lt;b&gt;" in page


def test_the_explain_page_runs_the_explanation_of_mukaika_explain(ruled: ConsoleWorld) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    mail = sample_mail("見積", attachment=("資料.zip", b"PK\x05\x06" + bytes(18)))
    page = ruled.signed_in("oto").post(
        "/explain",
        {
            "message": SimpleUploadedFile("m.eml", mail),
            "recipients": "keiri@city.example.lg.jp",
        },
    )
    text = page.content.decode()
    assert page.status_code == 200
    assert "rules applied (in order, later wins): keiri" in text
    assert "資料.zip" in text


def test_the_explain_page_refuses_a_missing_mail_and_a_bad_address(ruled: ConsoleWorld) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = ruled.signed_in("oto")
    assert client.post("/explain", {"recipients": "a@example.jp"}).status_code == 400
    bad = client.post(
        "/explain",
        {"message": SimpleUploadedFile("m.eml", sample_mail()), "recipients": "<x>"},
    )
    assert bad.status_code == 400


def test_the_users_page_lists_roles_addresses_and_missing_codes(world: ConsoleWorld) -> None:
    page = world.signed_in("ada").get("/users").content.decode()
    assert "kacho@city.example.lg.jp" in page
    assert "承認者" in page
    assert "監査担当" in page


def test_the_style_sheet_is_served(world: ConsoleWorld) -> None:
    response = world.client().get("/static/console.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
