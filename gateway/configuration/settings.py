"""The service's part of the one configuration model: SMTP in, spool, workers, delivery out,
scanner, quarantine, audit and metrics.

Each setting is written once, here (the ``[policy]`` part lives in :mod:`sanitizers.policy`,
which must not import the gateway): its type, its default, its unit in its name and, in the
string below it, its description. ``config/defaults.toml`` is generated from these classes
(:mod:`gateway.configuration.defaults`). An empty string means "not set" (TOML has no null).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from sanitizers.section import Section
from sanitizers.senderauth import AuthAction
from sanitizers.vocabulary import UserRole


def _ip_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """Every item an IP address or network (``192.0.2.0/24``, ``2001:db8::/32``)."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or network") from exc
    return value


# A list of client addresses or networks, checked when the configuration is loaded.
Networks = Annotated[tuple[str, ...], AfterValidator(_ip_networks)]


class ServiceSettings(Section):
    """Where the service keeps its state, how it stops, and how it shows times."""

    data_dir: str = "var"
    """Spool, quarantine, audit log and the demo Maildir live below this directory (relative:
    to the working directory)."""
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    """On SIGTERM: seconds for sessions and work in flight to finish; the rest stays
    spooled."""
    display_timezone: str = ""
    """Time zone in which the command line shows times (e.g. "Asia/Tokyo"); "" = the
    system's. Logs and audit lines stay in UTC."""

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r} (an IANA name)") from exc
        return value


class SmtpSettings(Section):
    """The Internet-facing SMTP listener and every limit it enforces."""

    listen_host: str = "127.0.0.1"
    """Address the listener binds to."""
    listen_port: int = Field(default=2525, ge=0, le=65535)
    """TCP port of the listener; 0 = any free port."""
    receivers: int = Field(default=0, ge=0, le=256)
    """Receiving processes, each with a listener on the same port (SO_REUSEPORT) writing to
    the shared spool; 0 = one per CPU core. Connection limits, stress mode, metrics, the audit
    log and reload stay one per gateway, in the gateway's own process."""
    hostname: str = ""
    """Name in the greeting and EHLO reply; "" = the host's FQDN."""
    accept_domains: tuple[str, ...] = ()
    """Recipient domains accepted (exact, case-insensitive). Empty: every recipient is
    refused (554 5.7.1). Give them here or with --accept-domain."""
    accept_subdomains: bool = False
    """Also accept sub-domains of accept_domains."""
    trusted_networks: Networks = ()
    """Client networks (CIDR) that may send to any recipient domain; nothing else is relaxed
    for them."""
    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """SIZE advertised and enforced (552 5.3.4), declared or not; at most
    policy.limits.max_message_bytes."""
    max_recipients: int = Field(default=100, ge=100)
    """Recipients per transaction (at least 100, RFC 5321); each further one: 452 4.5.3."""
    max_command_bytes: int = Field(default=512, ge=512, le=65536)
    """Longest command line, CRLF excluded (RFC 5321 4.5.3.1.4)."""
    max_line_bytes: int = Field(default=65536, ge=0)
    """Longest line of message data, CRLF included; 0 = no limit. RFC 5321 says 1000, but
    senders exceed it and a refusal bounces harmless mail; nothing of the original crosses
    anyway, so the default matches the pipeline's own line limit."""
    command_timeout_seconds: float = Field(default=300.0, gt=0)
    """Time for each complete record: a whole command line (counted from the previous
    command), a whole line of message data (or 64 KiB of a longer one); trickling does not
    extend it (421 4.4.2)."""
    stress_threshold_ratio: float = Field(default=0.8, gt=0, lt=1)
    """Stress mode (as Postfix's): with more than this share of max_connections open, every
    session, open ones included, gets stress_timeout_seconds per record instead."""
    stress_timeout_seconds: float = Field(default=10.0, gt=0)
    """The time for each record in stress mode (421 4.4.2)."""
    session_deadline_seconds: float = Field(default=1800.0, gt=0)
    """A whole session, from connect to close (421 4.4.2)."""
    min_data_rate_bytes_per_second: int = Field(default=1024, ge=0)
    """DATA slower than this after the grace period is cut off (421 4.4.2); 0 = no
    minimum."""
    data_rate_grace_seconds: float = Field(default=30.0, ge=0)
    """Seconds of DATA before min_data_rate_bytes_per_second applies."""
    max_connections: int = Field(default=200, gt=0)
    """Open connections overall; more get 421 4.7.0."""
    max_connections_per_client: int = Field(default=20, gt=0)
    """Open connections per client address; more get 421 4.7.0."""
    bare_newlines: Literal["reject", "normalize"] = "reject"
    """Bare CR or LF in message data (SMTP smuggling): "reject" (550 5.5.2) or "normalize"
    to CRLF."""
    pipelining_after_data: Literal["reject", "allow"] = "reject"
    """Commands pipelined after the final dot (PIPELINING is not offered): "reject" answers
    the message, then 503 5.5.0 and closes without reading them; "allow" executes them."""
    tls_cert_file: str = ""
    """Certificate (PEM) for STARTTLS, offered when both files are set."""
    tls_key_file: str = ""
    """Private key (PEM) for STARTTLS."""
    min_free_disk_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    """Free space on the spool's file system below this: 452 4.3.1 at MAIL."""

    def accepts(self, address: str) -> bool:
        """Whether ``address`` is in an accepted domain: the municipality's own (inbound: may
        be received; outbound: an internal, not an outside, recipient)."""
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if not domain or "@" not in address:
            return False
        domains = {d.lower().rstrip(".") for d in self.accept_domains}
        if domain in domains:
            return True
        return self.accept_subdomains and any(domain.endswith("." + d) for d in domains)

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
    """The durable queue on disk (below service.data_dir/spool)."""

    keep_delivered_seconds: float = Field(default=86400.0, ge=0)
    """Delivered messages stay in the spool this long (for mukaika queue show)."""
    group_commit_seconds: float = Field(default=0.002, ge=0, le=0.1)
    """Group commit: how long the first of several messages being accepted at once waits for
    the others to share one flush of the spool directory. Each message is still answered 250
    only after its own file and the directory are on disk; 0 = share only the flushes that
    concurrency brings anyway."""


class WorkerSettings(Section):
    """Sanitizing work: a process pool fed by the spool."""

    processes: int = Field(default=0, ge=0, le=256)
    """Sanitizer processes; 0 = one per CPU core."""
    concurrency: int = Field(default=32, gt=0, le=1024)
    """Messages worked on at once (sanitizing plus delivering; mostly waiting on disk, the
    pool and the relay, so well above the number of cores)."""
    sanitize_timeout_seconds: float = Field(default=120.0, gt=0)
    """A message not sanitized in this time has its process killed (counted as a crash);
    above policy.limits.seconds."""
    max_crashes: int = Field(default=3, gt=0)
    """After this many crashes a message is held: recipients get a notice, never the
    content."""
    temporary_failure_retry_seconds: float = Field(default=60.0, gt=0)
    """The scanner (or another dependency) is unavailable: sanitize again after this long."""
    rescan_seconds: float = Field(default=30.0, gt=0)
    """How often the spool is re-read (queue metrics, work queued by mukaika queue retry)."""


class DeliverySettings(Section):
    """The LGWAN-side MTA, retries, and delivery-status notices."""

    relay_host: str = "127.0.0.1"
    """The LGWAN-side MTA that receives the sanitized mail."""
    relay_port: int = Field(default=10025, gt=0, le=65535)
    """Its SMTP port."""
    tls: Literal["none", "opportunistic", "starttls", "tls"] = "none"
    """"none", "opportunistic" (STARTTLS when offered), "starttls" (required) or "tls"
    (implicit TLS)."""
    tls_verify: bool = True
    """Verify the relay's certificate and name."""
    tls_ca_file: str = ""
    """CA bundle (PEM) for the relay's certificate; "" = the system store."""
    helo_name: str = ""
    """Name sent in EHLO to the relay; "" = the host's FQDN."""
    timeout_seconds: float = Field(default=120.0, gt=0)
    """Each SMTP command to the relay, connecting included."""
    connections: int = Field(default=4, gt=0, le=256)
    """Connections to the relay kept open and reused."""
    retry_initial_seconds: float = Field(default=300.0, gt=0)
    """First wait after a 4xx, a timeout or a broken connection; then multiplied by
    retry_multiplier each time."""
    retry_multiplier: float = Field(default=2.0, ge=1.0)
    """Factor of the exponential backoff between retries."""
    retry_max_seconds: float = Field(default=1800.0, gt=0)
    """Longest wait between retries (RFC 5321 4.5.4.1: at least 30 minutes once backed
    off)."""
    lifetime_seconds: float = Field(default=5 * 86400.0, gt=0)
    """Give up after this long (RFC 5321: 4-5 days): dead letter and a notice to the
    sender."""
    dsn_relay_host: str = ""
    """Relay for delivery-status notices to Internet senders; "" = no notices are sent."""
    dsn_relay_port: int = Field(default=25, gt=0, le=65535)
    """Its SMTP port."""
    dsn_from: str = ""
    """From address of notices; "" = MAILER-DAEMON@<smtp hostname>."""


def parse_clamd_address(address: str) -> tuple[int, str | tuple[str, int]]:
    """``unix:/path``, ``/path`` or ``host:port`` (loopback only) → (family, socket address).

    Only loopback is allowed: the INSTREAM protocol is not encrypted, so attachments must
    not cross a network to reach clamd."""
    if address.startswith("unix:"):
        address = address[len("unix:") :]
    if address.startswith("/"):
        return socket.AF_UNIX, address
    host, sep, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"clamd address {address!r}: expected unix:/path or host:port")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError as exc:
            raise ValueError(f"clamd address {address!r}: host must be an IP or localhost") from exc
        if not loopback:
            raise ValueError(f"clamd address {address!r}: only loopback addresses are allowed")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port_text))


class ScannerSettings(Section):
    """The malware scan at the gateway with ClamAV's clamd (INSTREAM), before any sanitizer
    runs. Off by default; when on and clamd cannot answer, messages are deferred (tempfail),
    never passed unscanned."""

    enabled: bool = False
    """Scan every attachment with clamd."""
    address: str = "unix:/run/clamav/clamd.ctl"
    """unix:/path (or /path), or host:port on a loopback address (the stream is not
    encrypted)."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds for connecting and for each send/receive; a timeout defers the message."""
    max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """Largest attachment sent to clamd; keep it at or below clamd's StreamMaxLength. Larger
    attachments cannot be scanned and are removed (limit_size)."""
    on_hit: Literal["remove", "hold"] = "remove"
    """A hit: "remove" the part or "hold" the whole message (reason malware, signature in
    detail)."""
    probe_interval_seconds: float = Field(default=30.0, gt=0)
    """While enabled, clamd is pinged at start and this often (mukaika_scanner_up)."""

    @field_validator("address")
    @classmethod
    def _address_is_valid(cls, value: str) -> str:
        parse_clamd_address(value)
        return value


# Where a quarantined original is kept (QuarantineSettings.originals; each entry's kept_in).
OriginalsPlace = Literal["database", "directory"]


class QuarantineSettings(Section):
    """The originals kept on the Internet side (compressed, hashed, indexed) as evidence."""

    retention_days: float = Field(default=90.0, gt=0)
    """Originals (and their index rows) older than this are purged, whatever their state."""
    held_retention_days: float = Field(default=0.0, ge=0)
    """Held mail may be kept longer (or shorter); 0 = the same as retention_days."""
    compression_level: int = Field(default=1, ge=1, le=9)
    """gzip level 1..9; 1 is the measured best trade-off for mail."""
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often the running service purges the quarantine."""
    originals: OriginalsPlace = "database"
    """Where new originals are kept: "database" (compressed in the store, so every node and
    console reads them and store copy moves them; the default) or "directory" (gzip files in
    quarantine.directory on this node's disk, read only on this node). Originals already kept
    stay where they were written: changing this moves nothing."""
    directory: str = ""
    """Absolute, or relative to the data directory; "" = DATA_DIR/quarantine. Holds the
    originals kept as files (quarantine.originals = "directory", and every original from
    before originals moved into the database)."""

    def resolve_directory(self, data_dir: Path) -> Path:
        """Where the quarantine lives for a given data directory."""
        if not self.directory:
            return data_dir / "quarantine"
        return data_dir / self.directory  # an absolute directory replaces data_dir


class NodeSettings(Section):
    """This node among the ones that share one store (PostgreSQL): its name in every record it
    writes, and how far its clock may be from the database's."""

    name: str = ""
    """The node's name in quarantine entries (quarantine list --json: node), the decisions it
    carries out and its audit lines; "" = the host name. Unique among the nodes of one store;
    a machine that replaces a dead node and takes over its disk takes its name too."""
    max_clock_offset_seconds: float = Field(default=1.0, gt=0, le=3600)
    """serve refuses to start (exit 80) when this node's clock differs from the PostgreSQL
    server's by more; while running, a larger offset is logged as an error. Logs of several
    nodes are evidence only if their clocks agree. (SQLite is this machine's clock: no check.)"""
    clock_check_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often serve measures the offset again (each measure is an audit line)."""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value and not NODE_NAME.fullmatch(value):
            raise ValueError(
                "node name: letters, digits and . _ - (at most 100, starting with a letter or "
                "digit)"
            )
        return value

    def resolved_name(self) -> str:
        """``name``, or this host's name (cut to a valid node name) when it is empty."""
        if self.name:
            return self.name
        host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).lstrip("._-")[:100]
        return host or "localhost"


NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class StoreSettings(Section):
    """The database every process shares: quarantine index, release workflow, users. One
    schema with one migration history (gateway/store/migrations), on SQLite (one node) or
    PostgreSQL (any number of nodes sharing it)."""

    url: str = "sqlite:///store.sqlite3"
    """Database URL: sqlite:///PATH (a relative path is taken relative to the data directory;
    the default: DATA_DIR/store.sqlite3) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE
    (psycopg 3; libpq's options may follow ?, e.g. sslmode=verify-full, or for failover
    postgresql://USER:PASSWORD@/DATABASE?host=A:5432&host=B:5432&target_session_attrs=read-write).
    --store-url overrides it."""
    migrate_on_start: bool = True
    """serve brings an older schema up to date at start (single node). Off: serve refuses an
    older schema until mukaika store migrate has run (the choice for several nodes). A newer
    schema is always refused."""
    pool_size: int = Field(default=5, ge=1, le=100)
    """PostgreSQL: connections each process keeps open at most (the pool never opens more;
    a request waits for a free one up to pool_timeout_seconds). serve keeps one more, outside
    the pool, for the locks of the jobs that run once per cluster."""
    pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """PostgreSQL: how long a request waits for a free pooled connection before it fails
    (mail is then answered 4xx, never accepted unrecorded)."""
    connect_timeout_seconds: int = Field(default=5, ge=1, le=300)
    """PostgreSQL: how long opening a connection may take before the database counts as
    unreachable."""
    probe_interval_seconds: float = Field(default=5.0, gt=0, le=300)
    """serve asks the store this often whether it answers; while it does not, new mail is
    answered 451 (mail already spooled is still delivered)."""

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(STORE_URL_SCHEMES):
            raise ValueError(
                f"store url {value.split('@')[-1]!r}: expected sqlite:///PATH or "
                "postgresql://USER@HOST/DATABASE"
            )
        return value

    def resolve_url(self, data_dir: Path) -> str:
        """The URL SQLAlchemy opens: a relative SQLite path made relative to ``data_dir``;
        ``postgresql://`` given psycopg 3 as its driver."""
        prefix = "sqlite:///"
        if not self.url.startswith(prefix):
            scheme, _, rest = self.url.partition("://")
            return f"postgresql+psycopg://{rest}" if scheme == "postgresql" else self.url
        path = self.url[len(prefix) :]
        if not path or path == ":memory:":
            raise ValueError("store url: an SQLite store needs a file")
        return prefix + str((data_dir / path).absolute())


# The store URLs this version opens (StoreSettings.url).
STORE_URL_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+psycopg://")


class ReleaseSettings(Section):
    """Held mail: releases and exceptions (例外措置) are recorded in the store by the command
    line (or the console) and carried out by serve, which sanitizes the original again and
    delivers it like any other mail."""

    poll_interval_seconds: float = Field(default=5.0, gt=0)
    """How often serve looks in the store for approved releases to carry out."""
    batch: int = Field(default=20, gt=0, le=1000)
    """Releases carried out per look (the rest wait for the next one)."""
    exception_days: float = Field(default=7.0, gt=0, le=366)
    """An approved exception expires this long after its approval unless the approver gives
    --expires; serve does not carry out an expired one."""
    lease_seconds: float = Field(default=600.0, gt=0, le=86400)
    """A node that takes an approved release to carry it out holds it this long; if the node
    dies meanwhile, another node (or itself, restarted) takes it after that."""


class DigestSettings(Section):
    """The daily digests: each recipient address of a console user is sent, once a day, the
    list of its mail held in the last day, with signed links that only open the console's page
    (a release is asked for there, signed in); and the operators' daily summary of the same
    figures as the statistics page (log review, 6(5)⑥ウ)."""

    enabled: bool = False
    """serve sends the digests and the operators' summary every day at send_at."""
    send_at: str = "08:00"
    """Time of day (HH:MM, 24-hour) in service.display_timezone at which serve sends them;
    they cover the day before that moment."""
    link_lifetime_seconds: float = Field(default=3 * 86400, gt=0, le=90 * 86400)
    """How long a digest's links stay valid (3 days)."""
    max_entries: int = Field(default=100, ge=1, le=1000)
    """Held messages listed in one digest; the digest says when there are more."""
    max_recipients: int = Field(default=10_000, ge=1, le=1_000_000)
    """Addresses sent a digest per day (the console users' addresses, in sorted order); serve
    logs when there are more."""
    summary_recipients: tuple[str, ...] = ()
    """Addresses of the operators who get the daily summary (log review); [] = none."""
    top_count: int = Field(default=10, ge=1, le=100)
    """Senders and recipients listed in the statistics page and the summary."""
    statistics_max_days: int = Field(default=31, ge=1, le=366)
    """The longest period the statistics page counts over."""
    statistics_max_messages: int = Field(default=200_000, ge=1000, le=10_000_000)
    """Messages one statistics page (or summary) reads at most; over a period with more, the
    figures are of the first ones and the page says so."""

    @field_validator("send_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise ValueError("expected HH:MM (24-hour), e.g. 08:00")
        return value

    @property
    def send_hour_minute(self) -> tuple[int, int]:
        hour, minute = self.send_at.split(":")
        return int(hour), int(minute)


class AuditSettings(Section):
    """One JSON line per message and per delivery attempt (times in UTC)."""

    path: str = ""
    """"" = DATA_DIR/audit/audit.jsonl; "-" = stdout (for a service whose stdout goes to
    journald); a relative path is taken relative to the data directory."""
    fsync: bool = False
    """fsync after every line: the strongest evidence, at the cost of one disk flush per
    message."""
    retention_days: float = Field(default=0.0, ge=0)
    """serve deletes rotated audit files (audit.jsonl-20261201.gz, audit.jsonl.1, …) older than
    this; the live file never. 0 = keep them (logrotate's rotate count decides)."""
    syslog: bool = False
    """Also send every audit line to syslog (for a security operations centre)."""
    syslog_address: str = "/dev/log"
    """A Unix socket path, or host:port for UDP."""
    syslog_facility: Literal[
        "user",
        "daemon",
        "auth",
        "authpriv",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ] = "local0"
    """The syslog facility of the audit lines (severity info)."""

    def resolve_path(self, data_dir: Path) -> Path | None:
        """The file to write, or None for stdout."""
        if self.path == "-":
            return None
        if not self.path:
            return data_dir / "audit" / "audit.jsonl"
        return data_dir / self.path


class MetricsSettings(Section):
    """The Prometheus exporter. Off by default; --metrics HOST:PORT turns it on."""

    enabled: bool = False
    """Serve /metrics over HTTP."""
    host: str = "127.0.0.1"
    """Address the exporter binds to."""
    port: int = Field(default=9464, ge=0, le=65535)
    """TCP port of the exporter (9464: the usual exporter port); 0 = any free port."""


class ConsoleSettings(Section):
    """The web console (mukaika console): where it listens, how it is reached, how sign-ins
    and PPAP attempts are limited; the held notices show public_url and contact, with a signed
    PPAP link per recipient when public_url is set."""

    listen: str = "127.0.0.1:8025"
    """HOST:PORT the console listens on. Without tls_cert_file and tls_key_file it serves plain
    HTTP, which is allowed on a loopback address only (behind a reverse proxy on the same
    host)."""
    tls_cert_file: str = ""
    """PEM certificate chain for HTTPS; "" = plain HTTP (loopback only)."""
    tls_key_file: str = ""
    """PEM private key of tls_cert_file."""
    public_url: str = ""
    """Address of the page where staff give the password of a held message (PPAP) and see
    held mail; "" = none yet, the notice asks them to tell the contact instead."""
    contact: str = ""
    """Who to ask about held mail, as the notices show it (e.g. "情報政策課 内線1234");
    "" = the notice says "情報システム担当" (ja) / "your IT administrators" (en)."""
    secret_key_file: str = ""
    """The key that signs the PPAP links in held notices (serve) and the console's sessions,
    shared by both: a path, relative to service.data_dir unless absolute; "" =
    DATA_DIR/secret_key. Created (mode 0600) when missing; a file others may read is
    refused."""
    trusted_proxies: Networks = ()
    """Addresses or networks (CIDR) of the reverse proxies or screen-transfer servers in front
    of the console: only from these is X-Forwarded-For / X-Forwarded-Proto believed, and the
    client address (sign-in limits, audit) is then taken from it."""
    max_failures_per_user: int = Field(default=5, ge=1, le=1000)
    """Failed sign-ins of one user name before that user is locked out for lockout_seconds."""
    max_failures_per_address: int = Field(default=50, ge=1, le=100000)
    """Failed sign-ins from one client address (all users) before that address is locked out
    for lockout_seconds; higher than the per-user limit because many staff share one address
    behind a proxy."""
    lockout_seconds: float = Field(default=900.0, gt=0)
    """How long failures are counted, and how long a lockout lasts."""
    session_idle_seconds: float = Field(default=1800.0, gt=0)
    """A console session ends after this long without a request."""
    session_max_seconds: float = Field(default=36000.0, gt=0)
    """A console session ends this long after its sign-in, however active."""
    link_lifetime_seconds: float = Field(default=7 * 86400, gt=0, le=90 * 86400)
    """How long the PPAP link in a held notice stays valid (7 days)."""
    unlock_attempts_per_link: int = Field(default=5, ge=1, le=1000)
    """Password attempts on the PPAP page with one link (one recipient of one message) per
    unlock_attempts_window_seconds; the message's own limit is policy.unlock.max_attempts."""
    unlock_attempts_per_user: int = Field(default=10, ge=1, le=1000)
    """Password attempts on the PPAP page by one logged-in user per window."""
    unlock_attempts_per_address: int = Field(default=100, ge=1, le=100_000)
    """Password attempts on the PPAP page from one client address per window; high, since a
    whole town hall may arrive through one screen-transfer server or proxy."""
    unlock_attempts_window_seconds: float = Field(default=3600, gt=0, le=86400)
    """The window of the attempt limits above."""

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http://)")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_listen(value)
        return value

    @model_validator(mode="after")
    def _https_or_loopback(self) -> Self:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file are given together (or neither)")
        host, _ = split_listen(self.listen)
        if not self.tls_cert_file and not is_loopback(host):
            raise ValueError(
                f"listen = {self.listen!r} serves plain HTTP on a non-loopback address: give "
                "tls_cert_file and tls_key_file, or listen on 127.0.0.1 behind a reverse proxy"
            )
        return self

    @property
    def https(self) -> bool:
        """Whether the console serves HTTPS itself."""
        return bool(self.tls_cert_file)


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets) as a pair; ValueError if it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(value: str) -> str:
    """A name server as "host:port" (IPv6 in brackets: "[::1]:53")."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"name server {value!r}: expected host:port (IPv6 as [addr]:port)")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"name server {value!r}: the host must be an IP address") from exc
    return value


class AuthReportsSettings(Section):
    """DMARC aggregate reports (RFC 7489 section 7) to the domains whose record asks for them
    (rua); off by default."""

    enabled: bool = False
    """Record each DMARC evaluation and send the daily aggregate reports
    (mukaika dmarc-reports)."""
    from_address: str = ""
    """The From address of the reports (required when enabled)."""
    org_name: str = ""
    """The reporting organisation's name in the reports (required when enabled)."""

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if self.enabled and not (self.from_address.strip() and self.org_name.strip()):
            raise ValueError("auth.reports.enabled needs from_address and org_name")
        if self.from_address and "@" not in self.from_address:
            raise ValueError(f"auth.reports.from_address {self.from_address!r} is no address")
        return self


class AuthSettings(Section):
    """Sender authentication of incoming mail (SPF, DKIM, DMARC, ARC), evaluated before the
    250 from the envelope and the original bytes; the result is written into the rebuilt
    message as an Authentication-Results header. Off by default."""

    enabled: bool = False
    """Evaluate SPF, DKIM, DMARC and ARC for every message."""
    nameservers: tuple[str, ...] = ()
    """Name servers to ask, each "host:port" (IPv6 as "[addr]:port"); empty = the system's
    resolver (/etc/resolv.conf)."""
    authserv_id: str = ""
    """The authserv-id of our Authentication-Results header (RFC 8601); "" = the SMTP
    hostname. Incoming headers that claim it are removed."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """The whole evaluation of one message at the end of DATA (every DNS query included);
    when it runs out, the results are temperror, and a message a "reject" action might
    refuse is answered 451 (try again later)."""
    cache_entries: int = Field(default=10000, ge=0, le=1_000_000)
    """DNS answers kept in memory (least recently used); 0 = no cache."""
    trusted_authserv_ids: tuple[str, ...] = ()
    """Relays in front (e.g. Postfix with OpenDKIM/OpenDMARC) whose Authentication-Results
    are taken instead of evaluating again; each must remove incoming headers with its id."""
    arc_trusted_sealers: tuple[str, ...] = ()
    """Forwarders (ARC sealer domains, d= of ARC-Seal) whose valid ARC chain vouches for the
    authentication results they saw: a DMARC failure under such a chain gets no action (the
    header says "trusted forwarder")."""
    dmarc_reject_action: AuthAction = AuthAction.REJECT
    """DMARC fails and the sender's domain publishes p=reject. Each action is one of
    "reject" (550 5.7.1 at the end of DATA, before the 250), "hold" (the recipients get a
    notice), "warn" (a subject tag and a warning at the top of the body) or "none" (the
    result is recorded). After a 250 an authentication failure never bounces to the sender."""
    dmarc_quarantine_action: AuthAction = AuthAction.HOLD
    """DMARC fails and the domain publishes p=quarantine."""
    dmarc_fail_action: AuthAction = AuthAction.WARN
    """DMARC fails and the domain publishes p=none (most Japanese municipalities)."""
    temperror_action: AuthAction = AuthAction.NONE
    """A DNS failure (temperror): "none" delivers with the result recorded; "reject" answers
    451 (the sender retries)."""
    reports: AuthReportsSettings = AuthReportsSettings()

    @field_validator("nameservers")
    @classmethod
    def _servers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_host_port(item) for item in value)

    @field_validator("authserv_id", "trusted_authserv_ids", "arc_trusted_sealers")
    @classmethod
    def _names(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for name in [value] if isinstance(value, str) else value:
            if name and not _DOMAIN_LIKE.fullmatch(name):
                raise ValueError(f"{name!r} is not a host or domain name")
        if isinstance(value, tuple):
            return tuple(name.lower() for name in value)
        return value.lower()

    def actions(self) -> tuple[AuthAction, ...]:
        """Every action configured."""
        return (
            self.dmarc_reject_action,
            self.dmarc_quarantine_action,
            self.dmarc_fail_action,
            self.temperror_action,
        )


# A host or domain name: dot-separated labels of letters, digits and inner hyphens.
_DOMAIN_LIKE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def domain_name(value: str) -> str:
    """A domain name, lower-case and without a final dot; ValueError when it is none."""
    text = value.strip().lower().rstrip(".")
    if not _DOMAIN_LIKE.fullmatch(text):
        raise ValueError(f"{value!r} is not a domain name")
    return text


class ApprovalGroup(Section):
    """One group of senders and the approvers (上長) who decide on their held outbound mail."""

    name: str = Field(min_length=1, max_length=100)
    """The group's name (shown in the audit and the notices)."""
    senders: tuple[str, ...] = ()
    """Sender addresses or domains (``*.example.lg.jp`` for sub-domains) in the group."""
    approvers: tuple[str, ...] = ()
    """Workflow users (mukaika user add NAME --role approver) who may approve or deny. Name
    them by their mail address so that self-approval can be recognised."""
    self_approval: bool = False
    """An approver may decide on their own mail."""
    approvals_required: int = Field(default=1, ge=1, le=100)
    """k of n: how many of the approvers must approve a held mail before it is sent (each
    approval recorded in the audit); one rejection rejects it. At most the number of
    approvers."""

    @model_validator(mode="after")
    def _enough_approvers(self) -> Self:
        if self.approvers and self.approvals_required > len(self.approvers):
            raise ValueError(
                f"outbound.groups {self.name!r}: approvals_required "
                f"({self.approvals_required}) is more than its approvers ({len(self.approvers)})"
            )
        return self


class DkimKey(Section):
    """The DKIM signing key of one sending domain."""

    domain: str = Field(min_length=1)
    """The sender domain (From) signed with this key; its own d= tag."""
    selector: str = Field(min_length=1)
    """The selector: its public key is published at SELECTOR._domainkey.DOMAIN."""
    key_file: str = Field(min_length=1)
    """The private key (PEM, RSA or Ed25519), readable by the service only."""


class OutboundSettings(Section):
    """The outbound direction: mail from the LGWAN-side MTA to the Internet, checked (malware,
    My Number, the [policy.outbound] checks), held for approval or refused, and relayed to
    the prefecture's security cloud unchanged but for Bcc conversion and a DKIM signature.
    Checks in this order: delay → filters and approval → conversion."""

    enabled: bool = False
    """Run the outbound listener (its own port; never the Internet-facing one)."""
    listen: str = "127.0.0.1:2526"
    """HOST:PORT the outbound listener binds to (the LGWAN side; IPv6 in brackets); port 0 =
    any free port."""
    client_networks: Networks = ()
    """Networks (CIDR) of the LGWAN-side MTAs allowed to send outbound; everyone else is
    refused (554 5.7.1). Required when enabled."""
    auth: bool = False
    """SMTP AUTH (PLAIN, LOGIN) on the outbound listener: every client in client_networks must
    also log in as an enabled user of the store with their console password before MAIL
    (530 5.7.0); AUTH only after STARTTLS ([smtp] tls_cert_file; 538 5.7.11 before it), but
    see auth_loopback_without_tls."""
    auth_loopback_without_tls: bool = True
    """With auth: a client on loopback (a mail program on the mukaika host itself) may log in
    without STARTTLS; every other client only after STARTTLS."""
    auth_sender_match: bool = True
    """With auth: the envelope sender must be the user's name or one of their addresses
    (553 5.7.1)."""
    auth_max_failures: int = Field(default=5, ge=1, le=1000)
    """With auth: failed logins of one user name, and (ten times as many) from one client
    address, before it is locked out for auth_lockout_seconds (535 5.7.8 while locked)."""
    auth_lockout_seconds: float = Field(default=900.0, gt=0)
    """With auth: how long failures are counted, and how long a lockout lasts."""
    relay_host: str = ""
    """The smarthost outbound mail is relayed to (the prefecture's security cloud)."""
    relay_port: int = Field(default=25, gt=0, le=65535)
    """Its SMTP port."""
    tls: Literal["opportunistic", "starttls", "none"] = "opportunistic"
    """To the relay: STARTTLS when offered ("opportunistic"), always ("starttls": a relay
    that does not offer it defers the mail), or never."""
    require_tls_domains: tuple[str, ...] = ()
    """Recipient domains whose mail leaves only over STARTTLS, whatever tls says."""
    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """SIZE of the outbound listener (552 5.3.4); the outbound size limit (⑭ウ)."""
    max_recipients: int = Field(default=100, ge=1)
    """Recipients per outbound transaction; each further one: 452 4.5.3."""
    delay_seconds: float = Field(default=0.0, ge=0)
    """送信遅延: every outbound mail waits this long before it is checked and sent; its
    sender can cancel it meanwhile (mukaika outbound cancel). 0 = no delay."""
    bcc_threshold: int = Field(default=0, ge=0)
    """Bcc conversion: when more outside recipients than this are in To and Cc, they are
    removed from those headers (kept in the envelope; To becomes undisclosed-recipients:;
    when nothing is left). 0 = never."""
    max_per_sender_per_hour: int = Field(default=0, ge=0)
    """Messages one sender may send in an hour; past it the sender's mail is held and counted
    in mukaika_outbound_rate_limited_total. 0 = no limit."""
    max_per_hour: int = Field(default=0, ge=0)
    """Messages all senders together may send in an hour (the same hold). 0 = no limit."""
    approval_expiry_seconds: float = Field(default=72 * 3600.0, gt=0)
    """A held outbound mail nobody decided on in this time is refused, with a notice to the
    sender."""
    groups: tuple[ApprovalGroup, ...] = ()
    """[[outbound.groups]]: who approves whose held mail, for installations without a
    directory. Once mukaika user import has put groups in the store, the directory's groups
    decide and these are not read. A held mail of a sender in no group can be decided by any
    approver."""
    disclaimer: str = ""
    """A text (免責文) appended to the text of outbound mail where that needs no re-encoding: a
    text/plain body in 7bit or 8bit UTF-8, US-ASCII or ISO-2022-JP, alone or first in
    multipart/mixed, or the text/plain alternative of multipart/alternative (the HTML one is
    left as it is); other mail leaves without it (the audit line says so). "" = none."""
    notify_sender: bool = True
    """Tell the sender (through the LGWAN-side MTA, delivery.relay_host) when their mail is
    held, refused, cancelled or decided."""
    dkim: tuple[DkimKey, ...] = ()
    """[[outbound.dkim]]: one signing key per sending domain; mail from other domains leaves
    unsigned."""

    @field_validator("disclaimer")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if any(ord(c) < 0x20 and c not in "\n\t" for c in value):
            raise ValueError("control characters other than line breaks are not allowed")
        return value

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict) and ({"listen_host", "listen_port"} & data.keys()):
            raise ValueError(
                "outbound.listen_host and outbound.listen_port were replaced by "
                'outbound.listen = "HOST:PORT"'
            )
        return data

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int]:
        """The listener's host and port, from ``listen``."""
        return split_listen(self.listen)

    @model_validator(mode="after")
    def _usable(self) -> Self:
        if self.enabled and not self.client_networks:
            raise ValueError(
                "outbound.enabled needs outbound.client_networks (who may send outbound)"
            )
        if self.enabled and not self.relay_host:
            raise ValueError("outbound.enabled needs outbound.relay_host (where mail leaves)")
        names = [group.name for group in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("outbound.groups: duplicate group name")
        return self


class DirectorySettings(Section):
    """[directory]: where `mukaika user import --ldap` reads the staff, their addresses,
    groups (課) and roles: an LDAP or Active Directory server, read with a read-only bind (a
    bind and searches, never a change). `mukaika user import --csv` reads only max_users."""

    url: str = ""
    """The server: ldap://HOST[:PORT] (with tls = "starttls" or "none") or ldaps://HOST[:PORT]
    (TLS from the first byte); "" = no directory server."""
    bind_dn: str = ""
    """The DN the import binds as (a read-only account); "" = an anonymous bind."""
    bind_password_file: str = ""
    """A file holding the bind password (its first line), readable by the service only; the
    password is never written in the configuration."""
    base_dn: str = ""
    """Where the search for users starts (subtree), e.g. "ou=staff,dc=city,dc=example,dc=jp"."""
    user_filter: str = "(&(objectClass=inetOrgPerson)(mail=*))"
    """The LDAP filter (RFC 4515) that selects the users to import; for Active Directory e.g.
    "(&(objectCategory=person)(objectClass=user)(mail=*))"."""
    login_attribute: str = "uid"
    """The attribute holding the user's login name (the name of the workflow user; Active
    Directory: sAMAccountName)."""
    mail_attribute: str = "mail"
    """The attribute holding the user's addresses (every value is imported)."""
    group_attribute: str = "ou"
    """The attribute naming the user's groups (課; every value is a group, e.g. ou or
    department). A value that is a DN (memberOf: "cn=税務課,ou=groups,...") names the group by
    its first RDN's value."""
    role_attribute: str = ""
    """The attribute that decides the role through role_map (e.g. employeeType or memberOf);
    "" = every user gets default_role."""
    role_map: dict[str, UserRole] = Field(default_factory=dict)
    """[directory.role_map]: a value of role_attribute (compared without regard to case) and
    the role it gives, e.g. "cn=approvers,ou=groups,dc=city,dc=example,dc=jp" = "approver".
    A user with values mapping to two different roles is refused."""
    default_role: UserRole = UserRole.RECIPIENT
    """The role of a user none of whose role_attribute values is in role_map."""
    tls: Literal["starttls", "none"] = "starttls"
    """For ldap:// URLs: "starttls" upgrades the connection before the bind (the server's
    certificate is verified); "none" sends the bind password in the clear and is allowed only
    to a loopback address. Ignored for ldaps://."""
    tls_ca_file: str = ""
    """PEM CA bundle that verifies the server's certificate; "" = the system's."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Connecting, the bind and each search page must answer within this time."""
    max_users: int = Field(default=20000, ge=1, le=1_000_000)
    """The most users one import (LDAP or CSV) may list; a larger one is refused whole."""
    self_approval: bool = False
    """An approver of a directory group may decide on their own held outbound mail."""
    approvals_required: int = Field(default=1, ge=1, le=100)
    """k of n for the directory's groups: how many approvers of the sender's group must approve
    a held outbound mail (one rejection rejects it). A group needs at least this many approvers
    (mukaika user groups lists them), or its mail waits until it expires."""

    @field_validator("role_map")
    @classmethod
    def _folded(cls, value: dict[str, UserRole]) -> dict[str, UserRole]:
        return {key.strip().lower(): role for key, role in value.items()}

    @model_validator(mode="after")
    def _usable(self) -> Self:
        if not self.url:
            return self
        scheme, _, rest = self.url.partition("://")
        if scheme not in ("ldap", "ldaps") or not rest:
            raise ValueError("directory.url must be ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
        if not self.base_dn:
            raise ValueError("directory.url needs directory.base_dn (where the users are)")
        if bool(self.bind_dn) != bool(self.bind_password_file):
            raise ValueError("directory.bind_dn and directory.bind_password_file are set together")
        host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if scheme == "ldap" and self.tls == "none" and not _is_loopback(host):
            raise ValueError(
                'directory.tls = "none" sends the bind password in the clear: only to a '
                "loopback address (use starttls or ldaps://)"
            )
        return self


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
