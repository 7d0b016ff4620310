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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from gateway.configuration.rules import Rule, deep_merge, override_problems
from gateway.configuration.settings import (
    AuditSettings,
    AuthSettings,
    ConsoleSettings,
    DeliverySettings,
    DigestSettings,
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
    rules: tuple[Rule, ...] = ()
    """Rules by recipient, sender and client network, and exceptions (例外措置); none by
    default. Each is a [[rules]] table (see the README)."""

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        """Cross-section orderings hold; rule names are unique; each rule's policy override is
        valid over ``policy`` and keeps the orderings; "keep" appears only in exceptions, and
        only with the scanner on."""
        problems: list[tuple[tuple[Origin, ...], str]] = [
            ((_loc(ordering.lower), _loc(ordering.upper)), message)
            for ordering, message in broken_orderings(self)
        ]
        problems.extend(_reject_behind_a_filter(self))
        for keep in _keep_keys(self.policy):
            problems.append(((("policy", *keep),), _KEEP_OUTSIDE_EXCEPTION))
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                problems.append(((("rules", index, "name"),), f"duplicate rule name {rule.name!r}"))
            seen.add(rule.name)
            invalid = override_problems(self.policy, rule.policy)
            for key, message in invalid:
                problems.append(((("rules", index, "policy", *key.split(".")),), message))
            if invalid or not rule.policy:
                continue
            merged = Policy.model_validate(deep_merge(self.policy.model_dump(), rule.policy))
            for keep in _keep_keys(merged):
                where: Origin = ("rules", index, "policy", *keep)
                if not rule.exception:
                    problems.append(((where,), _KEEP_OUTSIDE_EXCEPTION))
                elif not self.scanner.enabled:
                    problems.append(
                        (
                            (where, ("scanner", "enabled")),
                            f"exception {rule.name!r} keeps original files: scanner.enabled must "
                            "be true (an original crosses only after the malware scan)",
                        )
                    )
            for ordering, message in broken_orderings(self.model_copy(update={"policy": merged})):
                keys = [k for k in (ordering.lower, ordering.upper) if k.startswith("policy.")]
                problems.append((tuple(("rules", index, *_loc(k)) for k in keys), message))
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
            if here == ("rules",) and isinstance(value, list):
                start = len(current) if isinstance(current, list) else 0
                base[key] = (current if isinstance(current, list) else []) + value
                self.origins[here] = source
                for offset, rule in enumerate(value):
                    self._record(("rules", start + offset), rule, source)
                    self.rule_sources.append((source, offset))
            elif isinstance(value, dict) and isinstance(current, dict):
                self.origins.setdefault(here, source)
                self._merge(current, value, here, source)
            else:
                self._forget(here)
                base[key] = value
                self._record(here, value, source)

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
        return ".".join(str(part) for part in loc) or "(top level)"


def local_files(path: Path) -> list[Path]:
    """The ``*.toml`` files of the ``local.d`` directory beside ``path``, sorted by name."""
    directory = path.parent / LOCAL_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def read_layers(path: Path) -> Layered:
    """Read and merge the main file and its ``local.d`` files; every unreadable file is named."""
    layered = Layered()
    problems: list[str] = []
    for source in [path, *local_files(path)]:
        try:
            layered.add(source, read_toml(source))
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
