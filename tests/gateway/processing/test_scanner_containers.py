"""The real clamd sees the files inside containers, as the sanitizers read them: an entry
clamd cannot unpack in the sender's container (LZMA-compressed ZIP members, which clamd
passes unread) is scanned in the rebuilt file before it crosses."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from gateway.processing.scanner import ClamdClient, ScanningDisarmer
from sanitizers.cdr.registry import InProcessDisarmer
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action, Reason
from tests.clamd import MARKER
from tests.sanitizers.cdr import office_fixtures as F

TEXT = b"invoice details " + MARKER + b" end\n"


def zip_of(members: dict[str, bytes], method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def lzma_docx() -> bytes:
    """A docx whose every part is LZMA-compressed, the marker in the document text."""
    with zipfile.ZipFile(io.BytesIO(F.clean_docx())) as source:
        members = {name: source.read(name) for name in source.namelist()}
    members["word/document.xml"] = F.word_document(F.para(TEXT.decode().strip())).encode()
    return zip_of(members, zipfile.ZIP_LZMA)


CONTAINERS = {
    "zip-lzma-text": (lambda: zip_of({"a.txt": TEXT}, zipfile.ZIP_LZMA), "zip", "a.zip"),
    "zip-lzma-nested": (
        lambda: zip_of({"in.zip": zip_of({"b.txt": TEXT}, zipfile.ZIP_LZMA)}, zipfile.ZIP_LZMA),
        "zip",
        "n.zip",
    ),
    "docx-lzma-parts": (lzma_docx, "ooxml", "a.docx"),
}


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_clamd_alone_misses_it_and_the_gateway_does_not(name: str, clamd_socket: Path) -> None:
    build, kind, filename = CONTAINERS[name]
    data = build()
    client = ClamdClient(f"unix:{clamd_socket}", 10.0)
    assert client.scan(data).signature is None  # the gap: clamd cannot read these entries
    disarmer = ScanningDisarmer(InProcessDisarmer(), client)
    outcome = disarmer.disarm(data, filename, kind, AttachmentAction.SANITIZE, Policy())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALWARE), outcome
    assert "Mukaika.Test.Marker" in outcome.detail
    assert outcome.data is None


def test_clean_container_passes(clamd_socket: Path) -> None:
    data = zip_of({"a.txt": b"harmless text\n"}, zipfile.ZIP_LZMA)
    disarmer = ScanningDisarmer(InProcessDisarmer(), ClamdClient(f"unix:{clamd_socket}", 10.0))
    outcome = disarmer.disarm(data, "a.zip", "zip", AttachmentAction.SANITIZE, Policy())
    assert outcome.action == Action.SANITIZED, outcome
