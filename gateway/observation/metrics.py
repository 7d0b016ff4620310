"""Prometheus metrics of the gateway: what came in, what went out, how long it took.

Intent
------
:class:`Metrics` owns its own :class:`prometheus_client.CollectorRegistry` (never the global
one: tests and embedded uses create many), exposes small typed methods that the receiver,
worker and delivery call, renders the text exposition, and can serve it over HTTP.

Every name starts with ``mukaika_``:

=========================================  =========  =========================================
``mukaika_received_total``                 counter    messages accepted (250 after DATA)
``mukaika_rejected_total{reason}``         counter    messages or transactions refused
``mukaika_delivered_total``                counter    messages handed to the LGWAN-side MTA
``mukaika_deferred_total``                 counter    delivery attempts that will be retried
``mukaika_dead_lettered_total``            counter    messages given up on
``mukaika_verdicts_total{verdict}``        counter    sanitizer verdicts
``mukaika_parts_total{action,reason}``     counter    MIME parts by action and reason
``mukaika_quarantined_total``              counter    originals stored in the quarantine
``mukaika_auth_results_total{method,result}`` counter sender authentication results
``mukaika_sanitize_seconds``               histogram  time to sanitize one message
``mukaika_end_to_end_seconds``             histogram  from 250 to delivered
``mukaika_queue_depth{state}``             gauge      spool entries per state
``mukaika_oldest_queued_age_seconds``      gauge      age of the oldest queued message
``mukaika_busy_workers``                   gauge      workers busy right now
``mukaika_expired_exceptions``             gauge      exceptions (例外措置) past their expiry date
``mukaika_scanner_up``                     gauge      1 when clamd answered the last probe, else 0
``mukaika_store_up``                       gauge      1 when the store answered the last probe
``mukaika_clock_synchronized``             gauge      1 when NTP synchronised the system clock
``mukaika_outbound_total{event}``          counter    outbound mail by event (received, held,
                                                      rejected, delivered, ...); the counters
                                                      above count inbound mail only
``mukaika_outbound_rate_limited_total``    counter    outbound mail held by the rate limits
  ``{scope}``                                         (``sender`` or ``all``)
``mukaika_tenant_messages_total``          counter    with tenants: each tenant's inbound mail
  ``{tenant,outcome}``                                by verdict (deliver, hold, reject) and
                                                      ``delivered``; tenant names are the
                                                      configuration's, never from mail
=========================================  =========  =========================================

Threat model
------------
Label values come from outside in the end (a reason reached while parsing hostile mail), and
every distinct label value is a time series kept in memory forever. So a label value is taken
only from a fixed set: the shared vocabulary (:mod:`sanitizers.vocabulary`), plus the SMTP
rejection reasons (:class:`sanitizers.vocabulary.SmtpRefusal`) and the message states
(:class:`sanitizers.vocabulary.MessageState`); anything else is counted as ``other``. No
address, id, host name or free text ever becomes a label. The HTTP endpoint binds to
``127.0.0.1`` unless configured otherwise and serves only the exposition.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)

from sanitizers.senderauth import AUTH_METHODS, AUTH_RESULTS
from sanitizers.vocabulary import (
    Action,
    MessageState,
    OutboundEvent,
    Reason,
    SmtpRefusal,
    Verdict,
)

OTHER: Final = "other"
AUTH_METHOD_LABELS: Final = frozenset(AUTH_METHODS)
AUTH_RESULT_LABELS: Final = frozenset(AUTH_RESULTS)

SMTP_REJECT_REASONS: Final[frozenset[str]] = frozenset(str(r) for r in SmtpRefusal)
# Why a part was removed when its sanitizer failed (the MukaikaSanitizerFailures alert).
FAILURE_REASONS: Final = (Reason.CRASH, Reason.TIMEOUT, Reason.ERROR)
REJECT_REASONS: Final[frozenset[str]] = SMTP_REJECT_REASONS | {str(r) for r in Reason}
ACTIONS: Final[frozenset[str]] = frozenset(str(a) for a in Action)
REASONS: Final[frozenset[str]] = frozenset(str(r) for r in Reason)
VERDICTS: Final[frozenset[str]] = frozenset(str(v) for v in Verdict)
QUEUE_STATES: Final[frozenset[str]] = frozenset(str(s) for s in MessageState)
OUTBOUND_EVENTS: Final[frozenset[str]] = frozenset(str(e) for e in OutboundEvent)
RATE_SCOPES: Final = frozenset({"sender", "all"})
TENANT_OUTCOMES: Final[frozenset[str]] = VERDICTS | {"delivered"}

# Sanitizing takes milliseconds for text mail and up to the CDR limit (20 s) for files.
SANITIZE_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
# End to end includes retries: seconds to days (the lifetime default is 5 days).
END_TO_END_BUCKETS: Final = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    4 * 3600,
    24 * 3600,
    5 * 24 * 3600,
)


def bounded_label(value: object, allowed: frozenset[str]) -> str:
    """``value`` as a label when it is in ``allowed``, else ``other``."""
    text = str(value)
    return text if text in allowed else OTHER


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as a pair; ValueError names what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr; an idle or slow client is dropped after a few seconds."""

    timeout = 2.0

    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class MetricsServer:
    """A running HTTP endpoint; :meth:`close` stops it and waits for its thread."""

    server: WSGIServer
    thread: threading.Thread
    _closed: bool = field(default=False, init=False)

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Metrics:
    """Every metric of one gateway, in a registry of its own. Methods are thread-safe."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        reg = self.registry
        self._received = Counter("mukaika_received", "Messages accepted.", registry=reg)
        self._rejected = Counter(
            "mukaika_rejected", "Messages or transactions refused.", ["reason"], registry=reg
        )
        self._delivered = Counter(
            "mukaika_delivered", "Messages delivered to the LGWAN-side MTA.", registry=reg
        )
        self._deferred = Counter(
            "mukaika_deferred", "Delivery attempts deferred for a retry.", registry=reg
        )
        self._dead = Counter("mukaika_dead_lettered", "Messages given up on.", registry=reg)
        self._verdicts = Counter(
            "mukaika_verdicts", "Sanitizer verdicts.", ["verdict"], registry=reg
        )
        self._parts = Counter(
            "mukaika_parts", "MIME parts by action and reason.", ["action", "reason"], registry=reg
        )
        self._quarantined = Counter(
            "mukaika_quarantined", "Originals stored in the quarantine.", registry=reg
        )
        self._auth_results = Counter(
            "mukaika_auth_results",
            "Sender authentication results (SPF, DKIM, DMARC, ARC) of the messages sanitized.",
            ["method", "result"],
            registry=reg,
        )
        self._sanitize = Histogram(
            "mukaika_sanitize_seconds",
            "Time to sanitize one message.",
            buckets=SANITIZE_BUCKETS,
            registry=reg,
        )
        self._end_to_end = Histogram(
            "mukaika_end_to_end_seconds",
            "Time from acceptance to delivery.",
            buckets=END_TO_END_BUCKETS,
            registry=reg,
        )
        self._queue_depth = Gauge(
            "mukaika_queue_depth", "Spool entries per state.", ["state"], registry=reg
        )
        self._oldest = Gauge(
            "mukaika_oldest_queued_age_seconds",
            "Age of the oldest queued message.",
            registry=reg,
        )
        self._busy = Gauge("mukaika_busy_workers", "Workers busy right now.", registry=reg)
        self._outbound = Counter(
            "mukaika_outbound", "Outbound mail by event.", ["event"], registry=reg
        )
        self._rate_limited = Counter(
            "mukaika_outbound_rate_limited",
            "Outbound mail held by the rate limits.",
            ["scope"],
            registry=reg,
        )
        for scope in sorted(RATE_SCOPES):  # served at 0 from the start: increase() sees the 1st
            self._rate_limited.labels(scope)
        self._tenant_messages = Counter(
            "mukaika_tenant_messages",
            "Inbound mail of each tenant by verdict, and delivered.",
            ["tenant", "outcome"],
            registry=reg,
        )
        # No label: a rule name is operator text, and check-config lists the names.
        self._expired_exceptions = Gauge(
            "mukaika_expired_exceptions",
            "Exceptions (rules with exception = true) past their expiry date; they are skipped.",
            registry=reg,
        )
        # Created by the first probe: absent while the scanner is off, so no alert fires then.
        self._scanner_up: Gauge | None = None
        self._scanner_lock = threading.Lock()
        self._store_up = Gauge(
            "mukaika_store_up",
            "1 when the store (database) answered serve's last probe, else 0 (new mail gets 451).",
            registry=reg,
        )
        self._store_up.set(1)  # serve opened it: it answered
        # 0 until the first answer: unknown counts as not synchronised (observation/clock.py).
        self._clock_synchronized = Gauge(
            "mukaika_clock_synchronized",
            "1 when the system clock is synchronised (NTP, as systemd-timedated reports), else 0.",
            registry=reg,
        )
        # Series that exist from the start, so dashboards see zeros rather than gaps, and so
        # the first event is an increase: a labelled counter that appears with its first event
        # at 1 has no earlier sample, and increase() and rate() in the alert rules miss it.
        for verdict in sorted(VERDICTS):
            self._verdicts.labels(verdict=verdict)
        for smtp_reason in sorted(SMTP_REJECT_REASONS):
            self._rejected.labels(reason=smtp_reason)
        for failure in FAILURE_REASONS:
            self._parts.labels(action=str(Action.REMOVED), reason=str(failure))

    # -- counters --------------------------------------------------------------------------

    def received(self) -> None:
        self._received.inc()

    def rejected(self, reason: SmtpRefusal | Reason) -> None:
        self._rejected.labels(reason=bounded_label(reason, REJECT_REASONS)).inc()

    def delivered(self) -> None:
        self._delivered.inc()

    def deferred(self) -> None:
        self._deferred.inc()

    def dead_lettered(self) -> None:
        self._dead.inc()

    def verdict(self, verdict: Verdict) -> None:
        self._verdicts.labels(verdict=bounded_label(verdict, VERDICTS)).inc()

    def part(self, action: Action, reason: Reason) -> None:
        self._parts.labels(
            action=bounded_label(action, ACTIONS), reason=bounded_label(reason, REASONS)
        ).inc()

    def quarantined(self) -> None:
        self._quarantined.inc()

    def auth_result(self, method: str, result: str) -> None:
        self._auth_results.labels(
            method=bounded_label(method, AUTH_METHOD_LABELS),
            result=bounded_label(result, AUTH_RESULT_LABELS),
        ).inc()

    # -- histograms ------------------------------------------------------------------------

    def observe_sanitize(self, seconds: float) -> None:
        self._sanitize.observe(max(0.0, seconds))

    def observe_end_to_end(self, seconds: float) -> None:
        self._end_to_end.observe(max(0.0, seconds))

    # -- gauges ----------------------------------------------------------------------------

    def set_queue_depth(self, state: MessageState, n: int) -> None:
        self._queue_depth.labels(state=bounded_label(state, QUEUE_STATES)).set(n)

    def set_oldest_age(self, seconds: float) -> None:
        self._oldest.set(max(0.0, seconds))

    def set_busy_workers(self, n: int) -> None:
        self._busy.set(n)

    def set_expired_exceptions(self, n: int) -> None:
        self._expired_exceptions.set(max(0, n))

    def set_scanner_up(self, up: bool) -> None:
        with self._scanner_lock:
            if self._scanner_up is None:
                self._scanner_up = Gauge(
                    "mukaika_scanner_up",
                    "1 when the malware scanner (clamd) answered the last probe, else 0.",
                    registry=self.registry,
                )
            gauge = self._scanner_up
        gauge.set(1 if up else 0)

    def set_clock_synchronized(self, synchronized: bool) -> None:
        self._clock_synchronized.set(1 if synchronized else 0)

    def set_store_up(self, up: bool) -> None:
        self._store_up.set(1 if up else 0)

    # -- exposition ------------------------------------------------------------------------

    def outbound(self, event: OutboundEvent) -> None:
        self._outbound.labels(bounded_label(event, OUTBOUND_EVENTS)).inc()

    def rate_limited(self, scope: str) -> None:
        self._rate_limited.labels(bounded_label(scope, RATE_SCOPES)).inc()

    def tenant_message(self, tenant: str, outcome: Verdict | str) -> None:
        """One of ``tenant``'s messages sanitized (a verdict) or delivered (``delivered``)."""
        self._tenant_messages.labels(tenant, bounded_label(outcome, TENANT_OUTCOMES)).inc()

    def render(self) -> bytes:
        """The text exposition format (``text/plain; version=0.0.4``)."""
        return generate_latest(self.registry)

    def serve(self, host: str = "127.0.0.1", port: int = 9464) -> MetricsServer:
        """Serve the exposition on ``host:port`` (port 0 picks a free one) in a daemon thread.

        Raises OSError naming the address when it cannot bind (in use, unknown host).
        """
        try:
            family = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0][0]
            server_class = type("_MetricsHTTPServer", (WSGIServer,), {"address_family": family})
            server: WSGIServer = make_server(
                host,
                port,
                make_wsgi_app(self.registry),
                server_class=server_class,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        # One request at a time, each bounded by the handler's timeout: a flood of scrapers
        # cannot make threads; a short poll interval makes close() quick.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mukaika-metrics",
            daemon=True,
        )
        thread.start()
        return MetricsServer(server, thread)
