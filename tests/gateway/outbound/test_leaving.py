"""What leaves: the sender's bytes, Bcc conversion, a DKIM signature per sending domain."""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.configuration.config import Config
from gateway.outbound.leaving import Signer, SigningError, leaving

RAW = (
    b"From: =?UTF-8?B?5bGx55Sw?= <yamada@city.example.lg.jp>\r\n"
    b"To: a@example.com, b@example.com, kacho@city.example.lg.jp\r\n"
    b"Subject: test\r\nDate: Thu, 03 Dec 2026 10:00:00 +0900\r\n"
    b"Message-ID: <1@city.example.lg.jp>\r\n\r\nbody\r\n"
)


def _key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "city.pem"
    path.write_bytes(pem)
    import base64

    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _config(**outbound: object) -> Config:
    return Config.model_validate(
        {"smtp": {"accept_domains": ["city.example.lg.jp"]}, "outbound": outbound}
    )


def test_signed_with_the_from_domain_key_and_the_signature_verifies(tmp_path: Path) -> None:
    path, record = _key(tmp_path)
    config = _config(
        dkim=[{"domain": "city.example.lg.jp", "selector": "s1", "key_file": str(path)}]
    )
    result = leaving(RAW, config, Signer(config.outbound.dkim))
    assert result.dkim_domain == "city.example.lg.jp"
    assert result.message.startswith(b"DKIM-Signature:")
    assert result.message.endswith(RAW)  # nothing else changed

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.city.example.lg.jp."
        return record

    assert dkim.verify(result.message, dnsfunc=dns)
    tampered = result.message.replace(b"body", b"b0dy")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_other_domains_leave_unsigned_and_an_unreadable_key_defers(tmp_path: Path) -> None:
    config = _config(
        dkim=[{"domain": "other.example.jp", "selector": "s", "key_file": "/nonexistent"}]
    )
    result = leaving(RAW, config, Signer(config.outbound.dkim))
    assert (result.message, result.dkim_domain) == (RAW, "")
    broken = _config(
        dkim=[{"domain": "city.example.lg.jp", "selector": "s", "key_file": str(tmp_path / "no")}]
    )
    with pytest.raises(SigningError):
        leaving(RAW, broken, Signer(broken.outbound.dkim))


def test_bcc_conversion_applies_above_the_threshold() -> None:
    result = leaving(RAW, _config(bcc_threshold=1), Signer(()))
    assert result.bcc_converted == 2
    assert b"To: kacho@city.example.lg.jp\r\n" in result.message
    assert leaving(RAW, _config(bcc_threshold=2), Signer(())).message == RAW


def test_the_disclaimer_comes_before_the_signature(tmp_path: Path) -> None:
    path, record = _key(tmp_path)
    config = _config(
        disclaimer="Sent from City Hall.",
        dkim=[{"domain": "city.example.lg.jp", "selector": "s1", "key_file": str(path)}],
    )
    result = leaving(RAW, config, Signer(config.outbound.dkim))
    assert result.disclaimer
    assert result.message.endswith(b"body\r\n\r\nSent from City Hall.\r\n")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record

    assert dkim.verify(result.message, dnsfunc=dns)  # the signature covers the disclaimer
