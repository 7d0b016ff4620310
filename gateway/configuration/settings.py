"""Settings of the relay service: SMTP in, spool, workers, delivery out.

Every limit is named here with its default; ``config/defaults.toml`` writes the same values
out. An empty string means "not set" (TOML has no null). Sections are frozen and refuse
unknown keys, so a typo in an operator's file stops the start instead of weakening a rule.
No number may be infinite or NaN, and no time longer than :data:`LONGEST_SECONDS`: a limit
that never fires is no limit.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The longest time any ``*_seconds`` setting may name (a year).
LONGEST_SECONDS = 366 * 86400.0


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _times_are_bounded(self) -> Self:
        for name, value in self:
            if name.endswith("_seconds") and value > LONGEST_SECONDS:
                raise ValueError(f"{name} = {value} is longer than {LONGEST_SECONDS:.0f} s")
        return self


class ServiceSettings(Section):
    """Where the service keeps its state and how it stops."""

    # Spool, quarantine and demo Maildir live below this directory (relative: to the cwd).
    data_dir: str = "var"
    # On SIGTERM: seconds granted to sessions and work in flight before they are cut off.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)


class SmtpSettings(Section):
    """The Internet-facing SMTP listener and every limit it enforces."""

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=2525, ge=0, le=65535)
    # Name in the greeting and EHLO reply; empty: the host's FQDN.
    hostname: str = ""
    # Recipient domains accepted (exact, case-insensitive). Empty: every recipient is refused.
    accept_domains: tuple[str, ...] = ()
    # Also accept sub-domains of ``accept_domains``.
    accept_subdomains: bool = False
    # Client networks (CIDR) that may send to any recipient domain; nothing else is relaxed.
    trusted_networks: tuple[str, ...] = ()
    # SIZE advertised and enforced (``552 5.3.4``), declared or not.
    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # Recipients accepted per transaction; each further one gets ``452 4.5.3``.
    max_recipients: int = Field(default=100, ge=100)
    # Longest command line, CRLF excluded (RFC 5321 4.5.3.1.4).
    max_command_bytes: int = Field(default=512, ge=512, le=65536)
    # Longest line of message data, CRLF included; 0: no limit. RFC 5321 4.5.3.1.6 says 1000,
    # but real senders exceed it and a refusal bounces harmless mail; nothing of the original
    # crosses anyway, so the default matches the pipeline's own line limit.
    max_line_bytes: int = Field(default=65536, ge=0)
    # Time for each complete record: a whole command line (counted from the previous command),
    # a whole line of message data (or 64 KiB of a longer one). Trickling does not extend it.
    command_timeout_seconds: float = Field(default=300.0, gt=0)
    # Stress mode (as Postfix's): with more than this share of ``max_connections`` open, every
    # session, open ones included, gets ``stress_timeout_seconds`` per record instead.
    stress_threshold_ratio: float = Field(default=0.8, gt=0, lt=1)
    stress_timeout_seconds: float = Field(default=10.0, gt=0)
    # A whole session, from connect to close.
    session_deadline_seconds: float = Field(default=1800.0, gt=0)
    # DATA slower than this (bytes per second, after the grace period) is cut off (421).
    min_data_rate_bytes_per_second: int = Field(default=1024, ge=0)
    data_rate_grace_seconds: float = Field(default=30.0, ge=0)
    # Open connections overall and per client address; more get ``421 4.7.0``.
    max_connections: int = Field(default=200, gt=0)
    max_connections_per_client: int = Field(default=20, gt=0)
    # Bare CR or LF in message data: "reject" (550 5.5.2) or "normalize" to CRLF.
    bare_newlines: Literal["reject", "normalize"] = "reject"
    # Commands pipelined after the final dot (PIPELINING is not offered): "reject" answers
    # the message, then 503 5.5.0 and closes without reading them; "allow" executes them.
    pipelining_after_data: Literal["reject", "allow"] = "reject"
    # STARTTLS is offered when both files are set (PEM).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Free space on the spool's file system below this: ``452 4.3.1`` at MAIL.
    min_free_disk_bytes: int = Field(default=256 * 1024 * 1024, ge=0)

    @model_validator(mode="after")
    def _stress_limit_is_shorter(self) -> Self:
        if self.stress_timeout_seconds > self.command_timeout_seconds:
            raise ValueError(
                f"smtp.stress_timeout_seconds ({self.stress_timeout_seconds}) is longer than "
                f"smtp.command_timeout_seconds ({self.command_timeout_seconds}): stress mode "
                "must shorten the limit"
            )
        return self


class SpoolSettings(Section):
    """The durable queue on disk (below ``service.data_dir``/spool)."""

    # Delivered messages are kept this long for ``mukaika queue show``, then removed.
    keep_delivered_seconds: float = Field(default=86400.0, ge=0)


class WorkerSettings(Section):
    """Sanitizing work: a process pool fed by the spool."""

    # Sanitizer processes; 0: one per CPU core.
    processes: int = Field(default=0, ge=0, le=256)
    # Messages worked on at once (sanitizing plus delivering; most of it is waiting on disk,
    # the pool and the relay, so this is well above the number of cores).
    concurrency: int = Field(default=32, gt=0, le=1024)
    # A message not sanitized within this time: its worker process is killed (a crash).
    sanitize_timeout_seconds: float = Field(default=120.0, gt=0)
    # A message that crashed sanitizer processes this often is held, never delivered as is.
    max_crashes: int = Field(default=3, gt=0)
    # A scanner (or other dependency) unavailable: retry sanitizing after this long.
    temporary_failure_retry_seconds: float = Field(default=60.0, gt=0)
    # How often the spool is re-read (work queued by ``mukaika queue retry``; queue metrics).
    rescan_seconds: float = Field(default=30.0, gt=0)


class DeliverySettings(Section):
    """The LGWAN-side MTA, retries, and delivery-status notices."""

    relay_host: str = "127.0.0.1"
    relay_port: int = Field(default=10025, gt=0, le=65535)
    # "none", "starttls" (required) or "tls" (implicit TLS).
    tls: Literal["none", "starttls", "tls"] = "none"
    tls_verify: bool = True
    # CA bundle (PEM) for the relay's certificate; empty: the system store.
    tls_ca_file: str = ""
    # Name sent in EHLO to the relay; empty: the host's FQDN.
    helo_name: str = ""
    # Each SMTP command to the relay, including connecting.
    timeout_seconds: float = Field(default=120.0, gt=0)
    # Connections to the relay kept open and reused.
    connections: int = Field(default=4, gt=0, le=256)
    # Retry after 4xx, timeouts and broken connections: exponential backoff.
    retry_initial_seconds: float = Field(default=300.0, gt=0)
    retry_multiplier: float = Field(default=2.0, ge=1.0)
    # RFC 5321 4.5.4.1: retries at least 30 minutes apart once backed off.
    retry_max_seconds: float = Field(default=1800.0, gt=0)
    # RFC 5321 4.5.4.1: give up after 4-5 days: dead letter and a notice to the sender.
    lifetime_seconds: float = Field(default=5 * 86400.0, gt=0)
    # Relay for delivery-status notices to Internet senders; empty: no notices are sent.
    dsn_relay_host: str = ""
    dsn_relay_port: int = Field(default=25, gt=0, le=65535)
    # From address of notices; empty: MAILER-DAEMON@<smtp hostname>.
    dsn_from: str = ""
