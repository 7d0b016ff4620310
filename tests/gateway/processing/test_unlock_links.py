"""Signed PPAP links: what one carries, and every way a link that is not good is refused."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from itsdangerous import URLSafeSerializer

from gateway.processing.unlock_links import (
    PAGE_PATH,
    SALT,
    LinkRefusal,
    LinkRefused,
    UnlockLinks,
)

KEY = "k" * 64
OTHER_KEY = "o" * 64
REF = "20261203T200000Z-0123456789ab"
OTHER_REF = "20261203T200000Z-ba9876543210"
NOW = 1_800_000_000.0


def _links(key: str = KEY, now: float = NOW, lifetime: float = 3600) -> UnlockLinks:
    return UnlockLinks(key, "https://mukaika.example.lg.jp/console/", lifetime, clock=lambda: now)


def _token(url: str) -> str:
    prefix = "https://mukaika.example.lg.jp/console/" + PAGE_PATH
    assert url.startswith(prefix)
    return url[len(prefix) :]


def test_a_link_names_its_message_recipient_and_expiry() -> None:
    url, expires = _links().sign(REF, "Keiri@City.Example.lg.jp")
    claim = _links().verify(_token(url))
    assert (claim.reference, claim.recipient, claim.expires) == (
        REF,
        "keiri@city.example.lg.jp",
        expires,
    )
    assert expires == NOW + 3600
    assert len(url) < 200  # short enough to copy through screen transfer


def test_one_link_per_recipient() -> None:
    links = _links().links(REF, ["a@x.lg.jp", "b@x.lg.jp"])
    assert [rcpt for rcpt, _ in links] == ["a@x.lg.jp", "b@x.lg.jp"]
    claims = [_links().verify(_token(url)) for _, url in links]
    assert [c.recipient for c in claims] == ["a@x.lg.jp", "b@x.lg.jp"]
    assert links[0][1] != links[1][1]


def test_an_expired_link_is_refused() -> None:
    url, expires = _links().sign(REF, "a@x.lg.jp")
    assert _links(now=expires - 1).verify(_token(url)).reference == REF
    for later in (expires, expires + 1, expires + 10**6):
        with pytest.raises(LinkRefused) as raised:
            _links(now=later).verify(_token(url))
        assert raised.value.reason is LinkRefusal.EXPIRED


def _payload(token: str) -> list[object]:
    body = token.split(".")[0]
    decoded: list[object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def _reencode(payload: list[object], signature: str) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + signature


@pytest.mark.parametrize(
    "change",
    [
        lambda p: [OTHER_REF, p[1], p[2]],  # another message
        lambda p: [p[0], "boss@x.lg.jp", p[2]],  # another recipient
        lambda p: [p[0], p[1], int(str(p[2])) + 10**6],  # a later expiry
    ],
)
def test_a_changed_link_is_refused(change: object) -> None:
    url, _ = _links().sign(REF, "a@x.lg.jp")
    token = _token(url)
    signature = token.rsplit(".", 1)[1]
    forged = _reencode(change(_payload(token)), signature)  # type: ignore[operator]
    with pytest.raises(LinkRefused) as raised:
        _links().verify(forged)
    assert raised.value.reason is LinkRefusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.def", "x" * 5000, "\x00\u202e.sig", "W10.sig"],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(LinkRefused) as raised:
        _links().verify(token)
    assert raised.value.reason is LinkRefusal.BAD_SIGNATURE


def test_another_key_or_purpose_is_refused() -> None:
    url, _ = _links(key=OTHER_KEY).sign(REF, "a@x.lg.jp")
    with pytest.raises(LinkRefused):
        _links().verify(_token(url))
    # Signed with the right key for another purpose (e.g. a session): not a link.
    other_purpose = URLSafeSerializer(KEY, salt="django.session").dumps([REF, "a@x.lg.jp", 2**40])
    with pytest.raises(LinkRefused):
        _links().verify(other_purpose)


@pytest.mark.parametrize(
    "payload",
    [
        ["../../etc/passwd", "a@x.lg.jp", 2**40],  # not a reference
        [REF, "", 2**40],
        [REF, "a" * 300, 2**40],
        [REF, "a@x.lg.jp", True],
        [REF, "a@x.lg.jp", "2000000000"],
        [REF, "a@x.lg.jp"],
        {"r": REF},
    ],
)
def test_a_signed_payload_that_is_no_link_is_refused(payload: object) -> None:
    # Only a key shared by mistake could sign these; they are refused all the same.
    token = URLSafeSerializer(
        KEY, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    ).dumps(payload)
    with pytest.raises(LinkRefused):
        _links().verify(token)
