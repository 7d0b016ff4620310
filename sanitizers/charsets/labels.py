"""Charset labels to plans: the steps to try, in order, for a label the sender wrote.

Threat model: the label is untrusted text. It is looked up only if it looks like a charset
name, only text codecs are used, and transformations (``idna``, ``unicode_escape``, …) are
refused. Superset codecs stand for the labels mail software means: GB2312/GBK as GB18030,
EUC-KR as CP949, ISO-8859-1 as windows-1252 (ISO-8859-1 only when windows-1252 rejects a byte);
Shift_JIS and its aliases as CP932; every EUC-JP label as euc_jp, then CP51932/eucJP-ms, then
EUC-JIS-2004.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache
from typing import Final

from sanitizers.charsets.decoded import _Result
from sanitizers.charsets.steps import _strict

_Plan = tuple[str, ...]
_EUC_JP_PLAN: Final = ("euc-jp", "cp51932", "euc_jis_2004")
_PLAN_ALIASES: Final[dict[_Plan, tuple[str, ...]]] = {
    ("utf-8",): ("utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8"),
    ("us-ascii",): (
        "us-ascii",
        "ascii",
        "us",
        "ansi_x3.4-1968",
        "ansi_x3.4-1986",
        "iso646-us",
        "iso-ir-6",
        "iso_646.irv:1991",
        "cp367",
        "ibm367",
        "csascii",
    ),
    ("iso-2022-jp",): (
        "iso-2022-jp",
        "iso2022jp",
        "iso2022_jp",
        "csiso2022jp",
        "iso-2022-jp-ms",
        "iso-2022-jp-1",
        "cp50220",
        "cp50221",
        "cp50222",
        "x-cp50220",
        "x-cp50221",
        "x-cp50222",
        "jis",
    ),
    ("iso-2022-jp", "iso2022_jp_2"): ("iso-2022-jp-2", "csiso2022jp2"),
    ("iso-2022-jp", "iso2022_jp_2004"): ("iso-2022-jp-3", "iso-2022-jp-2004"),
    ("cp932",): (
        "cp932",
        "ms932",
        "x-ms-cp932",
        "windows-31j",
        "cswindows31j",
        "shift_jis",
        "shift-jis",
        "shiftjis",
        "sjis",
        "s-jis",
        "x-sjis",
        "ms_kanji",
        "ms-kanji",
        "csshiftjis",
        "sjis-open",
        "sjis-win",
        "ibm-943",
        "x-mac-japanese",
    ),
    ("shift_jis_2004", "cp932"): ("shift_jis_2004", "shift-jis-2004", "shift_jisx0213"),
    _EUC_JP_PLAN: (
        "euc-jp",
        "euc_jp",
        "eucjp",
        "x-euc-jp",
        "x-euc",
        "ujis",
        "cseucpkdfmtjapanese",
        "cp51932",
        "ms51932",
        "eucjp-win",
        "eucjp-ms",
        "euc-jp-ms",
        "eucjp-open",
    ),
    ("euc_jis_2004", "euc-jp"): ("euc-jis-2004", "euc_jis_2004", "euc-jisx0213"),
}
# Every name this module reports in ``Decoded.charset`` is a label here or a Python codec name.
_PLANS: Final = {label: plan for plan, labels in _PLAN_ALIASES.items() for label in labels}
# Supersets that mail software means when it writes these labels (Python codec names).
_SUPERSETS: Final[dict[str, _Plan]] = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "euc_kr": ("cp949",),
    "iso8859-1": ("cp1252", "iso8859-1"),
}
# Text codecs that are transformations, not charsets of mail text.
_REFUSED_CODECS: Final = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "charmap"}
)
_LABEL_SYNTAX: Final = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")


@lru_cache(maxsize=256)
def _plan(untrusted_label: str | None) -> _Plan | None:
    """The steps for a declared charset label, or None when it is missing or unusable."""
    if untrusted_label is None:
        return None
    label = untrusted_label.strip().strip("\"'").strip().lower()
    known = _PLANS.get(label)
    if known is not None or not _LABEL_SYNTAX.fullmatch(label):
        return known
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    name = info.name
    if not getattr(info, "_is_text_encoding", True) or name.replace("_", "-") in _REFUSED_CODECS:
        return None
    return _SUPERSETS.get(name, (name,))


def _strict_plan(plan: _Plan, data: bytes) -> _Result | None:
    for step in plan:
        result = _strict(step, data)
        if result is not None:
            return result
    return None
