"""The outbound listener's relay policy: only the LGWAN-side MTAs' networks."""

from __future__ import annotations

from gateway.configuration.config import Config
from gateway.outbound.listener import client_allowed, outbound_smtp_settings


def test_only_client_networks_may_relay() -> None:
    allowed = client_allowed(("10.1.0.0/16", "2001:db8::/32"))
    assert allowed("10.1.2.3", "x@example.com")
    assert allowed("::ffff:10.1.2.3", "x@example.com")
    assert allowed("2001:db8::5", "x@example.com")
    assert not allowed("10.2.0.1", "x@example.com")
    assert not allowed("", "x@example.com")
    assert not allowed("not an address", "x@example.com")


def test_the_listener_takes_the_outbound_limits() -> None:
    config = Config.model_validate(
        {
            "smtp": {"trusted_networks": ["10.0.0.0/8"]},
            "outbound": {
                "listen": "[::1]:2600",
                "max_message_bytes": 1000,
                "max_recipients": 5,
            },
        }
    )
    settings = outbound_smtp_settings(config)
    assert settings.listen_host == "::1"
    assert (settings.listen_port, settings.max_message_bytes, settings.max_recipients) == (
        2600,
        1000,
        5,
    )
    assert settings.trusted_networks == ()


def test_enabling_needs_networks_and_a_relay() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="client_networks"):
        Config.model_validate({"outbound": {"enabled": True, "relay_host": "r.example"}})
    with pytest.raises(ValidationError, match="relay_host"):
        Config.model_validate({"outbound": {"enabled": True, "client_networks": ["10.0.0.0/8"]}})


def test_listen_is_host_and_port_and_the_old_keys_are_refused() -> None:
    import pytest
    from pydantic import ValidationError

    assert Config().outbound.address == ("127.0.0.1", 2526)
    with pytest.raises(ValidationError, match="HOST:PORT"):
        Config.model_validate({"outbound": {"listen": "127.0.0.1"}})
    for old in ({"listen_host": "0.0.0.0"}, {"listen_port": 2526}):
        with pytest.raises(ValidationError, match=r'replaced by outbound\.listen = "HOST:PORT"'):
            Config.model_validate({"outbound": old})
