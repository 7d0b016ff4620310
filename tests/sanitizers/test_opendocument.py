"""OpenDocument files are their own kind (``odf``): disarmed as a document, with a notice in
Japanese naming what was removed, never treated as a ZIP of loose files (which renamed
content.xml and delivered a broken file)."""

from __future__ import annotations

import io
import zipfile

import pytest

from sanitizers.filetype import detect
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.vocabulary import Action, Reason
from tests.mailfactory import body_text, leaf, mail, multipart, parse

FLAVORS = {
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "odg": "application/vnd.oasis.opendocument.graphics",
    "ott": "application/vnd.oasis.opendocument.text-template",
}


def opendocument(mimetype: str, manifest: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype)  # stored, first, as ODF says
        archive.writestr(
            "content.xml",
            '<?xml version="1.0"?><office:document-content '
            'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"/>',
        )
        if manifest:
            archive.writestr("META-INF/manifest.xml", "<manifest:manifest/>")
    return buffer.getvalue()


@pytest.mark.parametrize("extension", list(FLAVORS))
@pytest.mark.parametrize(
    ("name_of", "declared_of"),
    [
        (lambda e: f"報告書.{e}", lambda e: FLAVORS[e]),
        (lambda e: f"報告書.{e}", lambda e: "application/octet-stream"),
        (lambda e: "報告書.zip", lambda e: "application/zip"),
        (lambda e: None, lambda e: "application/octet-stream"),
    ],
    ids=["named", "undeclared", "posing-as-zip", "nameless"],
)
def test_detected_as_opendocument(extension: str, name_of: object, declared_of: object) -> None:
    data = opendocument(FLAVORS[extension], manifest=extension != "odg")
    info = detect(data, declared_of(extension), name_of(extension))  # type: ignore[operator]
    assert info.kind == "odf", info


def test_a_macro_document_arrives_disarmed_with_a_japanese_notice() -> None:
    from tests.sanitizers.cdr.test_odf import odt_macro_on_open

    name = "議事録.odt"
    attachment = leaf(
        f'{FLAVORS["odt"]}; name="{name}"',
        odt_macro_on_open(),
        cte="base64",
        extra=[("Content-Disposition", f'attachment; filename="{name}"')],
    )
    raw = mail(multipart("mixed", [leaf("text/plain; charset=utf-8", "本文".encode()), attachment]))
    result = sanitize_message(raw, Policy())
    part = next(p for p in result.report.parts if p.filename == name)
    assert (part.kind, part.action, part.reason) == ("odf", Action.SANITIZED, Reason.MACRO)
    text = body_text(result.message)
    assert name in text
    assert "文書のマクロ・スクリプト（Basic、Python など）" in text
    assert "開いたときやクリックしたときに動くマクロ・スクリプト" in text
    delivered = [p.get_filename() for p in parse(result.message).walk() if p.get_filename()]
    assert delivered == [name]


def test_a_loose_odf_without_content_is_removed_with_a_notice() -> None:
    name = "報告書.odg"
    attachment = leaf(
        f'{FLAVORS["odg"]}; name="{name}"',
        opendocument(FLAVORS["odg"], manifest=False),
        cte="base64",
        extra=[("Content-Disposition", f'attachment; filename="{name}"')],
    )
    raw = mail(multipart("mixed", [leaf("text/plain; charset=utf-8", "本文".encode()), attachment]))
    result = sanitize_message(raw, Policy())
    part = next(p for p in result.report.parts if p.filename == name)
    assert (part.kind, part.action, part.reason) == ("odf", Action.REMOVED, Reason.MALFORMED)
    assert name in body_text(result.message)
    assert [p for p in parse(result.message).walk() if p.get_filename()] == []
