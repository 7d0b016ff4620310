"""Turn untrusted bytes from a mail into exact text, and Japanese text back into ISO-2022-JP.

Intent: Japanese text is preserved exactly (DESIGN rule 6). The charset a message declares is a
hint, never a fact: it may be missing, unknown, wrong, or carry Windows extensions that the
standard codecs reject. Every decode here either succeeds strictly, or says so: ``lossy`` is True
when some input was replaced by U+FFFD (never by another real character), or when the bytes read
as well in two charsets and the evidence cannot settle which (the text is then the more
plausible reading, and the reader is told it may be wrong); and
``detected`` is True when the declared charset was missing, unknown or wrong and another one
was chosen.

Threat model: every byte and every charset label comes from the sender.

* Labels are looked up only if they look like charset names, only text codecs are used, and
  codecs that are transformations rather than charsets (``unicode_escape``, ``idna``,
  ``punycode``, ``rot13``, ``base64``, …) are refused.
* Header text (``decode_header``, ``decode_param``, ``decode_header_bytes``) is
  :func:`sanitizers.safetext.display_text`: line breaks and tabs become a space, the other
  unsafe characters (controls, bidi controls, lone surrogates) are deleted and named in
  ``Decoded.removed``. That is a safety transformation, not a decoding failure, so it does not
  set ``lossy``. The result is display text, not a re-parseable header: a decoded display name
  may contain ``"``, ``,`` or ``<``, and callers must quote or re-encode.
* Bodies (``decode_body``, ``decode_html``) are decoded as they are; what to do with controls is
  the caller's job.
* Nothing here raises on bad input; cost is linear in the input (charset-normalizer, used only
  for mail that is neither UTF-8 nor Japanese, bounds its own work).

The modules, in the order a byte meets them:

* :mod:`.decoded`: ``Decoded`` and the per-message ``Preferences`` (``japanese_prior``, the
  sender's carrier), set by the pipeline with ``preferences(...)``.
* :mod:`.jis`: JIS X 0208 read as CP932 reads it (NEC row 13, the NEC-selected IBM extensions,
  the six JIS/Windows mapping traps: 0x2141 is U+FF5E ～, not U+301C 〜).
* :mod:`.iso2022jp`: ISO-2022-JP as Japanese mail really writes it (CP50220-50222 forms: SO/SI
  and ``ESC ( I`` half-width katakana, ``ESC ( J``, JIS X 0212; JIS X 0213 by Python's codecs;
  au emoji in JIS rows 0x75-0x7C).
* :mod:`.steps`: one named way to decode bytes strictly or leniently (EUC-JP as ``euc_jp``, then
  CP51932/eucJP-ms with the IBM extensions at 0x8FF3F3-0x8FF4FE; CP932 without its user-defined
  area, where the carriers' Shift_JIS emoji are).
* :mod:`.labels`: charset labels to plans (supersets: GB2312/GBK as GB18030, EUC-KR as CP949,
  ISO-8859-1 as windows-1252).
* :mod:`.detection`: the order of choice when the declared charset is missing, unknown or wrong,
  with the Japanese prior; HTML ``<meta>`` charsets; UTF-16 by its BOM.
* :mod:`.header_text`: RFC 2047 encoded-words, RFC 2231 values and raw 8-bit header text.
* :mod:`.encode`: ``encode_iso2022jp`` (CP50221: half-width katakana with ``ESC ( I``, the IBM
  extensions as their NEC equivalents).
"""

from __future__ import annotations

from sanitizers.charsets.decoded import (
    DEFAULT_JAPANESE_PRIOR,
    Decoded,
    Preferences,
    carrier_of,
    preferences,
)
from sanitizers.charsets.detection import decode_body, decode_html, html_charset
from sanitizers.charsets.encode import encode_iso2022jp
from sanitizers.charsets.header_text import (
    decode_header,
    decode_header_bytes,
    decode_param,
    decode_raw_runs,
    header_bytes,
    join_decoded,
)

__all__ = [
    "DEFAULT_JAPANESE_PRIOR",
    "Decoded",
    "Preferences",
    "carrier_of",
    "decode_body",
    "decode_header",
    "decode_header_bytes",
    "decode_html",
    "decode_param",
    "decode_raw_runs",
    "encode_iso2022jp",
    "header_bytes",
    "html_charset",
    "join_decoded",
    "preferences",
]
