"""Matching a mail address against selectors: whole addresses, domains, sub-domains.

One rule for every list of addresses and domains in the configuration ([[rules]] recipients
and senders, [[outbound.groups]] senders, [policy.outbound] recipient_domains): an entry with
``@`` is a whole address; without, a domain (exact); ``*.example.jp`` matches the sub-domains
of ``example.jp`` only. Comparison is case-insensitive; the null sender or a bare name matches
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable


def address_matches(address: str, selectors: Iterable[str]) -> bool:
    """Whether ``address`` is one of ``selectors`` or in one of their domains."""
    text = address.strip().strip("<>").lower()
    if not text or "@" not in text:
        return False
    domain = text.rpartition("@")[2].rstrip(".")
    for selector in selectors:
        wanted = selector.strip().lower()
        if "@" in wanted:
            if text == wanted:
                return True
        elif wanted.startswith("*."):
            if domain.endswith(wanted[1:].rstrip(".")):
                return True
        elif domain == wanted.rstrip("."):
            return True
    return False
