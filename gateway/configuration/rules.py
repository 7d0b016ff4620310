"""Sanitization rules and exceptions (例外措置): which policy applies to which recipient.

A rule selects messages by recipient, sender and client network and overrides part of the
policy (``[policy]`` of the configuration) for them::

    [[rules]]
    name = "finance-keeps-clean-pdf"
    recipients = ["keiri@example.lg.jp", "zaimu.example.lg.jp"]   # address or domain
    senders = ["bank.example.co.jp"]                              # address or domain
    networks = ["203.0.113.0/24"]                                 # client network (CIDR)
    auth = ["dmarc=fail"]                                         # sender authentication
    [rules.policy.attachments.by_kind]
    pdf = "keep_if_clean"

Matching: a criterion that is given must match, all given criteria must match (a rule with no
criterion matches every message). ``auth`` entries are ``method=result`` (methods ``spf``,
``dkim``, ``dmarc``, ``arc``; results as in Authentication-Results: ``pass``, ``fail``,
``softfail``, ``neutral``, ``none``, ``temperror``, ``permerror``); one of them must be among
the message's results (``[auth]`` must be enabled: a message not evaluated matches no
``auth`` entry). An entry with ``@`` is a whole address; without, a domain
(exact); ``*.example.jp`` matches the sub-domains of ``example.jp`` only. Comparison is
case-insensitive. Recipients are matched one by one: a message whose recipients resolve to
different tenants (:mod:`.tenants`) or different sets of rules is split, and each group's copy
is sanitized with its own policy; a tenant's rules apply to its own recipients only.

Order: rules are evaluated in configuration order (the main file first, then the ``local.d``
files in sorted name order, each top to bottom). **Every** matching rule applies; a later rule
overrides an earlier one key by key (the same way a later file overrides an earlier one), so
put general rules first and specific ones after them.

Exceptions: a rule with ``exception = true`` weakens the policy by an approved decision; it
must carry ``approved_by``, ``reason`` and ``expires`` (a date). From the day after
``expires`` (local date of the gateway host) it is skipped, reported by ``check-config`` and
counted in ``mukaika_expired_exceptions``. Messages it applied to name it in their audit line
(``exceptions``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from sanitizers.addresses import address_matches
from sanitizers.policy import Policy
from sanitizers.senderauth import AUTH_METHODS, AUTH_RESULTS, AuthOutcome

if TYPE_CHECKING:
    from gateway.configuration.tenants import Tenants

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Today = Callable[[], date]


def _check_selector(value: str) -> str:
    text = value.strip().lower()
    if not text:
        raise ValueError("an empty address or domain")
    local, at, domain = text.rpartition("@")
    if at and (not local or not domain):
        raise ValueError(f"{value!r} is neither an address nor a domain")
    host = domain[2:] if domain.startswith("*.") else domain
    if not host or any(c.isspace() for c in host) or "@" in host or not all(host.split(".")):
        raise ValueError(f"{value!r} is not a valid domain")
    return text


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge recursively; any other value in ``override`` replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def override_problems(base: Policy, override: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(dotted key, message)`` for each problem of ``override`` merged over ``base``."""
    try:
        Policy.model_validate(deep_merge(base.model_dump(), override))
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append((key, message))
        return problems
    return []


class Rule(BaseModel):
    """One ``[[rules]]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=100)
    recipients: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    auth: tuple[str, ...] = ()
    # A partial policy: any key of ``[policy]``; validated over the configuration's policy.
    policy: dict[str, Any] = Field(default_factory=dict)
    exception: bool = False
    approved_by: str = ""
    reason: str = ""
    expires: date | None = None

    @field_validator("recipients", "senders")
    @classmethod
    def _selectors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_selector(item) for item in value)

    @field_validator("auth")
    @classmethod
    def _auth_results(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        checked = []
        for item in value:
            method, _, result = item.strip().lower().partition("=")
            if method not in AUTH_METHODS or result not in AUTH_RESULTS:
                raise ValueError(
                    f"{item!r}: expected method=result, method one of {', '.join(AUTH_METHODS)}, "
                    f"result one of {', '.join(AUTH_RESULTS)}"
                )
            checked.append(f"{method}={result}")
        return tuple(checked)

    @field_validator("networks", mode="before")
    @classmethod
    def _strict_networks(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            checked: list[Network] = []
            for item in value:
                try:
                    checked.append(ipaddress.ip_network(str(item), strict=True))
                except ValueError as exc:
                    raise ValueError(f"{item!r}: {exc}") from exc
            return tuple(checked)
        return value

    @_model_validator(mode="after")
    def _exception_is_recorded(self) -> Rule:
        if self.exception:
            missing = [
                key
                for key, value in (
                    ("approved_by", self.approved_by.strip()),
                    ("reason", self.reason.strip()),
                    ("expires", self.expires),
                )
                if not value
            ]
            if missing:
                raise PydanticCustomError(
                    "exception_unrecorded",
                    "exception '{name}' without {missing} (an exception needs approved_by, "
                    "reason and expires)",
                    {"name": self.name, "missing": ", ".join(missing)},
                )
        return self

    # -- matching --------------------------------------------------------------------------

    def expired(self, today: date) -> bool:
        return self.exception and self.expires is not None and today > self.expires

    def matches(
        self, *, sender: str, recipient: str, client: str, auth: AuthOutcome | None = None
    ) -> bool:
        if self.auth and (auth is None or not any(auth.matches(item) for item in self.auth)):
            return False
        if self.recipients and not address_matches(recipient, self.recipients):
            return False
        if self.senders and not address_matches(sender, self.senders):
            return False
        if self.networks:
            address = _client_address(client)
            if address is None or not any(address in net for net in self.networks):
                return False
        return True


def _client_address(client: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of an envelope's ``client`` (``1.2.3.4``, ``[::1]:25``, ``1.2.3.4:25``)."""
    text = client.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class PolicyGroup:
    """Recipients of one message that share one tenant and the same matching rules, and
    their policy."""

    recipients: tuple[str, ...]
    rules: tuple[str, ...]  # names of the rules that applied, in order
    exceptions: tuple[str, ...]  # those of them that are exceptions
    policy: Policy
    tenant: str = ""  # "" without tenants


class RuleSet:
    """The rules of one configuration over its base policy; resolves policies per recipient.

    With tenants, a recipient's tenant is resolved first: its policy is the shared one with
    the tenant's ``policy`` over it, and its rules the shared ones followed by the tenant's
    (another tenant's rules never apply). ``today`` is the clock used for expiry (injectable
    for tests). Effective policies are cached per tenant and combination of rules: they are
    validated once.
    """

    def __init__(
        self,
        base: Policy,
        rules: Iterable[Rule],
        today: Today = date.today,
        tenants: Tenants | None = None,
    ) -> None:
        self.base = base
        shared = tuple(rules)
        self.tenants = tenants
        own = [] if tenants is None else list(tenants.by_name.values())
        self.rules = shared + tuple(rule for tenant in own for rule in tenant.rules)
        # The tenant each rule belongs to ("" for the shared ones).
        self.owners = ("",) * len(shared) + tuple(
            tenant.name for tenant in own for _ in tenant.rules
        )
        self.today = today
        self._cache: dict[tuple[str, tuple[int, ...]], Policy] = {}

    def expired(self) -> list[Rule]:
        """Exceptions past their expiry date (skipped when matching)."""
        today = self.today()
        return [rule for rule in self.rules if rule.expired(today)]

    def tenant_of(self, recipient: str) -> str:
        """The tenant of ``recipient``; "" without tenants or outside their domains."""
        return "" if self.tenants is None else self.tenants.tenant_of(recipient)

    def matching(
        self,
        *,
        sender: str,
        recipient: str,
        client: str,
        auth: AuthOutcome | None = None,
        tenant: str = "",
    ) -> tuple[int, ...]:
        today = self.today()
        return tuple(
            index
            for index, rule in enumerate(self.rules)
            if self.owners[index] in ("", tenant)
            and not rule.expired(today)
            and rule.matches(sender=sender, recipient=recipient, client=client, auth=auth)
        )

    def policy_for(self, indexes: tuple[int, ...], tenant: str = "") -> Policy:
        policy = self._cache.get((tenant, indexes))
        if policy is None:
            own = None if self.tenants is None else self.tenants.by_name.get(tenant)
            if not indexes and (own is None or not own.policy):
                policy = self.base
            else:
                data = self.base.model_dump()
                if own is not None:
                    data = deep_merge(data, own.policy)
                for index in indexes:
                    data = deep_merge(data, self.rules[index].policy)
                policy = Policy.model_validate(data)
            self._cache[(tenant, indexes)] = policy
        return policy

    def groups(
        self,
        *,
        sender: str,
        recipients: Sequence[str],
        client: str,
        auth: AuthOutcome | None = None,
    ) -> list[PolicyGroup]:
        """The recipients grouped by tenant and by the rules that apply to them, in
        first-recipient order."""
        by_rules: dict[tuple[str, tuple[int, ...]], list[str]] = {}
        for recipient in recipients:
            tenant = self.tenant_of(recipient)
            key = self.matching(
                sender=sender, recipient=recipient, client=client, auth=auth, tenant=tenant
            )
            by_rules.setdefault((tenant, key), []).append(recipient)
        if not by_rules:
            by_rules[("", ())] = []
        return [
            PolicyGroup(
                recipients=tuple(members),
                rules=tuple(self.rules[i].name for i in key),
                exceptions=tuple(self.rules[i].name for i in key if self.rules[i].exception),
                policy=self.policy_for(key, tenant),
                tenant=tenant,
            )
            for (tenant, key), members in by_rules.items()
        ]
