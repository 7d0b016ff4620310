"""Tenants: one municipality each, on one shared gateway (``[[tenants]]``).

A tenant owns its recipient domains, its LGWAN-side MTA (``relay_host``, ``relay_port``), its
own layer of ``[policy]`` and ``[[rules]]`` over the shared ones (inline, or in
``tenants/NAME/local.d/*.toml`` beside the main file), and its own parts of ``[outbound]`` and
``[auth]``. The tenant of a recipient is the tenant whose domains hold its domain (the most
specific one with ``smtp.accept_subdomains``); a message for several tenants is split per tenant
before anything else is done with it (:class:`gateway.configuration.rules.RuleSet`), so no copy
of one tenant's mail carries another's recipients.

Threat model: a tenant's operators must never see, nor their configuration change, another
tenant's mail. A tenant's own files may therefore set only its policy, rules, outbound and
auth parts, never its domains or its LGWAN-side MTA; and a domain belongs to one tenant only.

No tenants configured: every tenant name is "" and the gateway behaves as a single
installation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import Field, ValidationError, field_validator

from gateway.configuration.rules import Rule, deep_merge
from gateway.configuration.settings import AuthSettings, OutboundSettings, domain_name
from sanitizers.section import Section

# Keys a tenant's own local.d files may set in its [[tenants]] table.
TENANT_FILE_KEYS = ("policy", "rules", "outbound", "auth")
# [outbound] keys a tenant may set: where and how its senders' mail leaves, its delay, its
# Bcc conversion, its disclaimer, how long a held mail waits and whether senders are told.
# The others are the one shared listener's (before a mail is read, its tenant is not known)
# or count every sender alike (rate limits, approval groups, DKIM keys per domain).
TENANT_OUTBOUND_KEYS = (
    "relay_host",
    "relay_port",
    "tls",
    "require_tls_domains",
    "delay_seconds",
    "bcc_threshold",
    "disclaimer",
    "approval_expiry_seconds",
    "notify_sender",
)
# [auth] keys a tenant may set: evaluation happens before the 250, for the whole message.
TENANT_AUTH_KEYS = ("authserv_id", "reports")
# A tenant's name: used in directory names, metric labels and the store.
TENANT_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Tenant(Section):
    """One municipality on the shared gateway: its domains, its MTA and its own settings."""

    name: str = Field(pattern=TENANT_NAME)
    """The tenant's name (lower-case letters, digits, - and _): in the store, the audit, the
    metrics and the directory tenants/NAME/local.d of its own files."""
    domains: tuple[str, ...] = Field(min_length=1)
    """The tenant's recipient domains; each belongs to one tenant only. They are accepted
    domains (smtp.accept_domains holds them all)."""
    relay_host: str = Field(min_length=1)
    """The tenant's LGWAN-side MTA: its sanitized mail is delivered there only."""
    relay_port: int = Field(default=25, gt=0, le=65535)
    """Its SMTP port."""
    policy: dict[str, Any] = Field(default_factory=dict)
    """Part of [policy], merged over the shared policy for this tenant's recipients."""
    rules: tuple[Rule, ...] = ()
    """[[tenants.rules]]: rules applied after the shared ones, to this tenant's recipients."""
    outbound: dict[str, Any] = Field(default_factory=dict)
    """Part of [outbound] for this tenant's senders: relay_host, relay_port, tls and
    require_tls_domains (where its mail leaves)."""
    auth: dict[str, Any] = Field(default_factory=dict)
    """authserv_id and [auth.reports] for this tenant."""

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(domain_name(item) for item in value)


def _override(
    base: Section, override: Mapping[str, Any], allowed: Iterable[str], refused: str
) -> list[tuple[str, str]]:
    """``(dotted key, message)`` for each problem of ``override`` over ``base``."""
    problems = [(key, refused) for key in override if key not in allowed]
    if problems:
        return problems
    try:
        type(base).model_validate(deep_merge(base.model_dump(), override))
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or next(iter(override), "")
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append((key, message))
    return problems


def outbound_problems(shared: OutboundSettings, tenant: Tenant) -> list[tuple[str, str]]:
    """Problems of a tenant's [tenants.outbound] over the shared [outbound]."""
    return _override(
        shared,
        tenant.outbound,
        TENANT_OUTBOUND_KEYS,
        "not a tenant's setting (the shared outbound listener's, one for every sender, or "
        f"unknown): a tenant sets only {', '.join(TENANT_OUTBOUND_KEYS)}",
    )


def auth_problems(shared: AuthSettings, tenant: Tenant) -> list[tuple[str, str]]:
    """Problems of a tenant's [tenants.auth] over the shared [auth]."""
    return _override(
        shared,
        tenant.auth,
        TENANT_AUTH_KEYS,
        "a tenant sets only authserv_id and [auth.reports] (mail is evaluated before it is "
        "split per tenant)",
    )


class Tenants:
    """The tenants of one configuration: which tenant a recipient belongs to, and each
    tenant's own settings merged over the shared ones."""

    def __init__(
        self,
        tenants: Iterable[Tenant],
        *,
        subdomains: bool = False,
        outbound: OutboundSettings | None = None,
        auth: AuthSettings | None = None,
    ) -> None:
        self.by_name = {tenant.name: tenant for tenant in tenants}
        self.by_domain = {
            domain: tenant.name for tenant in self.by_name.values() for domain in tenant.domains
        }
        self.subdomains = subdomains
        self._outbound = outbound or OutboundSettings()
        self._auth = auth or AuthSettings()
        self._merged_auth: dict[str, AuthSettings] = {}

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def tenant_of(self, address: str) -> str:
        """The tenant of a recipient (or sender) address; "" for none."""
        text = address.strip().strip("<>").lower()
        if "@" not in text:
            return ""
        domain = text.rpartition("@")[2].rstrip(".")
        found = self.by_domain.get(domain)
        if found is not None:
            return found
        if self.subdomains:
            labels = domain.split(".")
            for start in range(1, len(labels)):
                found = self.by_domain.get(".".join(labels[start:]))
                if found is not None:
                    return found
        return ""

    def relay(self, tenant: str) -> tuple[str, int] | None:
        """The tenant's MTA, or None for "" (the shared delivery.relay_host)."""
        known = self.by_name.get(tenant)
        return None if known is None else (known.relay_host, known.relay_port)

    def outbound(self, tenant: str) -> OutboundSettings:
        """[outbound] with the tenant's part merged over it."""
        known = self.by_name.get(tenant)
        if known is None or not known.outbound:
            return self._outbound
        return OutboundSettings.model_validate(
            deep_merge(self._outbound.model_dump(), known.outbound)
        )

    def reports_enabled(self) -> bool:
        """Whether DMARC aggregate reports are on for the gateway or for any tenant."""
        return self._auth.enabled and (
            self._auth.reports.enabled
            or any(self.auth(name).reports.enabled for name in self.by_name)
        )

    def auth(self, tenant: str) -> AuthSettings:
        """[auth] with the tenant's authserv_id and reports merged over it."""
        known = self.by_name.get(tenant)
        if known is None or not known.auth:
            return self._auth
        merged = self._merged_auth.get(tenant)
        if merged is None:
            merged = AuthSettings.model_validate(deep_merge(self._auth.model_dump(), known.auth))
            self._merged_auth[tenant] = merged
        return merged
