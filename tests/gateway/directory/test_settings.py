"""[directory]: the bind password only in a file, never sent in the clear beyond loopback."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.configuration.settings import DirectorySettings

BASE = {"base_dn": "dc=city,dc=example,dc=lg,dc=jp"}


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"url": "http://dir.example"}, "must be ldap://"),
        ({"url": "ldap://dir.example", "base_dn": ""}, "needs directory.base_dn"),
        ({"url": "ldap://dir.example", "bind_dn": "cn=r", **BASE}, "set together"),
        ({"url": "ldap://dir.example", "tls": "none", **BASE}, "in the clear"),
        ({"url": "ldap://192.0.2.1:389", "tls": "none", **BASE}, "in the clear"),
        ({"bind_password": "secret"}, "Extra inputs"),
    ],
)
def test_unsafe_or_incomplete_settings_are_refused(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        DirectorySettings.model_validate(values)


def test_plain_ldap_to_loopback_and_the_role_map_folded() -> None:
    settings = DirectorySettings.model_validate(
        {
            "url": "ldap://127.0.0.1:3389",
            "tls": "none",
            "role_map": {"CN=Approvers,DC=City": "approver"},
            **BASE,
        }
    )
    assert settings.role_map == {"cn=approvers,dc=city": "approver"}
