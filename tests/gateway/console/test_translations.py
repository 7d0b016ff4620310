"""The console speaks Japanese by default and English when chosen; its translations are
complete and the committed catalogue (django.mo) is what msgfmt makes of django.po.

The .mo is committed so that ``make demo`` needs no gettext; these tests use Debian's
``gettext`` (msgfmt, xgettext; in the Makefile's TEST_PACKAGES) to check it is current:
after editing django.po, ``make translations`` rebuilds it."""

from __future__ import annotations

import gettext
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.console.consolekit import PASSWORD, ConsoleWorld
from tests.paths import ROOT
from tests.tools import require_tool

CONSOLE = ROOT / "gateway" / "console"
CATALOGUE = CONSOLE / "locale" / "ja" / "LC_MESSAGES"


def _catalogue(path: Path) -> dict[object, str]:
    with path.open("rb") as handle:
        catalog: dict[object, str] = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    return {key: value for key, value in catalog.items() if key != ""}


def test_the_committed_catalogue_is_the_compiled_po(tmp_path: Path) -> None:
    msgfmt = require_tool("msgfmt", debian_package="gettext")
    compiled = tmp_path / "django.mo"
    subprocess.run(
        [msgfmt, "--check", "-o", str(compiled), str(CATALOGUE / "django.po")],
        check=True,
        timeout=60,
    )
    assert _catalogue(CATALOGUE / "django.mo") == _catalogue(compiled)


def test_every_string_of_the_pages_is_translated(tmp_path: Path) -> None:
    """Extract the strings again (Django's makemessages, xgettext) from a copy of the console
    and find each one in django.po with a translation."""
    require_tool("xgettext", debian_package="gettext")
    copy = tmp_path / "console"
    shutil.copytree(CONSOLE, copy, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (copy / "locale").mkdir()
    script = (
        "import django; from django.conf import settings; settings.configure(USE_I18N=True);"
        "django.setup(); from django.core.management import call_command;"
        "call_command('makemessages', locale=['ja'], no_location=True, verbosity=0)"
    )
    subprocess.run([sys.executable, "-c", script], cwd=copy, check=True, timeout=120)
    fresh = (copy / "locale" / "ja" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    wanted = {
        line[len('msgid "') : -1] for line in fresh.splitlines() if line.startswith('msgid "')
    } - {""}
    ours = _catalogue(CATALOGUE / "django.mo")
    missing = sorted(msgid for msgid in wanted if msgid.replace('\\"', '"') not in ours)
    assert wanted
    assert missing == []
    assert all(ours.values())


def test_japanese_by_default_whatever_the_browser_asks(world: ConsoleWorld) -> None:
    page = world.client().get("/login", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    text = page.content.decode()
    assert '<html lang="ja">' in text
    assert "ログイン" in text
    assert page["Content-Language"] == "ja"


def test_english_when_chosen(world: ConsoleWorld) -> None:
    client = world.client()
    client.get("/login")
    response = client.post("/language", {"language": "en", "next": "/login"})
    assert response.status_code == 302
    text = client.get("/login").content.decode()
    assert '<html lang="en">' in text
    assert "Sign in" in text
    client.post("/login", {"name": "oto", "password": PASSWORD})
    listing = client.get("/").content.decode()
    assert "Held and quarantined mail" in listing


@pytest.mark.parametrize("language", ["ja", "en"])
def test_states_and_reasons_are_shown_as_labels(world: ConsoleWorld, language: str) -> None:
    from tests.gateway.console.consolekit import sample_mail

    ref = world.held(sample_mail("件名"), rcpt_to=("rin@city.example.lg.jp",))
    client = world.signed_in("oto")
    client.post("/language", {"language": language, "next": "/"})
    page = client.get(f"/mail/{ref}").content.decode()
    state = {"ja": "保留（宛先には通知のみ）", "en": "held: recipients got a notice only"}
    assert state[language] in page
    if language == "ja":
        assert "マクロを含むため" in page
