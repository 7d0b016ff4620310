"""The outbound listener: the LGWAN-side MTA hands mail for the Internet to mukaika here.

Threat model: this port relays to the Internet, so it must never become an open relay. Only
clients in ``[outbound] client_networks`` may give recipients (anyone else: ``554 5.7.1`` at
RCPT); the Internet-facing listener keeps its own strict policy (an outside client may never
send to an outside domain). Every other limit of the SMTP module applies (smuggling guard,
time limits, ``451`` for internal faults), with the outbound size and recipient limits.
``accept`` spools each message with direction ``outbound`` before ``250``; the listener runs
in the gateway's process (outbound mail is the municipality's own, a small share of traffic).
With ``[outbound] auth`` its clients must also log in (:mod:`.auth`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from gateway.configuration.config import Config
from gateway.configuration.settings import SmtpSettings
from gateway.receiving.smtp import Accept, SmtpLogin, SmtpServer
from sanitizers.vocabulary import SmtpRefusal


def outbound_smtp_settings(config: Config) -> SmtpSettings:
    """The SMTP limits of the outbound listener: the Internet-facing ones, with the outbound
    address, size and recipient limits (and no domains of its own: its relay policy is the
    client network)."""
    outbound = config.outbound
    host, port = outbound.address
    return config.smtp.model_copy(
        update={
            "listen_host": host,
            "listen_port": port,
            "max_message_bytes": outbound.max_message_bytes,
            "max_recipients": outbound.max_recipients,
            "trusted_networks": (),
        }
    )


def client_allowed(networks: tuple[str, ...]) -> Callable[[str, str], bool]:
    """The relay policy of the outbound listener: the client is in one of ``networks``."""
    parsed = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def allowed(client: str, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(client)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in parsed)

    return allowed


def outbound_listener(
    config: Config,
    accept: Accept,
    free_bytes: Callable[[], int],
    on_reject: Callable[[SmtpRefusal], None],
    login: SmtpLogin | None = None,
) -> SmtpServer:
    """The listener; ``login``: SMTP AUTH required of its clients (:mod:`.auth`)."""
    return SmtpServer(
        outbound_smtp_settings(config),
        accept,
        free_bytes,
        on_reject=on_reject,
        relay_policy=client_allowed(config.outbound.client_networks),
        login=login,
    )
