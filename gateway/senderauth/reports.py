"""DMARC aggregate reports (RFC 7489 section 7): what was evaluated, told to the domains that ask.

Recording: with ``auth.reports.enabled``, each DMARC evaluation (refused mail included) is one
JSON line in ``DATA_DIR/dmarc/YYYY-MM-DD.PID.jsonl`` (UTC day; one file per process, so the
receiving processes never share a file); with tenants, a message for several tenants is one
line per tenant (``tenant``), and each tenant reports its own mail with its own
``[tenants.auth.reports]``. Reporting (``mukaika dmarc-reports``): a day's lines
are grouped by the domain whose record applied; for each domain that publishes ``rua``, one
``feedback`` document (RFC 7489 Appendix C, checked against the schema the ``dmarc`` package
ships) with one row per distinct source address, identifiers, results and disposition.

Threat model: the ``rua`` addresses come from DNS, written by the sender's domain, and reports
name our mail flows. A destination outside the policy domain's organisational domain gets a
report only when its domain publishes ``<policy-domain>._report._dmarc.<its domain>`` (RFC
7489 7.1), so a domain cannot make us send reports to a stranger. Only ``mailto:`` destinations
are used; a size limit (``!10m``) in the URI is honoured by not sending a larger report. Every
value written into the XML is escaped by the XML library, never by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import itertools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from gateway.senderauth.evaluate import Evaluation, Transaction, organisational_domain
from gateway.senderauth.resolver import DnsTemporaryError, Lookup
from sanitizers.senderauth import AuthAction

# What the report says was done: "hold" is quarantine; "warn" and "none" deliver.
_DISPOSITIONS = {AuthAction.REJECT: "reject", AuthAction.HOLD: "quarantine"}
_MAILTO = re.compile(r"^mailto:([^@!,\s]{1,64}@[A-Za-z0-9.-]{1,253})(?:!(\d+)([kmgt]?))?$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MAX_RECORD_LINE = 64 * 1024  # a longer line in a record file is skipped, never read whole


class Recorder:
    """Appends each DMARC evaluation of this process to the day's file."""

    def __init__(self, directory: Path, clock: Any = time.time) -> None:
        self.directory = directory
        self.clock = clock

    def record(
        self,
        evaluation: Evaluation,
        transaction: Transaction,
        action: AuthAction,
        tenants: Sequence[str] = ("",),
    ) -> None:
        """One line per published policy and per tenant the message is for (each tenant
        reports the mail it received; "" without tenants)."""
        if not evaluation.published:
            return
        now = self.clock()
        outcome = evaluation.outcome
        dkim = [
            [
                dict(r.properties).get("header.d", ""),
                dict(r.properties).get("header.s", ""),
                r.result,
            ]
            for r in outcome.results
            if r.method == "dkim" and dict(r.properties).get("header.d")
        ]
        spf = next(
            (
                [value.rpartition("@")[2], "mfrom" if name == "smtp.mailfrom" else "helo", r.result]
                for r in reversed(outcome.results)
                if r.method == "spf"
                for name, value in r.properties
            ),
            None,
        )
        lines = []
        for published, tenant in itertools.product(evaluation.published, tenants):
            lines.append(
                json.dumps(
                    {
                        **({"tenant": tenant} if tenant else {}),
                        "time": int(now),
                        "source_ip": transaction.client,
                        "envelope_from": transaction.mail_from.rpartition("@")[2].lower(),
                        "header_from": published.header_from,
                        "policy": {
                            "domain": published.domain,
                            "p": published.p,
                            "sp": published.sp,
                            "adkim": published.adkim,
                            "aspf": published.aspf,
                            "pct": published.pct,
                            "rua": list(published.rua),
                        },
                        "disposition": _DISPOSITIONS.get(action, "none"),
                        "sampled_out": published.sampled_out,
                        "dkim_aligned": published.dkim_aligned,
                        "spf_aligned": published.spf_aligned,
                        "dkim": dkim,
                        "spf": spf,
                    },
                    separators=(",", ":"),
                )
            )
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{day}.{os.getpid()}.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))


def day_files(directory: Path, day: date) -> list[Path]:
    """The record files of ``day`` (UTC), one per process that wrote that day."""
    return sorted(directory.glob(f"{day.isoformat()}.*.jsonl"))


def read_file(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one file; damaged lines (a crash, a cut) are skipped."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if len(line) > MAX_RECORD_LINE or not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def read_day(directory: Path, day: date, tenant: str = "") -> Iterator[dict[str, Any]]:
    """Every record of ``day`` (UTC) for ``tenant`` ("" without tenants), from every
    process's file."""
    for path in day_files(directory, day):
        for record in read_file(path):
            if record.get("tenant", "") == tenant:
                yield record


@dataclass(frozen=True, slots=True)
class Report:
    """One aggregate report: the policy domain, its destinations, the XML."""

    domain: str
    report_id: str
    destinations: tuple[str, ...]  # rua addresses that passed the section 7.1 check
    refused: tuple[str, ...]  # rua addresses left out, each with why
    xml: bytes
    # A destination could not be verified for now (DNS): worth trying again later.
    retry: bool = False

    def attachment_name(self, org_domain: str, begin: int, end: int) -> str:
        """RFC 7489 7.2.1.1: receiver!policy-domain!begin!end.xml.gz"""
        return f"{org_domain}!{self.domain}!{begin}!{end}.xml.gz"

    def gzipped(self) -> bytes:
        return gzip.compress(self.xml, mtime=0)


@dataclass(frozen=True, slots=True)
class Row:
    """One report row: messages of one policy domain alike in source, identifiers, results
    and disposition, and how many there were."""

    domain: str
    policy: dict[str, Any]  # the record that applied (p, sp, adkim, aspf, pct, rua)
    row: dict[str, Any]
    count: int
    tenant: str = ""  # whose mail it counts ("" without tenants)


def aggregate(records: Iterable[dict[str, Any]]) -> list[Row]:
    """``records`` (:meth:`Recorder.record`'s lines) counted into rows per tenant, for the
    policy domains that ask for reports (``rua``)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    policies: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        policy = record.get("policy") or {}
        if not (isinstance(policy, dict) and policy.get("rua")):
            continue
        domain = str(policy.get("domain", "")).lower()
        tenant = str(record.get("tenant", ""))
        if domain:
            policies[tenant, domain] = policy  # the last one seen is the one reported
            counts[tenant, domain, json.dumps(_row_key(record), sort_keys=True)] += 1
    return [
        Row(domain, policies[tenant, domain], json.loads(key), count, tenant)
        for (tenant, domain, key), count in sorted(counts.items())
    ]


def build_reports(
    rows: Iterable[Row],
    day: date,
    *,
    org_name: str,
    email: str,
    lookup: Lookup,
    serial: str = "",
) -> list[Report]:
    """The day's reports, one per policy domain. ``serial`` tells reports of the same day and
    domain apart (rows handed in late are reported again, never under the same id)."""
    by_domain: dict[str, list[Row]] = {}
    for row in rows:
        by_domain.setdefault(row.domain, []).append(row)
    begin = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    end = begin + int(timedelta(days=1).total_seconds()) - 1
    reports = []
    for domain, items in sorted(by_domain.items()):
        report_id = hashlib.sha256(f"{domain}:{begin}:{email}:{serial}".encode()).hexdigest()[:32]
        xml = _feedback(items, domain, report_id, org_name, email, begin, end)
        destinations, refused, retry = _destinations(items[-1].policy["rua"], domain, lookup, xml)
        reports.append(Report(domain, report_id, destinations, refused, xml, retry))
    return reports


def _feedback(
    items: list[Row],
    domain: str,
    report_id: str,
    org_name: str,
    email: str,
    begin: int,
    end: int,
) -> bytes:
    root = ET.Element("feedback")
    _text(root, "version", "1.0")
    metadata = ET.SubElement(root, "report_metadata")
    _text(metadata, "org_name", org_name)
    _text(metadata, "email", email)
    _text(metadata, "report_id", report_id)
    dates = ET.SubElement(metadata, "date_range")
    _text(dates, "begin", str(begin))
    _text(dates, "end", str(end))
    policy = items[-1].policy
    published = ET.SubElement(root, "policy_published")
    _text(published, "domain", domain)
    _text(published, "adkim", _choice(policy.get("adkim"), ("r", "s"), "r"))
    _text(published, "aspf", _choice(policy.get("aspf"), ("r", "s"), "r"))
    dispositions = ("none", "quarantine", "reject")
    _text(published, "p", _choice(policy.get("p"), dispositions, "none"))
    _text(published, "sp", _choice(policy.get("sp"), dispositions, "none"))
    _text(published, "pct", str(int(policy.get("pct", 100))))
    rows: Counter[str] = Counter()
    for item in items:
        rows[json.dumps(item.row, sort_keys=True)] += item.count
    for key, count in sorted(rows.items()):
        _record(root, json.loads(key), count)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _row_key(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "source_ip": item.get("source_ip", ""),
        "disposition": item.get("disposition", "none"),
        "dkim": "pass" if item.get("dkim_aligned") else "fail",
        "spf": "pass" if item.get("spf_aligned") else "fail",
        "header_from": item.get("header_from", ""),
        "envelope_from": item.get("envelope_from", ""),
        "sampled_out": bool(item.get("sampled_out")),
        "dkim_results": item.get("dkim") or [],
        "spf_result": item.get("spf"),
    }


def _record(root: ET.Element, key: dict[str, Any], count: int) -> None:
    record = ET.SubElement(root, "record")
    row = ET.SubElement(record, "row")
    try:
        address = ipaddress.ip_address(str(key["source_ip"]).strip("[]"))
        source = address.exploded if address.version == 6 else str(address)
    except ValueError:
        source = "0.0.0.0"  # noqa: S104 - not a bind: the schema needs an address
    _text(row, "source_ip", source)
    _text(row, "count", str(count))
    evaluated = ET.SubElement(row, "policy_evaluated")
    _text(evaluated, "disposition", key["disposition"])
    _text(evaluated, "dkim", key["dkim"])
    _text(evaluated, "spf", key["spf"])
    if key.get("sampled_out"):
        _text(ET.SubElement(evaluated, "reason"), "type", "sampled_out")
    identifiers = ET.SubElement(record, "identifiers")
    _text(identifiers, "envelope_from", key["envelope_from"])
    _text(identifiers, "header_from", key["header_from"])
    results = ET.SubElement(record, "auth_results")
    dkim_results = ("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
    for domain, selector, result in key["dkim_results"]:
        dkim = ET.SubElement(results, "dkim")
        _text(dkim, "domain", str(domain))
        if selector:
            _text(dkim, "selector", str(selector))
        _text(dkim, "result", _choice(result, dkim_results, "permerror"))
    spf = ET.SubElement(results, "spf")
    spf_domain, scope, result = key["spf_result"] or [key["envelope_from"], "mfrom", "none"]
    spf_results = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
    _text(spf, "domain", str(spf_domain))
    _text(spf, "scope", _choice(scope, ("helo", "mfrom"), "mfrom"))
    _text(spf, "result", _choice(result, spf_results, "none"))


def _text(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, name).text = value


def _choice(value: object, allowed: tuple[str, ...], default: str) -> str:
    text = str(value).lower() if value is not None else ""
    return text if text in allowed else default


def _destinations(
    uris: list[str], domain: str, lookup: Lookup, xml: bytes
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """The ``rua`` addresses a report may go to (RFC 7489 7.1), those left out (why), and
    whether one of them could not be verified for now."""
    accepted: list[str] = []
    retry = False
    refused: list[str] = []
    size = len(gzip.compress(xml, mtime=0))
    for uri in uris:
        match = _MAILTO.match(uri.strip())
        if match is None:
            refused.append(f"{uri.strip()}: not a mailto: address")
            continue
        address, limit, unit = match.group(1), match.group(2), (match.group(3) or "").lower()
        if limit and size > int(limit) * _UNITS[unit]:
            refused.append(f"{address}: the report is larger than its limit")
            continue
        host = address.rpartition("@")[2].lower().rstrip(".")
        if organisational_domain(host) != organisational_domain(domain):
            try:
                answers = lookup.txt(f"{domain}._report._dmarc.{host}")
            except DnsTemporaryError as exc:
                refused.append(f"{address}: verification failed for now ({exc})")
                retry = True
                continue
            if not any(a.replace(" ", "").lower().startswith("v=dmarc1") for a in answers):
                refused.append(f"{address}: {host} does not accept reports for {domain}")
                continue
        accepted.append(address)
    return tuple(accepted), tuple(refused), retry


def schema_problems(xml: bytes) -> list[str]:
    """Why ``xml`` does not validate against the aggregate report schema of RFC 7489 Appendix C
    (the copy the ``dmarc`` package ships); empty when it does."""
    from dmarc.report import DMARCSchema

    return [str(error.reason or error) for error in DMARCSchema.iter_errors(xml.decode("utf-8"))]


def report_mail(
    report: Report, day: date, *, from_address: str, org_name: str
) -> tuple[str, bytes, bytes]:
    """The attachment name, the gzipped report and the mail that carries it (RFC 7489
    7.2.1.1): From ``from_address``, To the verified destinations."""
    begin = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    end = begin + int(timedelta(days=1).total_seconds()) - 1
    ours = organisational_domain(from_address.rpartition("@")[2])
    name = report.attachment_name(ours, begin, end)
    data = report.gzipped()
    mail = EmailMessage()
    mail["From"] = from_address
    mail["To"] = ", ".join(report.destinations)
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain=ours)
    mail["Subject"] = (
        f"Report Domain: {report.domain} Submitter: {ours} Report-ID: <{report.report_id}>"
    )
    mail.set_content(f"DMARC aggregate report for {report.domain} from {org_name} ({day}, UTC).\n")
    mail.add_attachment(data, maintype="application", subtype="gzip", filename=name)
    return name, data, mail.as_bytes()
