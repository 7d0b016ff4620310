"""Configuration: TOML files validated as a whole at start-up.

The shipped defaults are the model's defaults, written out in ``config/defaults.toml`` (a test
keeps the two equal). An operator's file is merged over them; an unknown key or a bad value is
an error that names the file and the key, because a typo must never weaken a rule.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.audit import AuditSettings
from gateway.metrics import MetricsSettings
from gateway.quarantine import QuarantineSettings
from gateway.settings import (
    DeliverySettings,
    ServiceSettings,
    SmtpSettings,
    SpoolSettings,
    WorkerSettings,
)
from sanitizers.policy import Policy


class ScannerSettings(BaseModel):
    """The malware scan at the gateway (ClamAV's clamd, INSTREAM). Off by default; when on and
    clamd cannot answer, messages are deferred (tempfail), never passed unscanned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @field_validator("address")
    @classmethod
    def _address_is_valid(cls, value: str) -> str:
        from gateway.scanner import parse_address

        parse_address(value)
        return value


class Config(BaseModel):
    """The whole configuration. Sections are added here as the service grows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class ConfigError(Exception):
    """An invalid configuration; ``problems`` holds one line per error, naming file and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge tables recursively; any other value in ``override`` replaces the base value."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_toml(path: Path) -> dict[str, Any]:
    """Read one TOML file, turning every failure into a ConfigError that names the file."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    return f"{key}: {error['msg']}"


def validate(data: dict[str, Any], source: str) -> Config:
    """Validate merged data; every problem is reported, each prefixed with ``source``."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{source}: {_describe(err)}" for err in exc.errors()]) from exc


def load_config(path: Path | None = None) -> Config:
    """The effective configuration: the shipped defaults with ``path`` merged over them."""
    if path is None:
        return Config()
    return validate(_merge({}, read_toml(path)), str(path))
