"""Which link targets may stay clickable: one list of URL schemes for bodies and documents.

Threat model: a link whose target is not a web page or a mail address does something when it
is clicked — ``javascript:``/``vbscript:`` run script, ``file:`` and UNC paths fetch from a
share (leaking NTLM credentials) or open a local program, ``ms-msdt:`` (Follina),
``search-ms:``, ``ms-officecmd:`` and other ``ms-*`` handlers start Windows components, and
``data:`` carries a whole document. Such links hide in PDF URI actions, Word HYPERLINK fields,
Excel HYPERLINK formulas, vCards, and in the visible text of a mail, which the reader's mail
client turns back into a link.

So a target is allowed only when its scheme is in ``policy.links.allowed_schemes`` (default
http, https and mailto); a target without a scheme (relative, a UNC path) is never allowed.
Documents lose the other links (the sanitizers report ``unsafe_link``); text gets them
defanged: ``javascript:alert(1)`` becomes ``javascript[:]alert(1)``, which no client links.

Deliberately left alone in text: words before a colon that are not a scheme a client turns
into a link (``TEL:03-1234``, ``件名:``, ``Note:``); UNC paths written as text.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from sanitizers.vocabulary import RemovedItem

# The removed-item code of a link taken out of a document, or defanged in a text body.
UNSAFE_LINK: Final = RemovedItem.UNSAFE_LINK
# How ``LinkMode.DEFANG`` spells the schemes it defangs (and which are then not links).
DEFANGED_SCHEMES: Final = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}
# The shipped default of ``policy.links.allowed_schemes``.
DEFAULT_ALLOWED_SCHEMES: Final = ("http", "https", "mailto")

# What browsers and Office strip around a URL, and drop inside it, before reading its scheme.
_C0_AND_SPACE: Final = "".join(map(chr, range(0x21)))
_SCHEME: Final = re.compile("[A-Za-z][A-Za-z0-9+.-]*")

# Schemes a mail client or Windows makes clickable even without "//" after the colon
# (every scheme written with "//" is treated as clickable). Prefixes cover the families of
# Windows protocol handlers (ms-msdt, ms-officecmd, ms-word, ms-settings, vnd.ms-…).
_CLICKABLE_SCHEMES: Final = frozenset(
    {
        "javascript", "vbscript", "livescript", "data", "file", "mhtml", "mk", "its", "ms-its",
        "hcp", "shell", "search", "search-ms", "jar", "res", "view-source", "ldap", "ldaps",
        "smb",
    }
)  # fmt: skip
_CLICKABLE_PREFIXES: Final = ("ms-", "vnd.ms-")
_DEFANGED: Final = frozenset(DEFANGED_SCHEMES.values())
# A scheme and its colon in text: not preceded by a scheme character (so "xjavascript:" is
# read whole), followed by something other than whitespace.
_TEXT_SCHEME: Final = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]{0,31}):(?=\S)")


def normalize_schemes(schemes: Collection[str]) -> tuple[str, ...]:
    """Lower-cased, validated scheme names (a setting's value); raises ValueError on a bad one."""
    out: list[str] = []
    for scheme in schemes:
        if not _SCHEME.fullmatch(scheme):
            raise ValueError(f"not a URL scheme: {scheme!r}")
        if scheme.lower() not in out:
            out.append(scheme.lower())
    return tuple(out)


def scheme_of(untrusted_url: str) -> str | None:
    """The lower-cased scheme of a link target as a browser or Office reads it, or ``None``
    when it has none (a relative target, a UNC path ``\\\\host\\share``)."""
    url = untrusted_url.strip(_C0_AND_SPACE)
    url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme, colon, _rest = url.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        return None
    return scheme.lower()


def is_allowed(untrusted_url: str, allowed: Collection[str]) -> bool:
    """Whether a link to ``untrusted_url`` may stay clickable."""
    scheme = scheme_of(untrusted_url)
    return scheme is not None and scheme in allowed


def _clickable(scheme: str, after: str) -> bool:
    if scheme in _DEFANGED:
        return False
    return (
        after.startswith(("//", "\\\\"))
        or scheme in _CLICKABLE_SCHEMES
        or scheme.startswith(_CLICKABLE_PREFIXES)
    )


def defang_text(text: str, allowed: Collection[str]) -> tuple[str, int]:
    """``text`` with every clickable link of a scheme not in ``allowed`` defanged
    (``scheme[:]rest``), and how many were."""
    count = 0

    def defang(match: re.Match[str]) -> str:
        nonlocal count
        scheme = match.group(1).lower()
        if scheme in allowed or not _clickable(scheme, text[match.end() : match.end() + 2]):
            return match.group()
        count += 1
        return match.group(1) + "[:]"

    return _TEXT_SCHEME.sub(defang, text), count
