"""What a decoding returns, and what it may assume about the message it is part of.

``Decoded`` carries the text and how it was obtained. ``Preferences`` (the Japanese prior, the
sender's mobile carrier) are set per message by the pipeline with ``preferences(...)`` and read
by the decoders through a context variable, so that every decode of one message (headers, file
names, bodies) applies the same operator setting without threading it through every caller.
The carrier comes from the sender's address, which the sender chooses: it only decides which
carrier's emoji table reads CP932 user-defined codes, and whether ISO-2022-JP codes that are
both au emoji and IBM-extension kanji are read as emoji.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_JAPANESE_PRIOR", "Decoded", "Preferences", "carrier_of", "preferences"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text decoded from untrusted bytes, with how it was decoded."""

    text: str
    charset: str
    lossy: bool
    detected: bool
    # Header text only: the unsafe classes of sanitizers.safetext that were removed.
    removed: frozenset[str] = frozenset()
    # Header text only: the text before those characters and the spaces at its ends were
    # taken out (None when nothing was), to tell a reader what the sender wrote.
    untrusted_text: str | None = field(default=None, compare=False)


# How strongly a valid Japanese reading is preferred to a Chinese or Korean one (see
# ``detection._foreign_reading``); the default of ``policy.charsets.japanese_prior``.
DEFAULT_JAPANESE_PRIOR: Final = 0.15
# Mail domains of the Japanese mobile carriers whose phones write their own emoji codes: au by
# KDDI (and UQ mobile on the same mail system; its ISO-2022-JP mail puts emoji in JIS rows
# 0x75-0x7C), NTT DoCoMo, SoftBank (and the former Vodafone and J-Phone domains it kept).
_CARRIER_DOMAINS: Final = {
    "au": ("ezweb.ne.jp", "au.com", "uqmobile.jp"),
    "docomo": ("docomo.ne.jp",),
    "softbank": ("softbank.ne.jp", "i.softbank.jp", "disney.ne.jp", "vodafone.ne.jp"),
}


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a decoding may assume about the mail it is part of (set per message)."""

    japanese_prior: float = DEFAULT_JAPANESE_PRIOR
    # The sender's mobile carrier, when its address says so ("au", "docomo", "softbank");
    # None when unknown.
    carrier: str | None = None


_PREFERENCES: Final[ContextVar[Preferences | None]] = ContextVar(
    "mukaika_charset_preferences", default=None
)
_DEFAULT_PREFERENCES: Final = Preferences()


def _preferences() -> Preferences:
    return _PREFERENCES.get() or _DEFAULT_PREFERENCES


@contextmanager
def preferences(chosen: Preferences) -> Iterator[None]:
    """Decode with ``chosen`` inside the ``with`` block (one message's sanitization)."""
    token = _PREFERENCES.set(chosen)
    try:
        yield
    finally:
        _PREFERENCES.reset(token)


def carrier_of(untrusted_address: str) -> str | None:
    """The mobile carrier whose emoji the mail of ``untrusted_address`` may carry, or None."""
    domain = untrusted_address.rpartition("@")[2].strip().strip(">").lower()
    for carrier, domains in _CARRIER_DOMAINS.items():
        if any(domain == known or domain.endswith("." + known) for known in domains):
            return carrier
    return None


# A decoding attempt that succeeded: the text and the (normalised) charset really used.
_Result = tuple[str, str]
# A lenient decoding: text, charset, lossy.
_Lenient = tuple[str, str, bool]
_Convert = Callable[[bytes], str]
