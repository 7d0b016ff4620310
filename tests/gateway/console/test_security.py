"""The console's defences: CSRF on every POST, no change on GET, hostile text from mail shown
as text everywhere, and the security headers and cookie flags on every answer."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from gateway.configuration.config import Config
from gateway.console.settings import django_settings
from gateway.store.workflow import history
from sanitizers.vocabulary import MessageState
from tests.gateway.console.consolekit import PASSWORD, TEST_SECRET_KEY, ConsoleWorld, sample_mail

ACTIONS = ("release", "request", "approve", "deny", "download")
# Markup that would run or load something if it reached the page as HTML.
HOSTILE = (
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "javascript:alert(1)",
    "{{ console_user.name }}{% csrf_token %}",
    "&lt;b&gt;already escaped&lt;/b&gt;",
)


# Every element the console's own templates use: anything else came from mail.
CONSOLE_TAGS = frozenset(
    [
        "html",
        "head",
        "meta",
        "title",
        "link",
        "body",
        "header",
        "nav",
        "a",
        "span",
        "form",
        "input",
        "button",
        "main",
        "h1",
        "h2",
        "p",
        "select",
        "option",
        "label",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "dl",
        "dt",
        "dd",
        "code",
        "strong",
        "pre",
        "div",
    ]
)


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self.handlers += [v for name, v in attrs if name == "href" and "script:" in (v or "")]


def markup_of(page: str) -> tuple[set[str], list[str]]:
    """The elements of ``page`` and its event handlers or script links."""
    parser = _Markup()
    parser.feed(page)
    return parser.tags, parser.handlers


def _held(world: ConsoleWorld, subject: str = "件名", **kwargs: object) -> str:
    return world.held(
        sample_mail(subject, **kwargs),  # type: ignore[arg-type]
        rcpt_to=("rin@city.example.lg.jp",),
        subject=subject,
    )


def test_a_post_without_the_csrf_token_changes_nothing(world: ConsoleWorld) -> None:
    ref = _held(world)
    operator = world.signed_in("oto", csrf_checks=True)
    refused = operator.post(f"/mail/{ref}/release")
    assert refused.status_code == 403
    assert world.runtime.quarantine.get(ref).state == MessageState.HELD
    forged = operator.post(f"/mail/{ref}/release", {"csrfmiddlewaretoken": "x" * 64})
    assert forged.status_code == 403
    assert world.runtime.quarantine.get(ref).state == MessageState.HELD
    token = operator.cookies["mukaika_csrf"].value
    accepted = operator.post(f"/mail/{ref}/release", {"csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert world.runtime.quarantine.get(ref).state == MessageState.APPROVED


def test_sign_in_and_out_need_the_csrf_token_too(world: ConsoleWorld) -> None:
    client = world.client(csrf_checks=True)
    assert client.post("/login", {"name": "oto", "password": PASSWORD}).status_code == 403
    signed_in = world.signed_in("oto", csrf_checks=True)
    assert signed_in.post("/logout").status_code == 403
    assert signed_in.get("/").status_code == 200


@pytest.mark.parametrize("action", ACTIONS)
def test_a_get_never_changes_state(world: ConsoleWorld, action: str) -> None:
    ref = _held(world)
    world.signed_in("oto").post(f"/mail/{ref}/request", {"reason": "確認"})
    before = (world.runtime.quarantine.get(ref).state, history(world.store, ref))
    lines = len(world.audit_lines())
    for name in ("oto", "aki"):
        client = world.signed_in(name)
        response = client.get(f"/mail/{ref}/{action}", {"reason": "x"})
        assert response.status_code == 405
    assert (world.runtime.quarantine.get(ref).state, history(world.store, ref)) == before
    new = [line["event"] for line in world.audit_lines()[lines:]]
    assert set(new) <= {"login"}


def test_logout_and_language_do_not_act_on_get(world: ConsoleWorld) -> None:
    client = world.signed_in("oto")
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200
    client.get("/language", {"language": "en"})
    assert "django_language" not in client.cookies


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_subjects_and_file_names_are_shown_as_text(
    world: ConsoleWorld, payload: str
) -> None:
    ref = world.held(
        sample_mail(f"件名{payload}", f"本文{payload}\n", attachment=(f"{payload}.docm", b"PK")),
        rcpt_to=("rin@city.example.lg.jp",),
        mail_from=f"x{payload}@example.com"[:60],
        subject=f"件名{payload}",
    )
    for name in ("oto", "rin"):
        client = world.signed_in(name)
        for page in (client.get("/"), client.get(f"/mail/{ref}")):
            text = page.content.decode()
            assert page.status_code == 200
            tags, handlers = markup_of(text)
            assert tags <= CONSOLE_TAGS, tags - CONSOLE_TAGS
            assert not handlers
        assert (
            html.escape(f"件名{payload}", quote=True) in client.get(f"/mail/{ref}").content.decode()
        )


def test_every_answer_carries_the_security_headers(world: ConsoleWorld) -> None:
    ref = _held(world)
    client = world.signed_in("oto")
    answers = [
        world.client().get("/login"),
        client.get("/"),
        client.get(f"/mail/{ref}"),
        client.get("/no-such-page"),
        client.post(f"/mail/{ref}/download"),
    ]
    for response in answers:
        policy = response["Content-Security-Policy"]
        assert "script-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "no-referrer"
    for response in answers[:4]:
        assert response["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(world: ConsoleWorld) -> None:
    ref = _held(world)
    client = world.signed_in("oto")
    for page in (world.client().get("/login"), client.get("/"), client.get(f"/mail/{ref}")):
        text = page.content.decode().lower()
        assert "<script" not in text
        assert "<style" not in text
        assert " style=" not in text
        assert " onclick=" not in text


def test_cookies_are_httponly_samesite_and_secure_behind_https(world: ConsoleWorld) -> None:
    client = world.client()
    client.get("/login")
    client.post("/login", {"name": "oto", "password": PASSWORD})
    session = client.cookies["mukaika_session"]
    assert session["httponly"]
    assert session["samesite"] == "Strict"
    assert client.cookies["mukaika_csrf"]["httponly"]
    assert client.cookies["mukaika_csrf"]["samesite"] == "Lax"
    # Over HTTPS (the console's own TLS, or a proxy's public https:// URL) every cookie is
    # Secure and HSTS is sent.
    https = Config.model_validate(
        {"console": {"public_url": "https://console.city.example.lg.jp/"}}
    )
    values = django_settings(https, TEST_SECRET_KEY)
    assert values["SESSION_COOKIE_SECURE"]
    assert values["CSRF_COOKIE_SECURE"]
    assert values["LANGUAGE_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] > 0
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://console.city.example.lg.jp"]
    plain = django_settings(Config(), TEST_SECRET_KEY)
    assert not plain["SESSION_COOKIE_SECURE"]


def test_the_shipped_hasher_is_argon2() -> None:
    values = django_settings(Config(), TEST_SECRET_KEY)
    assert values["PASSWORD_HASHERS"][0].endswith("Argon2PasswordHasher")


def test_an_unknown_host_is_refused(world: ConsoleWorld) -> None:
    from django.test import Client

    response = Client(HTTP_HOST="evil.example").get("/login")
    assert response.status_code == 400
