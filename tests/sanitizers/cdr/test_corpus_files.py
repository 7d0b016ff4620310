"""Sweep the CDR material of ../shared/corpus through the isolated disarmer.

For every file: its kind, the action and reason it gets under the shipped CDR policy
(``sanitize`` for PDF, images, ZIP, text and HTML; ``remove`` for the rest), and for every
sanitized output an independent check (not the sanitizer's code) that nothing dangerous is
left. Files run in isolated child processes with the real limits, so a crash or hang in
pikepdf or Pillow is a ``crash``/``timeout`` removal, never the end of the run. Counts by
action and reason are printed (``pytest -s -m corpus``).

Bounded: files are taken in a fixed order (sorted paths), two workers in parallel, and the
sweep stops taking new files after ``BUDGET_SECONDS``; the count of files not reached is
printed and must be zero on the reference machine (2 cores).
"""

from __future__ import annotations

import io
import re
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from sanitizers.cdr.base import CdrOutcome
from sanitizers.policy import AttachmentAction, AttachmentPolicy, Policy
from sanitizers.vocabulary import Action, Reason
from tests.corpus import CORPUS
from tests.sanitizers.cdr.test_images import metadata_and_trailers
from tests.sanitizers.cdr.test_pdf import dangerous_tokens

SOURCES = (
    "pdfjs",
    "qpdf",
    "pikepdf",
    "py-pdf-sample-files",
    "corkami-pocs",
    "recursive-extractor",
    "py7zr",
    "svg-sanitizer",
    "clamav-testfiles",
)
BUDGET_SECONDS = 150.0
MAX_FILE_BYTES = 8 * 1024 * 1024  # larger corpus files are counted as skipped, not swept
# The shipped default: sanitize OOXML, PDF, images, ZIP and text-like files.
SANITIZE = {
    k: AttachmentAction.SANITIZE
    for k in ("ooxml", "pdf", "image", "zip", "archive", "text", "html")
}
_OOXML_BAD = re.compile(r"(vbaproject|vbadata|activex|embeddings/|macrosheets/|/xlm)", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SKIP_NAMES = {"MANIFEST.tsv", "SOURCES.md"}

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it lives beside the project, in ../shared)")
    files: list[Path] = []
    for source in SOURCES:
        root = CORPUS / source
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name not in _SKIP_NAMES and not path.name.startswith("_"):
                files.append(path)
    return files


def kind_of(data: bytes, name: str) -> str:
    """The file's kind: :func:`sanitizers.filetype.detect` when it exists, else a sniff."""
    try:
        from sanitizers import filetype  # type: ignore[attr-defined]
    except ImportError:
        return _sniff(data, name)
    return str(filetype.detect(data, "application/octet-stream", name).kind)


def _sniff(data: bytes, name: str) -> str:
    lower = name.lower()
    head = data[:16]
    if b"%PDF" in data[:1024]:
        return "pdf"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\0", b"MM\0*")) or (
        head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    ):
        return "image"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "ooxml" if lower.endswith((".docx", ".xlsx", ".pptx", ".docm")) else "zip"
    if head.startswith((b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")):
        return "executable"
    if head.startswith((b"7z\xbc\xaf", b"Rar!", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"MSCF")):
        return "archive"
    if lower.endswith(".svg") or b"<svg" in data[:2048]:
        return "svg"
    if lower.endswith((".html", ".htm")):
        return "html"
    if lower.endswith((".txt", ".csv")):
        return "text"
    return "other"


def independent_findings(data: bytes, kind: str, depth: int = 0) -> set[str]:
    """What an independent check finds in a sanitized output of ``kind``."""
    if kind == "pdf":
        return dangerous_tokens(data)
    if kind == "image":
        return metadata_and_trailers(data)
    if kind in ("text", "html"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return {"not-utf8"}
        return {"control"} if _CONTROL.search(text) else set()
    if kind in ("zip", "archive"):  # every archive kind is delivered as a ZIP
        return _zip_findings(data, depth)
    if kind == "ooxml":
        return _ooxml_findings(data)
    return {f"unexpected-kind:{kind}"}


def _ooxml_findings(data: bytes) -> set[str]:
    """Macro, ActiveX and embedded-object parts, macro content types, external targets."""
    found: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        for name in package.namelist():
            if _OOXML_BAD.search(name):
                found.add(name)
            if name.endswith((".rels", "[Content_Types].xml")):
                text = package.read(name).decode("utf-8", "replace")
                if "macroEnabled" in text or 'TargetMode="External"' in text:
                    found.add(f"{name}:external-or-macro")
    return found


def _zip_findings(data: bytes, depth: int) -> set[str]:
    found: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [info.filename.casefold() for info in archive.infolist()]
        if len(set(names)) != len(names):
            found.add("duplicate")
        for info in archive.infolist():
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                found.add("traversal")
            if info.flag_bits & 1:
                found.add("encrypted")
                continue
            content = archive.read(info)
            inner = kind_of(content, name.rpartition("/")[2])
            if depth < 5 and inner in SANITIZE:
                found |= {f"{name}:{f}" for f in independent_findings(content, inner, depth + 1)}
            elif inner not in SANITIZE:
                found.add(f"{name}:{inner}")
    return found


def _policy() -> Policy:
    return Policy(attachments=AttachmentPolicy(by_kind=SANITIZE))


def test_corpus_sweep(disarmers: list[object]) -> None:
    files = corpus_files()
    policy = _policy()
    results: list[tuple[Path, str, CdrOutcome, set[str]]] = []
    skipped: list[Path] = []
    errors: list[tuple[Path, str]] = []
    lock = threading.Lock()
    queue = list(reversed(files))
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS

    def work(disarmer: object) -> None:
        while True:
            with lock:
                if not queue:
                    return
                path = queue.pop()
                if time.monotonic() > deadline:
                    skipped.append(path)
                    continue
            data = path.read_bytes()
            if len(data) > MAX_FILE_BYTES:
                with lock:
                    skipped.append(path)
                continue
            kind = kind_of(data, path.name)
            action = policy.attachments.action_for(kind)
            try:
                outcome = disarmer.disarm(data, path.name, kind, action, policy)  # type: ignore[attr-defined]
                found: set[str] = set()
                if outcome.data is not None and outcome.action != Action.HELD:
                    found = independent_findings(outcome.data, kind)
            except Exception as exc:
                with lock:
                    errors.append((path, f"{type(exc).__name__}: {exc}"[:300]))
                continue
            with lock:
                results.append((path, kind, outcome, found))

    threads = [threading.Thread(target=work, args=(d,)) for d in disarmers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    by_action = Counter(str(outcome.action) for _p, _k, outcome, _f in results)
    by_reason = Counter(f"{outcome.action}/{outcome.reason}" for _p, _k, outcome, _f in results)
    by_kind = Counter(kind for _p, kind, _o, _f in results)
    removed_items = Counter(code for _p, _k, o, _f in results for code in o.removed)
    print(f"\ncorpus sweep: {len(results)} files in {elapsed:.1f}s, {len(skipped)} not swept")
    print("by kind:", dict(sorted(by_kind.items())))
    print("by action:", dict(sorted(by_action.items())))
    for key, count in sorted(by_reason.items()):
        print(f"  {key:40} {count}")
    print("removed items:", dict(sorted(removed_items.items())))
    faults = [
        (p.relative_to(CORPUS), o.reason, o.detail)
        for p, _k, o, _f in results
        if o.reason in (Reason.CRASH, Reason.TIMEOUT)
    ]
    for fault in faults:
        print("  fault:", *fault)
    for path, _k, outcome, _f in results:
        if outcome.reason in (Reason.ERROR, Reason.LIMIT_SIZE, Reason.VERIFY_FAILED):
            print(f"  {outcome.reason}: {path.relative_to(CORPUS)} {outcome.detail[:120]}")

    for path, error in errors:
        print("  test-side error:", path.relative_to(CORPUS), error)
    assert not errors
    dirty = [(p.relative_to(CORPUS), sorted(f)) for p, _k, _o, f in results if f]
    assert not dirty, f"sanitized outputs with findings: {dirty[:10]}"
    kept_unsafe = [
        p for p, kind, o, _f in results if o.action == Action.KEPT and kind not in SANITIZE
    ]
    assert not kept_unsafe
    # Known-hostile material must never come out unchanged.
    assert by_action.get("kept", 0) == 0
    assert not [p for p in skipped if p.stat().st_size <= MAX_FILE_BYTES], "budget exceeded"
