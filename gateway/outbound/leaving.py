"""The outbound message as it leaves: the sender's bytes, but for Bcc conversion and a DKIM
signature.

No rebuild outbound: the municipality's own mail must reach its recipients as it was written
(a rebuilt mail would break the sender's signatures and formatting). Three changes only:

- Bcc conversion (:mod:`sanitizers.bcc_conversion`) when more than ``[outbound]
  bcc_threshold`` outside recipients are in To and Cc;
- the optional disclaimer (``[outbound] disclaimer``), on mail that takes it without a rebuild
  (:mod:`sanitizers.disclaimer`);
- a DKIM signature (dkimpy) with the key of the From domain (``[[outbound.dkim]]``), which
  municipalities need for their own DMARC; mail from a domain without a key leaves unsigned.

Threat model: the key files are the operator's, read once and kept in memory; a key that
cannot be read or a signature that cannot be made is an internal fault (the mail is deferred,
never sent unsigned when a key is configured for its domain).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

from gateway.configuration.config import Config, tenants_of
from gateway.configuration.settings import DkimKey
from sanitizers.bcc_conversion import convert_to_bcc
from sanitizers.disclaimer import append_disclaimer

# Header fields signed when present (RFC 6376 5.4.1's recommendation, less what relays change).
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)


class SigningError(Exception):
    """A configured DKIM key could not sign (unreadable key, bad message): try again later."""


@dataclass(frozen=True, slots=True)
class Leaving:
    """The message to send and what was changed."""

    message: bytes
    bcc_converted: int
    dkim_domain: str
    disclaimer: bool = False


def from_domain(message: bytes) -> str:
    """The domain of the first From address (what DMARC aligns with), lower-case."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(message)
    addresses = getaddresses([str(v) for v in headers.get_all("From", [])])
    return next((a.rpartition("@")[2].lower() for _, a in addresses if "@" in a), "")


class Signer:
    """DKIM keys by domain, loaded on first use."""

    def __init__(self, keys: tuple[DkimKey, ...]) -> None:
        self.keys = {key.domain.lower().rstrip("."): key for key in keys}
        self._loaded: dict[str, bytes] = {}

    def sign(self, message: bytes) -> tuple[bytes, str]:
        """``message`` with a DKIM-Signature for its From domain, and that domain ("" when
        the domain has no key: unchanged)."""
        domain = from_domain(message)
        key = self.keys.get(domain)
        if key is None:
            return message, ""
        import dkim

        try:
            private = self._loaded.get(domain)
            if private is None:
                private = Path(key.key_file).read_bytes()
                self._loaded[domain] = private
            signature = dkim.sign(
                message,
                key.selector.encode("ascii"),
                domain.encode("ascii"),
                private,
                include_headers=list(SIGNED_HEADERS),
                linesep=b"\r\n",
            )
        except (OSError, dkim.DKIMException, ValueError) as exc:
            raise SigningError(f"DKIM signing for {domain} failed: {type(exc).__name__}") from exc
        return signature + message, domain


def leaving(message: bytes, config: Config, signer: Signer, tenant: str = "") -> Leaving:
    """What goes to the outbound relay for ``message`` (as spooled or quarantined), with the
    Bcc threshold and disclaimer of its sender's ``tenant`` ("" without tenants)."""
    settings = tenants_of(config).outbound(tenant)
    converted, removed = convert_to_bcc(
        message,
        threshold=settings.bcc_threshold,
        is_outside=lambda address: not config.smtp.accepts(address),
    )
    with_disclaimer, appended = append_disclaimer(converted, settings.disclaimer)
    signed, domain = signer.sign(with_disclaimer)
    return Leaving(signed, removed, domain, appended)
