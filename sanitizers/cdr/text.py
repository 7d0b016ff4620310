"""Text-like attachments: decode, then write new UTF-8 text; HTML attachments become text.

Threat model: a "text" file may be mislabelled binary, carry control characters that
confuse a terminal or an editor (escape sequences, NUL, bidi tricks are left to the reader),
hide a second encoding (UTF-7, a BOM that disagrees with the bytes), or be an HTML file that
runs script when opened in a browser. CSV opened in Excel can also carry formulas
(``=cmd|...``, CSV injection).

What is done:

* ``TextSanitizer`` (kind ``text``: .txt, .csv and similar): the bytes are decoded with the
  shared charset logic (:func:`sanitizers.charsets.decode_body`: BOM, the charset the
  attachment's MIME header declares (``CdrContext.charset``), strict UTF-8, the Japanese
  charsets, detection); what :func:`sanitizers.safetext.body_text` removes is
  removed and its other line breaks become LF (``control_characters``); the text is written
  anew as UTF-8. UTF-16 text (Windows Notepad's "Unicode") is recognised by its byte-order mark, or
  without one by the NUL high bytes of its ASCII characters, and decoded as such; other text
  with NUL bytes is binary and removed. A ``.csv`` file gets a UTF-8 byte-order mark
  (``CdrPolicy.text_csv_bom``, on by default) because Excel on Japanese Windows otherwise
  reads a BOM-less CSV as CP932 and shows 文字化け; plain text gets none. The file is named
  by :func:`sanitizers.filenames.delivered_name` for its new type: a name whose extension is
  not a plain text one (.txt, .csv, .tsv, .log, .md, .json, .ics, .vcf) gets ``.txt`` in its
  place, because the same text under .xml/.xhtml runs script in a browser and under
  ``.doc.`` opens in Word. A lossy decode (bytes that fit no charset, lone surrogates) is
  still delivered, with reason ``lossy_decode`` so the notice can say so.
* ``HtmlSanitizer`` (kind ``html``): decoded the same way (a ``<meta charset>`` in the first
  2 KiB counts when the MIME header declares none, or one that fails), converted to plain text by
  :func:`sanitizers.html_text.html_to_text` with the body policy's link mode, and delivered
  as ``<name>.txt`` (action ``converted``, reason ``text_converted``).

``verify`` checks that the output is strict UTF-8 (after an optional BOM) without the removed
control characters.

* CSV/TSV cells that a spreadsheet would evaluate as a formula that can do something
  (``=``, ``@``, tab or CR at the start; ``+`` or ``-`` followed by anything but digits and
  arithmetic) get a leading apostrophe so Excel shows them as text instead of running them
  (DDE, ``HYPERLINK`` exfiltration): item ``csv_formula``, reason ``active_content``. A cell
  that starts with ``+`` or ``-`` but holds only a number or a telephone number
  (``-500``, ``+81-3-1234-5678``, ``+81 (3) 1234``: at worst arithmetic, no function, no
  reference, no DDE) is left unchanged and counted in ``detail``, without alarm.
  ``CdrPolicy.text_csv_neutralize_formulas`` turns this off.
* vCards and calendar files (.vcf, .ics), whose apps make URLs clickable: links of a scheme
  not in ``policy.links.allowed_schemes`` are defanged (``javascript[:]…``): item
  ``unsafe_link``, reason ``external_reference``.

Deliberately left alone: line endings are kept as written (except in a CSV that had to be
rewritten for formulas, which the csv module writes with CRLF); the text is not normalised
(no NFKC, no width changes: 文字化け is a defect, and so is "fixing" someone's full-width
digits).
"""

from __future__ import annotations

import codecs
import csv
import importlib
import io
import re
from pathlib import PurePosixPath
from typing import Any, ClassVar

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.compose import scrub_surrogates
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.filenames import clean_name, delivered_name
from sanitizers.links import UNSAFE_LINK, defang_text
from sanitizers.policy import LinkMode
from sanitizers.safetext import body_text
from sanitizers.vocabulary import Action, Reason, RemovedItem

CONTROL_CHARACTERS = RemovedItem.CONTROL_CHARACTERS
CSV_FORMULA = RemovedItem.CSV_FORMULA
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9][0-9,]*)?(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?%?")
# A signed number or telephone number: digits with separators and arithmetic signs only.
_SIGNED_DIGITS = re.compile(r"[+-][0-9 ().,/+-]*[0-9][0-9 ().,/+-]*")

# Tables a spreadsheet opens: their content type (which names the delivered extension).
_TABLE_TYPES = {".csv": "text/csv", ".tsv": "text/tab-separated-values"}
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# UTF-16 where more than one character in this many is a C0 control is binary, not text.
_CONTROL_SHARE = 20
_BINARY_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")
# Contacts and calendar entries: their apps make URL values clickable, so links of a scheme
# that is not allowed (policy.links.allowed_schemes) are defanged (``unsafe_link``).
_LINKED_SUFFIXES = frozenset({".vcf", ".ics"})


def decode(
    untrusted_data: bytes, declared: str | None, *, html: bool = False
) -> tuple[str, str, bool]:
    """(text, charset, lossy) using the shared charset logic when it is installed (for HTML,
    the charset a ``<meta>`` states counts when none is declared)."""
    try:
        module: Any = importlib.import_module("sanitizers.charsets")
    except ModuleNotFoundError:
        return _decode_locally(untrusted_data)
    decoded = (module.decode_html if html else module.decode_body)(untrusted_data, declared)
    return str(decoded.text), str(decoded.charset), bool(decoded.lossy)


def _decode_locally(untrusted_data: bytes) -> tuple[str, str, bool]:
    if untrusted_data.startswith(codecs.BOM_UTF8):
        untrusted_data = untrusted_data[len(codecs.BOM_UTF8) :]
    for charset in ("utf-8", "cp932", "euc-jp"):
        try:
            return untrusted_data.decode(charset), charset, False
        except UnicodeDecodeError:
            continue
    return untrusted_data.decode("utf-8", errors="replace"), "utf-8", True


def _utf16_codec(untrusted_data: bytes) -> tuple[str, int] | None:
    """(codec, bytes of byte-order mark) when the data is UTF-16 text, else None. Without a
    mark: one byte of every pair is NUL in most of the first 4 KiB (ASCII-range text) and the
    other byte never is."""
    for bom, codec in _UTF16_BOMS:
        if untrusted_data.startswith(bom):
            return codec, len(bom)
    sample = untrusted_data[:4096]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    for high, low, codec in ((1, 0, "utf-16-le"), (0, 1, "utf-16-be")):
        nul_high = sample[high::2].count(0)
        if sample[low::2].count(0) == 0 and nul_high * 10 >= pairs * 6:
            return codec, 0
    return None


def _decode_text(untrusted_data: bytes, declared: str | None) -> tuple[str, str, bool]:
    """(text, charset, lossy): UTF-16 by its mark or shape, else the shared charset logic
    with the charset the attachment declares (``declared``) before detection.
    Empty files and other files with NUL bytes (binary) are not text: removed rather than
    delivered as replacement characters."""
    if not untrusted_data.strip():
        raise SanitizeError(Reason.EMPTY, "no text")
    utf16 = _utf16_codec(untrusted_data)
    if utf16 is not None:
        codec, skip = utf16
        try:
            text, lossy = untrusted_data[skip:].decode(codec), False
        except UnicodeDecodeError:  # lone surrogates or an odd last byte
            text, lossy = untrusted_data[skip:].decode(codec, "replace"), True
        head = text[:2048]
        if _CONTROL_SHARE * len(_BINARY_CONTROL.findall(head)) > len(head):
            raise SanitizeError(Reason.TYPE_MISMATCH, f"not text: binary read as {codec}")
        return text, codec, lossy
    if b"\0" in untrusted_data:
        raise SanitizeError(Reason.TYPE_MISMATCH, "NUL bytes: not text")
    text, charset, lossy = decode(untrusted_data, declared)
    scrubbed, had_surrogates = scrub_surrogates(text)
    return scrubbed, charset, lossy or had_surrogates


def _max_chars(ctx: CdrContext) -> int | None:
    return ctx.full_policy.limits.max_text_chars if ctx.full_policy is not None else None


def _strip_controls(text: str) -> tuple[str, bool]:
    text = text.lstrip("\ufeff")
    cleaned = body_text(text)
    return cleaned, cleaned != text


def _is_signed_number(cell: str) -> bool:
    """A cell that starts with + or - and holds only a number or a telephone number."""
    if cell[:1] not in ("+", "-"):
        return False
    return bool(_PLAIN_NUMBER.fullmatch(cell) and any(c.isdigit() for c in cell)) or bool(
        _SIGNED_DIGITS.fullmatch(cell)
    )


def _is_formula(cell: str) -> bool:
    return cell.startswith(_FORMULA_START) and not _is_signed_number(cell)


def neutralize_formulas(text: str, delimiter: str) -> tuple[str, bool, int]:
    """The CSV text with every formula cell prefixed by ``'``; whether any was found; how
    many cells start with + or - but are only numbers (left unchanged)."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise SanitizeError(Reason.MALFORMED, f"unreadable CSV: {exc}") from exc
    signed = sum(_is_signed_number(cell) for row in rows for cell in row)
    if not any(_is_formula(cell) for row in rows for cell in row):
        return text, False, signed
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows([["'" + c if _is_formula(c) else c for c in row] for row in rows])
    return out.getvalue(), True, signed


def _check_utf8(data: bytes) -> None:
    body = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SanitizeError(Reason.VERIFY_FAILED, "not UTF-8") from exc
    if body_text(text) != text or text.startswith("\ufeff"):
        raise SanitizeError(Reason.VERIFY_FAILED, "control characters left")


class TextSanitizer(CdrSanitizer):
    """Re-encodes text files as UTF-8."""

    kind: ClassVar[str] = "text"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        text, charset, lossy = _decode_text(untrusted_data, ctx.charset)
        if lossy and text.count("\ufffd") * 100 > len(text):
            raise SanitizeError(Reason.TYPE_MISMATCH, f"not text: undecodable as {charset}")
        limit = _max_chars(ctx)
        if limit is not None and len(text) > limit:
            raise LimitExceeded(Reason.LIMIT_SIZE, f"{len(text)} characters")
        text, had_controls = _strip_controls(text)
        content_type = _TABLE_TYPES.get(PurePosixPath(clean_name(filename)).suffix.lower())
        bom = codecs.BOM_UTF8 if content_type and ctx.policy.text_csv_bom else b""
        removed: tuple[RemovedItem, ...] = (CONTROL_CHARACTERS,) if had_controls else ()
        reason = Reason.LOSSY_DECODE if lossy else Reason.CLEAN
        if PurePosixPath(clean_name(filename)).suffix.lower() in _LINKED_SUFFIXES:
            text, defanged = defang_text(text, ctx.allowed_schemes)
            if defanged:
                removed += (UNSAFE_LINK,)
                reason = Reason.EXTERNAL_REFERENCE
        details = [f"from {charset}"]
        if content_type and ctx.policy.text_csv_neutralize_formulas:
            delimiter = "\t" if content_type == "text/tab-separated-values" else ","
            text, had_formulas, signed = neutralize_formulas(text, delimiter)
            if had_formulas:
                removed += (CSV_FORMULA,)
                reason = Reason.ACTIVE_CONTENT
            if signed:
                details.append(f"{signed} cells start with + or - but hold only numbers: kept")
        content_type = content_type or "text/plain"
        filename = delivered_name(filename, content_type)
        if ctx.keep_if_clean:
            # Kept unchanged only when it already is clean UTF-8; otherwise not at all.
            if (
                removed
                or lossy
                or charset.lower().replace("_", "-") not in ("utf-8", "ascii", "us-ascii")
            ):
                return CdrOutcome.drop(Reason.ACTIVE_CONTENT if removed else reason, charset)
            return CdrOutcome(
                action=Action.KEPT,
                reason=Reason.CLEAN,
                data=untrusted_data,
                filename=filename,
                content_type=f"{content_type}; charset=utf-8",
            )
        return CdrOutcome(
            action=Action.SANITIZED,
            reason=reason,
            data=bom + text.encode("utf-8"),
            filename=filename,
            content_type=f"{content_type}; charset=utf-8",
            removed=removed,
            detail="; ".join(details),
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        _check_utf8(data)


class HtmlSanitizer(CdrSanitizer):
    """Turns HTML attachments into plain text files."""

    kind: ClassVar[str] = "html"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        from sanitizers.html_text import html_to_text

        if not untrusted_data.strip():
            raise SanitizeError(Reason.EMPTY, "no text")
        if b"\0" in untrusted_data:
            raise SanitizeError(Reason.TYPE_MISMATCH, "NUL bytes: not text")
        if ctx.keep_if_clean:
            return CdrOutcome.drop(Reason.ACTIVE_CONTENT, "HTML is converted, never kept")
        html, charset, lossy = decode(untrusted_data, ctx.charset, html=True)
        limit = _max_chars(ctx)
        if limit is not None and len(html) > limit:
            raise LimitExceeded(Reason.LIMIT_SIZE, f"{len(html)} characters")
        links = ctx.full_policy.body.links if ctx.full_policy is not None else LinkMode.KEEP
        html, had_surrogates = scrub_surrogates(html)
        text, _ = _strip_controls(html_to_text(html, links))
        return CdrOutcome(
            action=Action.CONVERTED,
            reason=Reason.LOSSY_DECODE if lossy or had_surrogates else Reason.TEXT_CONVERTED,
            data=text.encode("utf-8"),
            filename=delivered_name(filename, "text/plain"),
            content_type="text/plain; charset=utf-8",
            detail=f"from {charset}",
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        _check_utf8(data)
