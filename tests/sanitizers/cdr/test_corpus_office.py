"""Sweep the Office material of ../shared/corpus (oletools, Apache POI, msoffcrypto-tool)
through the registry and the isolated disarmer.

Policy for the sweep: ``sanitize`` for OOXML and RTF, ``keep_if_clean`` for legacy OLE (so
the detector is exercised; the shipped default removes OLE outright). Zip-packed samples are
opened in memory with the password SOURCES.md gives; nothing is written to disk.

For every file: its kind, action and reason; every sanitized output and every kept file gets
an independent check (oletools on the output, a scan of relationships, rtfobj). Counts by
action, reason and removed item are printed (``pytest -s -m corpus``). Deterministic: sorted
paths; files above ``MAX_FILE_BYTES`` are counted as skipped. Runs in about a minute on two
cores.
"""

from __future__ import annotations

import io
import re
import threading
import time
import warnings
import zipfile
from collections import Counter

import pytest

from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.isolation import IsolatedDisarmer
from sanitizers.policy import AttachmentAction, AttachmentPolicy, Policy
from sanitizers.vocabulary import Action, Reason
from tests.corpus import CORPUS

SOURCES = ("oletools", "apache-poi", "msoffcrypto-tool")
MAX_FILE_BYTES = 8 * 1024 * 1024
BY_KIND = {
    "ooxml": AttachmentAction.SANITIZE,
    "rtf": AttachmentAction.SANITIZE,
    "ole": AttachmentAction.KEEP_IF_CLEAN,
}
_SKIP_NAMES = {"MANIFEST.tsv", "SOURCES.md"}

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def zip_password(source: str) -> bytes | None:
    text = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    match = re.search(rf"{re.escape(source)} zips = ([^;\s]+)", text)
    return match.group(1).encode() if match else None


def corpus_items() -> list[tuple[str, bytes]]:
    """(label, bytes) for every file; password-protected sample zips opened in memory."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it lives beside the project, in ../shared)")
    items: list[tuple[str, bytes]] = []
    for source in SOURCES:
        root = CORPUS / source
        if not root.is_dir():
            continue
        password = zip_password(source)
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name in _SKIP_NAMES or path.name.startswith("_"):
                continue
            label = str(path.relative_to(CORPUS))
            data = path.read_bytes()
            if path.suffix == ".zip" and password and source == "oletools":
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    for info in archive.infolist():
                        if not info.is_dir():
                            inner = archive.read(info, pwd=password)
                            items.append((f"{label}!{info.filename}", inner))
                continue
            items.append((label, data))
    return items


def kind_of(data: bytes, name: str) -> str:
    """The kind sanitizers.filetype would give; a sniff of our own when it is absent."""
    try:
        from sanitizers import filetype
    except ImportError:
        pass
    else:
        return str(filetype.detect(data, "application/octet-stream", name).kind)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if data.startswith(b"{\\rt"):
        return "rtf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return "other"
        return "ooxml" if "[Content_Types].xml" in names else "zip"
    return "other"


def independent_findings(data: bytes, kind: str) -> set[str]:
    """What oletools and plain scans still find in an output (not the sanitizer's code)."""
    from sanitizers.cdr import olescan, ooxml, rtf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # oletools' own, see olescan
        found: set[str] = set()
        if kind == "ooxml":
            found |= olescan.macros(data, "out.docx")
            found |= ooxml.find_dangerous(data)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    head = archive.read(info)[:8]
                    if head == olescan.OLE_MAGIC:
                        found.add(f"ole-part:{info.filename}")
                    if info.filename.endswith(".rels"):
                        text = archive.read(info).decode("utf-8", "replace")
                        if "External" in text:
                            found.add(f"external:{info.filename}")
        elif kind == "rtf":
            found |= rtf.find_dangerous(data)
        elif kind == "ole":
            found |= olescan.macros(data, "kept.doc") | olescan.embedded(data)
            if olescan.is_encrypted(data):
                found.add("encrypted")
        else:
            found.add(f"unexpected-kind:{kind}")
        return found


def test_office_corpus_sweep(disarmers: list[IsolatedDisarmer]) -> None:
    items = corpus_items()
    policy = Policy(attachments=AttachmentPolicy(by_kind=BY_KIND))
    results: dict[str, tuple[str, CdrOutcome, set[str]]] = {}
    skipped: list[str] = []
    errors: list[tuple[str, str]] = []
    lock = threading.Lock()
    queue = list(reversed(items))
    started = time.monotonic()

    def work(disarmer: IsolatedDisarmer) -> None:
        while True:
            with lock:
                if not queue:
                    return
                label, data = queue.pop()
            if len(data) > MAX_FILE_BYTES:
                with lock:
                    skipped.append(label)
                continue
            kind = kind_of(data, label.rsplit("/", 1)[-1])
            action = policy.attachments.action_for(kind)
            try:
                outcome = disarmer.disarm(data, label.rsplit("/", 1)[-1], kind, action, policy)
                found: set[str] = set()
                if outcome.data is not None:
                    found = independent_findings(outcome.data, kind)
            except Exception as exc:
                with lock:
                    errors.append((label, f"{type(exc).__name__}: {exc}"[:300]))
                continue
            with lock:
                results[label] = (kind, outcome, found)

    threads = [threading.Thread(target=work, args=(d,)) for d in disarmers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    by_kind = Counter(kind for kind, _o, _f in results.values())
    by_action = Counter(str(o.action) for _k, o, _f in results.values())
    by_reason = Counter(f"{k}: {o.action}/{o.reason}" for k, o, _f in results.values())
    items_removed = Counter(code for _k, o, _f in results.values() for code in o.removed)
    print(f"\noffice corpus: {len(results)} files in {elapsed:.1f}s, {len(skipped)} skipped (size)")
    print("by kind:", dict(sorted(by_kind.items())))
    print("by action:", dict(sorted(by_action.items())))
    for key, count in sorted(by_reason.items()):
        print(f"  {key:45} {count}")
    print("removed items:", dict(sorted(items_removed.items())))
    for label, (_k, outcome, _f) in sorted(results.items()):
        if outcome.reason in (Reason.CRASH, Reason.TIMEOUT, Reason.ERROR, Reason.VERIFY_FAILED):
            print(f"  {outcome.reason}: {label} {outcome.detail[:120]}")
    for label, error in errors:
        print("  test-side error:", label, error)

    assert not errors
    assert len(results) + len(skipped) == len(items)
    dirty = [(label, sorted(f)) for label, (_k, _o, f) in results.items() if f]
    assert not dirty, f"outputs with findings: {dirty[:10]}"
    faults = [label for label, (_k, o, _f) in results.items() if o.reason in (Reason.CRASH,)]
    assert not faults, faults
    never_kept = [
        label
        for label, (kind, o, _f) in results.items()
        if o.action in (Action.KEPT, Action.SANITIZED) and kind not in BY_KIND
    ]
    assert not never_kept

    def outcome_of(label: str) -> CdrOutcome | None:
        found = results.get(label)
        return None if found is None else found[1]

    base = "oletools/tests/test-data/"
    expectations = {
        "msodde/dde-test.docx": (Action.SANITIZED, "dde"),
        "oleobj/embedded-simple-2007.docx": (Action.SANITIZED, None),
        "excel4-macros/excel4_sample_macro.xlsm": (Action.SANITIZED, "xlm_macro"),
        "excel4-macros/excel4_sample_macro.xls": (Action.REMOVED, "xlm_macro"),
        "olevba/sample_with_vba.ppt": (Action.REMOVED, "vba"),
        "encrypted/encrypted.docx": (Action.HELD, None),  # awaiting a password
        "encrypted/encrypted.doc": (Action.HELD, None),
        "oleobj/sample_with_calc_embedded.doc": (Action.REMOVED, "ole_object"),
    }
    for name, (action, code) in expectations.items():
        got = outcome_of(base + name)
        if got is None:
            continue
        assert got.action == action, (name, got)
        if code is not None:
            assert code in got.removed, (name, got.removed)
    for name in ("encrypted/encrypted.docx", "encrypted/encrypted.doc", "encrypted/encrypted.xls"):
        got = outcome_of(base + name)
        assert got is None or got.reason == Reason.ENCRYPTED, (name, got)
