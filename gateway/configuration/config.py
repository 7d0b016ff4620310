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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gateway.configuration.rules import Rule, override_problems
from gateway.configuration.settings import (
    DeliverySettings,
    Section,
    ServiceSettings,
    SmtpSettings,
    SpoolSettings,
    WorkerSettings,
)
from gateway.evidence.audit import AuditSettings
from gateway.evidence.quarantine import QuarantineSettings
from gateway.observation.metrics import MetricsSettings
from sanitizers.policy import Policy


class ScannerSettings(Section):
    """The malware scan at the gateway (ClamAV's clamd, INSTREAM). Off by default; when on and
    clamd cannot answer, messages are deferred (tempfail), never passed unscanned."""

    enabled: bool = False
    # ``unix:/path`` (or ``/path``) or ``host:port`` on a loopback address.
    address: str = "unix:/run/clamav/clamd.ctl"
    # Seconds for connecting and for each send/receive; a timeout defers the message.
    timeout_seconds: float = Field(default=30.0, gt=0)
    # Largest attachment sent to clamd; keep it at or below clamd's StreamMaxLength. Larger
    # attachments cannot be scanned and are removed (``limit_size``).
    max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # What a hit does: remove the part, or hold the whole message (reason ``malware``).
    on_hit: Literal["remove", "hold"] = "remove"
    # While enabled, clamd is pinged at start and this often (``mukaika_scanner_up``).
    probe_interval_seconds: float = Field(default=30.0, gt=0)

    @field_validator("address")
    @classmethod
    def _address_is_valid(cls, value: str) -> str:
        from gateway.processing.scanner import parse_address

        parse_address(value)
        return value


class Config(BaseModel):
    """The whole configuration. Sections are added here as the service grows."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    policy: Policy = Policy()
    service: ServiceSettings = ServiceSettings()
    smtp: SmtpSettings = SmtpSettings()
    spool: SpoolSettings = SpoolSettings()
    worker: WorkerSettings = WorkerSettings()
    delivery: DeliverySettings = DeliverySettings()
    quarantine: QuarantineSettings = QuarantineSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()
    scanner: ScannerSettings = ScannerSettings()
    # Rules by recipient, sender and client network (configuration/rules.py); none by default.
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _rules_are_valid(self) -> Config:
        """Rule names are unique; each rule's policy override is valid over ``policy``."""
        problems: list[tuple[int, str, str]] = []
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                problems.append((index, "name", f"duplicate rule name {rule.name!r}"))
            seen.add(rule.name)
            for key, message in override_problems(self.policy, rule.policy):
                problems.append((index, f"policy.{key}", message))
        if problems:
            raise PydanticCustomError(
                RULES_INVALID,
                "invalid rules: {summary}",
                {
                    "summary": "; ".join(f"rules[{i}].{k}: {m}" for i, k, m in problems),
                    "problems": problems,
                },
            )
        return self


RULES_INVALID = "rules_invalid"
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


Origin = tuple[str | int, ...]


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
            if err["type"] == RULES_INVALID:
                for index, key, message in err["ctx"]["problems"]:
                    loc: Origin = ("rules", index, *key.split("."))
                    problems.append(f"{layered.origin(loc)}: {layered.key_name(loc)}: {message}")
                continue
            loc = tuple(err["loc"])
            source = layered.origin(loc)
            key = layered.key_name(loc)
            if err["type"] == "extra_forbidden":
                problems.append(f"{source}: {key}: unknown key")
            else:
                problems.append(f"{source}: {key}: {err['msg']}")
        if not any(err["type"] == RULES_INVALID for err in exc.errors()):
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
