"""A release run of the pipeline: the holds lifted (what held it removed), text only, and
the parts of an exception kept as the sender's bytes (never an executable, never an archive
as it came)."""

from __future__ import annotations

import io
import struct
import zipfile

from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import PartReport, SanitizeResult
from sanitizers.vocabulary import Action, Reason, Verdict
from tests.mailfactory import leaf, mail, multipart
from tests.sanitizers.cdr.office_fixtures import docm_with_vba

EXE = b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(200)


def _zip(encrypted: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", "hello " * 50)
    data = bytearray(out.getvalue())
    if encrypted:
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = data.find(signature)
            flags = struct.unpack_from("<H", data, at + offset)[0]
            struct.pack_into("<H", data, at + offset, flags | 1)
    return bytes(data)


def _file(name: str, data: bytes, mime: str = "application/octet-stream") -> bytes:
    disposition = ("Content-Disposition", f'attachment; filename="{name}"')
    return leaf(mime, data, cte="base64", extra=[disposition])


def _message(*files: bytes) -> bytes:
    text = leaf("text/plain; charset=utf-8", "本文です。".encode())
    return mail(multipart("mixed", [text, *files]))


def _run(raw: bytes, release: ReleaseTerms | None = None) -> SanitizeResult:
    return sanitize_message(raw, Policy(), disarmer=InProcessDisarmer(), release=release)


def _part(result: SanitizeResult, name: str) -> PartReport:
    return next(p for p in result.report.parts if p.filename == name)


def _attached(result: SanitizeResult) -> dict[str, bytes]:
    import email

    message = email.message_from_bytes(result.message)
    found: dict[str, bytes] = {}
    for part in message.walk():
        if part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_filename() or ""] = payload
    return found


def test_lifting_the_holds_removes_what_held_it() -> None:
    raw = _message(_file("secret.zip", _zip(encrypted=True), "application/zip"))
    assert _run(raw).report.verdict is Verdict.HOLD
    released = _run(raw, ReleaseTerms())
    assert released.report.verdict is Verdict.DELIVER
    part = _part(released, "secret.zip")
    assert (part.action, part.reason) == (Action.REMOVED, Reason.ENCRYPTED_ARCHIVE)
    assert _attached(released) == {}


def test_text_only_removes_every_file_unparsed() -> None:
    raw = _message(_file("a.zip", _zip(), "application/zip"), _file("b.txt", b"x", "text/plain"))
    result = _run(raw, ReleaseTerms(text_only=True))
    assert result.report.verdict is Verdict.DELIVER
    for name in ("a.zip", "b.txt"):
        part = _part(result, name)
        assert (part.action, part.reason) == (Action.REMOVED, Reason.TEXT_ONLY)
    assert _attached(result) == {}


def test_an_exception_keeps_only_the_named_parts_and_never_an_executable() -> None:
    docm = docm_with_vba()
    raw = _message(
        _file("form.docm", docm, "application/vnd.ms-word.document.macroEnabled.12"),
        _file("other.docm", docm, "application/vnd.ms-word.document.macroEnabled.12"),
        _file("tool.exe", EXE),
        _file("a.zip", _zip(), "application/zip"),
    )
    plain = _run(raw)
    paths = {p.filename: p.path for p in plain.report.parts if p.filename}
    keep = frozenset(paths[n] for n in ("form.docm", "tool.exe", "a.zip"))
    result = _run(raw, ReleaseTerms(keep_parts=keep))
    files = _attached(result)
    assert files["form.docm"] == docm  # the sender's bytes, under the sender's name
    kept = _part(result, "form.docm")
    assert (kept.action, kept.reason) == (Action.KEPT, Reason.EXCEPTION)
    assert files["other.docx"] != docm  # not named: disarmed
    assert (_part(result, "tool.exe").action, _part(result, "tool.exe").reason) == (
        Action.REMOVED,
        Reason.EXECUTABLE,
    )
    assert "a.zip" in files
    assert files["a.zip"] != _zip()  # an archive is rebuilt, never kept as it came
    assert _part(result, "a.zip").action is Action.SANITIZED
