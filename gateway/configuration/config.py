"""Configuration: TOML files validated as a whole at start-up.

The shipped defaults are the model's defaults, written out in ``config/defaults.toml`` (a test
keeps the two equal). An operator's file is merged over them; an unknown key or a bad value is
an error that names the file and the key, because a typo must never weaken a rule.

Layers, lowest first: the shipped defaults; the operator's main file (``--config FILE``); every
``*.toml`` in the directory ``local.d`` beside the main file, in sorted name order. Tables merge
key by key (a later layer wins); ``[[rules]]`` lists are concatenated in layer order; any other
value is replaced whole. The merged result is validated as a whole, and each error names the
file that set the offending key (the origin of every key is tracked through the merge).
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from gateway.configuration.rules import Rule, RuleSet, Today, deep_merge, override_problems
from gateway.configuration.settings import (
    AuditSettings,
    AuthSettings,
    ConsoleSettings,
    DeliverySettings,
    DigestSettings,
    DirectorySettings,
    MetricsSettings,
    NodeSettings,
    OutboundSettings,
    QuarantineSettings,
    ReleaseSettings,
    ScannerSettings,
    ServiceSettings,
    SmtpSettings,
    SpoolSettings,
    StoreSettings,
    WorkerSettings,
)
from gateway.configuration.tenants import (
    TENANT_FILE_KEYS,
    TENANT_NAME,
    Tenant,
    Tenants,
    auth_problems,
    outbound_problems,
)
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.section import Section
from sanitizers.senderauth import AuthAction


@dataclass(frozen=True)
class Ordering:
    """A rule across sections: the setting ``lower`` must stay below ``upper``."""

    lower: str
    upper: str
    strict: bool
    why: str


# Cross-section rules, checked on the whole configuration and on each rule's policy.
ORDERINGS: tuple[Ordering, ...] = (
    Ordering(
        "smtp.max_message_bytes",
        "policy.limits.max_message_bytes",
        strict=False,
        why="a message the listener accepts must be one the pipeline reads",
    ),
    Ordering(
        "policy.cdr.seconds",
        "policy.limits.seconds",
        strict=True,
        why="one file's time budget is a part of the message's",
    ),
    Ordering(
        "policy.limits.seconds",
        "worker.sanitize_timeout_seconds",
        strict=True,
        why="the pipeline must reach its own time limit (a hold with a reason) before the "
        "worker kills its process (a crash)",
    ),
    Ordering(
        "delivery.retry_initial_seconds",
        "delivery.retry_max_seconds",
        strict=False,
        why="the first retry wait cannot exceed the longest",
    ),
)


def setting(root: BaseModel, dotted: str) -> Any:
    """The value of a dotted key (``policy.limits.seconds``) in a model."""
    value: Any = root
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _loc(dotted: str) -> Origin:
    return tuple(dotted.split("."))


def broken_orderings(root: BaseModel) -> list[tuple[Ordering, str]]:
    """Each ordering that ``root`` (a :class:`Config`) breaks, with a message for its key."""
    problems: list[tuple[Ordering, str]] = []
    for rule in ORDERINGS:
        lower, upper = setting(root, rule.lower), setting(root, rule.upper)
        if lower > upper or (rule.strict and lower == upper):
            relation = "below" if rule.strict else "at most"
            message = f"{rule.lower} ({lower}) must be {relation} {rule.upper} ({upper})"
            problems.append((rule, f"{message}: {rule.why}"))
    return problems


Origin = tuple[str | int, ...]


class Config(Section):
    """The whole configuration: the pipeline's ``[policy]`` and the service's sections."""

    policy: Policy = Policy()
    service: ServiceSettings = ServiceSettings()
    smtp: SmtpSettings = SmtpSettings()
    spool: SpoolSettings = SpoolSettings()
    worker: WorkerSettings = WorkerSettings()
    delivery: DeliverySettings = DeliverySettings()
    quarantine: QuarantineSettings = QuarantineSettings()
    store: StoreSettings = StoreSettings()
    node: NodeSettings = NodeSettings()
    release: ReleaseSettings = ReleaseSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()
    scanner: ScannerSettings = ScannerSettings()
    console: ConsoleSettings = ConsoleSettings()
    digest: DigestSettings = DigestSettings()
    auth: AuthSettings = AuthSettings()
    outbound: OutboundSettings = OutboundSettings()
    directory: DirectorySettings = DirectorySettings()
    rules: tuple[Rule, ...] = ()
    """Rules by recipient, sender and client network, and exceptions (例外措置); none by
    default. Each is a [[rules]] table (see the README)."""
    tenants: tuple[Tenant, ...] = ()
    """Tenants (one municipality each) sharing this gateway; none by default (one
    installation). Each is a [[tenants]] table (see the guides)."""

    @model_validator(mode="before")
    @classmethod
    def _tenant_domains_accepted(cls, data: Any) -> Any:
        """With tenants, their domains are accepted domains: added to smtp.accept_domains."""
        if not isinstance(data, dict) or not data.get("tenants"):
            return data
        smtp = data.get("smtp", {})
        if isinstance(smtp, SmtpSettings):
            smtp = smtp.model_dump()
        tenants = data["tenants"]
        given = smtp.get("accept_domains", ()) if isinstance(smtp, dict) else None
        if not isinstance(given, list | tuple) or not isinstance(tenants, list | tuple):
            return data  # the model's own checks name the bad value
        domains = list(given)
        for tenant in tenants:
            own = tenant.get("domains") if isinstance(tenant, dict) else None
            own = tenant.domains if isinstance(tenant, Tenant) else own
            if isinstance(own, list | tuple):
                domains.extend(str(d).strip().lower().rstrip(".") for d in own)
        return {**data, "smtp": {**smtp, "accept_domains": tuple(dict.fromkeys(domains))}}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        """Cross-section orderings hold; rule names are unique; each rule's policy override is
        valid over ``policy`` and keeps the orderings; "keep" appears only in exceptions, and
        only with the scanner on; tenants have distinct names and domains, valid overrides,
        and cover every accepted domain."""
        problems: list[tuple[tuple[Origin, ...], str]] = [
            ((_loc(ordering.lower), _loc(ordering.upper)), message)
            for ordering, message in broken_orderings(self)
        ]
        problems.extend(_reject_behind_a_filter(self))
        for keep in _keep_keys(self.policy):
            problems.append(((("policy", *keep),), _KEEP_OUTSIDE_EXCEPTION))
        problems.extend(_rule_problems(self, self.policy, self.rules, ("rules",)))
        problems.extend(_tenant_problems(self))
        if self.digest.enabled and not self.console.public_url:
            problems.append(
                (
                    (("digest", "enabled"), ("console", "public_url")),
                    "digest.enabled needs console.public_url (where the digests' links lead)",
                )
            )
        if problems:
            raise PydanticCustomError(
                INCONSISTENT,
                "inconsistent configuration: {summary}",
                {
                    "summary": "; ".join(f"{'.'.join(map(str, k[0]))}: {m}" for k, m in problems),
                    "problems": problems,
                },
            )
        return self


def _rule_problems(
    config: Config, base: Policy, rules: tuple[Rule, ...], where: Origin
) -> list[tuple[tuple[Origin, ...], str]]:
    """Problems of ``rules`` (at ``where``) over the policy ``base``."""
    problems: list[tuple[tuple[Origin, ...], str]] = []
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        at: Origin = (*where, index)
        if rule.name in seen:
            problems.append((((*at, "name"),), f"duplicate rule name {rule.name!r}"))
        seen.add(rule.name)
        invalid = override_problems(base, rule.policy)
        for key, message in invalid:
            problems.append((((*at, "policy", *key.split(".")),), message))
        if invalid or not rule.policy:
            continue
        merged = Policy.model_validate(deep_merge(base.model_dump(), rule.policy))
        for keep in _keep_keys(merged):
            kept: Origin = (*at, "policy", *keep)
            if not rule.exception:
                problems.append(((kept,), _KEEP_OUTSIDE_EXCEPTION))
            elif not config.scanner.enabled:
                problems.append(
                    (
                        (kept, ("scanner", "enabled")),
                        f"exception {rule.name!r} keeps original files: scanner.enabled must "
                        "be true (an original crosses only after the malware scan)",
                    )
                )
        for ordering, message in broken_orderings(config.model_copy(update={"policy": merged})):
            keys = [k for k in (ordering.lower, ordering.upper) if k.startswith("policy.")]
            problems.append((tuple((*at, *_loc(k)) for k in keys), message))
    return problems


def _tenant_problems(config: Config) -> list[tuple[tuple[Origin, ...], str]]:
    """Tenants: distinct names, each domain in one tenant, every accepted domain in a tenant,
    and each tenant's policy, rules, outbound and auth valid over the shared ones."""
    if not config.tenants:
        return []
    problems: list[tuple[tuple[Origin, ...], str]] = []
    owners: dict[str, str] = {}
    for index, tenant in enumerate(config.tenants):
        at: Origin = ("tenants", index)
        if tenant.name in {t.name for t in config.tenants[:index]}:
            problems.append((((*at, "name"),), f"duplicate tenant name {tenant.name!r}"))
        for domain in tenant.domains:
            owner = owners.setdefault(domain, tenant.name)
            if owner != tenant.name or tenant.domains.count(domain) > 1:
                problems.append(
                    (
                        ((*at, "domains"),),
                        f"domain {domain!r} is already a domain of tenant {owner!r}: a domain "
                        "belongs to one tenant only",
                    )
                )
        invalid = override_problems(config.policy, tenant.policy)
        for key, message in invalid:
            problems.append((((*at, "policy", *key.split(".")),), message))
        own = config.policy
        if not invalid and tenant.policy:
            own = Policy.model_validate(deep_merge(config.policy.model_dump(), tenant.policy))
            for keep in _keep_keys(own):
                problems.append((((*at, "policy", *keep),), _KEEP_OUTSIDE_EXCEPTION))
            for ordering, message in broken_orderings(config.model_copy(update={"policy": own})):
                keys = [k for k in (ordering.lower, ordering.upper) if k.startswith("policy.")]
                problems.append((tuple((*at, *_loc(k)) for k in keys), message))
        problems.extend(_rule_problems(config, own, tenant.rules, (*at, "rules")))
        for key, message in outbound_problems(config.outbound, tenant):
            problems.append((((*at, "outbound", *key.split(".")),), message))
        for key, message in auth_problems(config.auth, tenant):
            problems.append((((*at, "auth", *key.split(".")),), message))
    resolver = tenants_of(config)
    for domain in config.smtp.accept_domains:
        if not resolver.tenant_of(f"postmaster@{domain}"):
            problems.append(
                (
                    (("smtp", "accept_domains"),),
                    f"{domain!r} is in no tenant's domains: with [[tenants]], every accepted "
                    "domain belongs to a tenant (its mail would have no tenant's MTA or "
                    "operators)",
                )
            )
    return problems


def tenants_of(config: Config) -> Tenants:
    """The tenants of ``config``, with their settings merged over the shared ones."""
    return Tenants(
        config.tenants,
        subdomains=config.smtp.accept_subdomains,
        outbound=config.outbound,
        auth=config.auth,
    )


def rule_set(config: Config, today: Today = date.today) -> RuleSet:
    """The rules of ``config`` (shared and tenants') over its policy, expiring by ``today``."""
    return RuleSet(config.policy, config.rules, today, tenants=tenants_of(config))


def content_filter_layout(config: Config) -> bool:
    """Whether ``config`` is the Postfix content-filter layout: mukaika listens on loopback
    only and hands both the sanitized mail and its notices back to the same loopback MTA."""
    delivery = config.delivery
    return (
        _loopback(config.smtp.listen_host)
        and _loopback(delivery.relay_host)
        and delivery.dsn_relay_host == delivery.relay_host
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _reject_behind_a_filter(config: Config) -> list[tuple[tuple[Origin, ...], str]]:
    """Behind Postfix, a 550 at the end of DATA makes Postfix bounce to the (forged) sender:
    "reject" is refused there."""
    auth = config.auth
    if not auth.enabled or not content_filter_layout(config):
        return []
    return [
        (
            (("auth", key),),
            '"reject" in the Postfix content-filter layout would make Postfix bounce to the '
            '(possibly forged) sender: use "hold" or "warn"',
        )
        for key in (
            "dmarc_reject_action",
            "dmarc_quarantine_action",
            "dmarc_fail_action",
            "temperror_action",
        )
        if getattr(auth, key) is AuthAction.REJECT
    ]


_KEEP_OUTSIDE_EXCEPTION = (
    '"keep" (the sender\'s bytes) exists only inside an approved exception: a [[rules]] table '
    "with exception = true, approved_by, reason and expires"
)


def _keep_keys(policy: Policy) -> list[tuple[str, ...]]:
    """The attachment settings of ``policy`` that say "keep"."""
    keys: list[tuple[str, ...]] = []
    if policy.attachments.default is AttachmentAction.KEEP:
        keys.append(("attachments", "default"))
    keys.extend(
        ("attachments", "by_kind", kind)
        for kind, action in sorted(policy.attachments.by_kind.items())
        if action is AttachmentAction.KEEP
    )
    return keys


INCONSISTENT = "inconsistent"
LOCAL_DIR = "local.d"
TENANTS_DIR = "tenants"


class ConfigError(Exception):
    """An invalid configuration; ``problems`` holds one line per error, naming file and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_toml(path: Path) -> dict[str, Any]:
    """Read one TOML file, turning every failure into a ConfigError that names the file."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc


@dataclass
class Layered:
    """Merged configuration data with the file that set each key."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Origin, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    # For each merged rule: (file, index within that file).
    rule_sources: list[tuple[str, int]] = field(default_factory=list)

    def add(self, source: Path, layer: dict[str, Any]) -> None:
        self.files.append(source)
        self._merge(self.data, layer, (), str(source))

    def _forget(self, prefix: Origin) -> None:
        for key in [k for k in self.origins if k[: len(prefix)] == prefix]:
            del self.origins[key]

    def _record(self, path: Origin, value: Any, source: str) -> None:
        self.origins[path] = source
        if isinstance(value, dict):
            for key, item in value.items():
                self._record((*path, key), item, source)

    def _merge(
        self, base: dict[str, Any], layer: dict[str, Any], path: Origin, source: str
    ) -> None:
        for key, value in layer.items():
            here = (*path, key)
            current = base.get(key)
            if _is_rules(here) and isinstance(value, list):
                start = len(current) if isinstance(current, list) else 0
                base[key] = (current if isinstance(current, list) else []) + value
                self.origins[here] = source
                for offset, rule in enumerate(value):
                    self._record((*here, start + offset), rule, source)
                    if here == ("rules",):
                        self.rule_sources.append((source, offset))
            elif isinstance(value, dict) and isinstance(current, dict):
                self.origins.setdefault(here, source)
                self._merge(current, value, here, source)
            else:
                self._forget(here)
                base[key] = value
                self._record(here, value, source)

    def add_tenant(self, source: Path, index: int, layer: dict[str, Any]) -> list[str]:
        """Merge one of a tenant's own files into its table; problems for keys it may not set."""
        self.files.append(source)
        refused = [key for key in layer if key not in TENANT_FILE_KEYS]
        if refused:
            return [
                f"{source}: {key}: a tenant's own file sets only "
                f"{', '.join(TENANT_FILE_KEYS)} (its domains and MTA are in the main file)"
                for key in refused
            ]
        tenants = self.data.get("tenants")
        assert isinstance(tenants, list)
        assert isinstance(tenants[index], dict)
        self._merge(tenants[index], layer, ("tenants", index), str(source))
        return []

    def is_set(self, loc: Origin) -> bool:
        """Whether a file set the key ``loc`` itself."""
        return loc in self.origins

    def origin(self, loc: Origin) -> str:
        """The file that set ``loc`` or its nearest enclosing key."""
        for end in range(len(loc), 0, -1):
            source = self.origins.get(loc[:end])
            if source is not None:
                return source
        return str(self.files[0]) if self.files else "(defaults)"

    def key_name(self, loc: Origin) -> str:
        """``loc`` as a dotted key; a rule is named by its index in its file and its name."""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            head = f"rules[{index}]"
            if index < len(self.rule_sources):
                head = f"rules[{self.rule_sources[index][1]}]"
            rules = self.data.get("rules")
            if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
                name = rules[index].get("name")
                if isinstance(name, str):
                    head += f" ({name!r})"
            rest = ".".join(str(part) for part in loc[2:])
            return f"{head}.{rest}" if rest else head
        if len(loc) >= 2 and loc[0] == "tenants" and isinstance(loc[1], int):
            tenants = self.data.get("tenants")
            head = f"tenants[{loc[1]}]"
            if isinstance(tenants, list) and loc[1] < len(tenants):
                name = tenants[loc[1]].get("name") if isinstance(tenants[loc[1]], dict) else None
                if isinstance(name, str):
                    head += f" ({name!r})"
            rest = ".".join(str(part) for part in loc[2:])
            return f"{head}.{rest}" if rest else head
        return ".".join(str(part) for part in loc) or "(top level)"


def local_files(path: Path) -> list[Path]:
    """The ``*.toml`` files of the ``local.d`` directory beside ``path``, sorted by name."""
    directory = path.parent / LOCAL_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def _is_rules(loc: Origin) -> bool:
    """Whether ``loc`` is a list of rules: ``[[rules]]`` or a tenant's ``[[tenants.rules]]``."""
    return loc == ("rules",) or (len(loc) == 3 and loc[0] == "tenants" and loc[2] == "rules")


def tenant_files(path: Path, name: str) -> list[Path]:
    """The ``*.toml`` files of tenant ``name``'s own ``tenants/NAME/local.d`` beside ``path``."""
    directory = path.parent / TENANTS_DIR / name / LOCAL_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def read_layers(path: Path) -> Layered:
    """Read and merge the main file and its ``local.d`` files, then each tenant's own files
    into its table; every unreadable file is named."""
    layered = Layered()
    problems: list[str] = []
    for source in [path, *local_files(path)]:
        try:
            layered.add(source, read_toml(source))
        except ConfigError as exc:
            problems.extend(exc.problems)
    tenants = layered.data.get("tenants")
    for index, tenant in enumerate(tenants if isinstance(tenants, list) else []):
        name = tenant.get("name") if isinstance(tenant, dict) else None
        if not isinstance(name, str) or not re.fullmatch(TENANT_NAME, name):
            continue  # validation names the bad name
        for source in tenant_files(path, name):
            try:
                problems.extend(layered.add_tenant(source, index, read_toml(source)))
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return layered


def validate(data: dict[str, Any], source: str) -> Config:
    """Validate merged data; every problem is reported, each prefixed with ``source``."""
    layered = Layered(data=data, files=[Path(source)])
    return validate_layered(layered)


def validate_layered(layered: Layered) -> Config:
    """Validate the merged layers; each problem names the file that set the key."""
    try:
        return Config.model_validate(layered.data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            if err["type"] == INCONSISTENT:
                for candidates, message in err["ctx"]["problems"]:
                    loc = next((c for c in candidates if layered.is_set(c)), candidates[0])
                    problems.append(f"{layered.origin(loc)}: {layered.key_name(loc)}: {message}")
                continue
            loc = tuple(err["loc"])
            source = layered.origin(loc)
            key = layered.key_name(loc)
            if err["type"] == "extra_forbidden":
                problems.append(f"{source}: {key}: unknown key")
            else:
                problems.append(f"{source}: {key}: {err['msg']}")
        if not any(err["type"] == INCONSISTENT for err in exc.errors()):
            problems.extend(_rule_override_problems(layered))
        raise ConfigError(problems) from exc


def _rule_override_problems(layered: Layered) -> list[str]:
    """Rule overrides checked on their own, for when other errors stopped the whole check."""
    rules = layered.data.get("rules")
    if not isinstance(rules, list):
        return []
    try:
        base = Policy.model_validate(layered.data.get("policy", {}))
    except ValidationError:
        base = Policy()
    problems: list[str] = []
    for index, rule in enumerate(rules):
        override = rule.get("policy") if isinstance(rule, dict) else None
        if not isinstance(override, dict):
            continue
        for key, message in override_problems(base, override):
            loc: Origin = ("rules", index, "policy", *key.split("."))
            problems.append(f"{layered.origin(loc)}: {layered.key_name(loc)}: {message}")
    return problems


def load_layered(path: Path | None = None) -> tuple[Config, Layered]:
    """The effective configuration and the layers it came from."""
    if path is None:
        return Config(), Layered()
    layered = read_layers(path)
    return validate_layered(layered), layered


def load_config(path: Path | None = None) -> Config:
    """The effective configuration: the shipped defaults, ``path`` and its ``local.d`` files."""
    return load_layered(path)[0]
