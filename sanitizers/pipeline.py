"""The pipeline: untrusted mail bytes and a policy in; a new text-only message and a report out.

Threat model and promises: the input is hostile. The output is composed anew from decoded and
checked values (no byte of the original is copied across); every part gets an action and a
reason; a limit, a fault or anything unexpected holds the message (fail closed) instead of
passing it. The function never raises on bad input: the only exception that escapes is
:class:`TemporaryFailure` (a dependency the policy requires is down), which must defer the mail.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice

from sanitizers import compose, notice
from sanitizers.cdr import mailparts
from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.disarmer import Disarmer
from sanitizers.cdr.isolation import default_disarmer
from sanitizers.charsets import (
    Decoded,
    Preferences,
    carrier_of,
    decode_body,
    decode_html,
    preferences,
)
from sanitizers.compose import scrub_surrogates
from sanitizers.errors import LimitExceeded, TemporaryFailure
from sanitizers.filenames import clean_name, delivered_name
from sanitizers.filetype import detect, kind_of_mime
from sanitizers.flowed import unflow
from sanitizers.headers import RebuiltHeaders, rebuild_headers
from sanitizers.html_text import html_to_text
from sanitizers.inline_files import InlineFile, cut_yenc_blocks, extract_inline_files
from sanitizers.links import UNSAFE_LINK, defang_text
from sanitizers.mime import Leaf, first_raw_header, parse, parse_headers_only
from sanitizers.notice import NoticeContext
from sanitizers.passwords import password_candidates
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import EntryReport, PartReport, Report, SanitizeResult
from sanitizers.safetext import body_text, display_text, visible_text
from sanitizers.senderauth import AuthAction, AuthOutcome
from sanitizers.vocabulary import Action, FileKind, Reason, RemovedItem, Verdict, label

# What a sanitizer returns that is delivered as an attachment (an HTML file converted to text
# arrives as a .txt file: the body is only ever the mail's own text).
_DELIVERED = frozenset({Action.KEPT, Action.SANITIZED, Action.CONVERTED})
# Files inside archives listed in one part's report (the archive limits bound them already).
_MAX_ENTRIES = 1000
_LIMIT_REASONS = frozenset(r for r in Reason if r.value.startswith("limit_"))
_HELD_TAG = {"ja": "[保留]", "en": "[HELD]"}
# The subject tag of a mail whose sender may be forged (sender authentication's "warn").
_SPOOFING_TAG = {"ja": "[なりすまし注意]", "en": "[SPOOFING?]"}
_SAFE_TOKEN = re.compile(r"[^A-Za-z0-9._:-]")
_ATTACHED_MAIL = {"ja": "添付されたメール", "en": "Attached message"}
# Kinds whose sanitizer unpacks them into parts of the message (sanitizers.cdr.mailparts), and
# how a part taken out of one is shown: "winmail.dat › 見積書.xlsx".
_CONTAINERS = frozenset({FileKind.TNEF, FileKind.MSG})
_INSIDE = " › "


def sanitize_message(
    untrusted_raw: bytes,
    policy: Policy,
    *,
    disarmer: Disarmer | None = None,
    reference: str | None = None,
    passwords: tuple[str, ...] = (),
    context: NoticeContext | None = None,
    unlocked_by_mail: bool = False,
    release: ReleaseTerms | None = None,
    auth: AuthOutcome | None = None,
) -> SanitizeResult:
    """Turn untrusted mail bytes into a text-only message and a report. Never raises on bad
    input (only :class:`sanitizers.errors.TemporaryFailure` escapes).

    Attachments go to ``disarmer``; by default, sanitizers run in an isolated child process
    of this process (:func:`sanitizers.cdr.isolation.default_disarmer`). Every step, the
    composition of the output included, runs inside the fail-closed guard: a fault anywhere
    holds the message, and the notice about it is composed from values nothing untrusted
    can break (:func:`_fail_safe_message`).

    ``passwords``: candidates for password-protected attachments (an operator's unlock, or
    a password mail's candidates); they reach the disarmer and nothing else: never the
    report, the notice or the output. ``context``: what the held notice says about where
    to give a password and whom to ask, and the time zone of its dates. ``unlocked_by_mail``:
    the passwords came from a password mail (automatic unlock); the notice says so.
    ``release``: the terms of an operator's recorded decision on a held message
    (:mod:`sanitizers.release`); None for mail as it arrives. ``auth``: what sender
    authentication found (evaluated by the gateway before the rebuild; None: not evaluated):
    written as the Authentication-Results header; its action rejects, holds or, for "warn",
    tags the subject and puts a warning at the top of the body."""
    started = time.monotonic()
    report = Report(size=len(untrusted_raw), sha256=hashlib.sha256(untrusted_raw).hexdigest())
    run = _Run(policy, disarmer, report, started + policy.limits.seconds, passwords=passwords)
    run.unlocked_by_mail = unlocked_by_mail
    run.release = release
    run.auth = auth
    if auth is not None:
        report.auth = auth.to_dict()
        if auth.action is not AuthAction.NONE:
            _add_reasons(report, set(auth.reasons))
    with _guard(run):
        run.sanitize(untrusted_raw)
    message = b""
    with _guard(run):
        lifting = release is not None and release.lift_holds
        report.verdict = _verdict(report, policy, lift_holds=lifting, auth=auth)
        if run.headers is None:
            run.headers = _headers_for_notice(untrusted_raw, policy)
        message = run.compose(reference, context or NoticeContext())
    notices: tuple[tuple[str, bytes], ...] = ()
    if message and context is not None and context.links and report.awaiting_password():
        with _guard(run):
            notices = tuple(
                (rcpt, run.compose(reference, context, link=link)) for rcpt, link in context.links
            )
    if not message:
        report.verdict = Verdict.HOLD
        message = _fail_safe_message(report, policy, reference)
    report.timings_ms["total"] = round((time.monotonic() - started) * 1000, 3)
    candidates: tuple[str, ...] = ()
    if policy.unlock.automatic:
        candidates = password_candidates("\n".join(run.segments), policy.unlock.max_candidates)
    return SanitizeResult(
        message=message, report=report, password_candidates=candidates, notices=notices
    )


@contextmanager
def _guard(run: _Run) -> Iterator[None]:
    """Fail closed: a limit, a fault or a bug in what runs inside is recorded on the report
    (which holds the message); only :class:`TemporaryFailure` passes (the mail is deferred)."""
    try:
        yield
    except TemporaryFailure:
        raise
    except LimitExceeded as exc:
        run.fail(exc.reason, exc.detail)
    except RecursionError:  # e.g. 30,000 nested comments in a header: a depth, not a bug
        run.fail(Reason.LIMIT_DEPTH, "nesting too deep for the parser")
    except Exception as exc:  # noqa: BLE001 - fail closed: an unexpected fault holds the mail
        run.fail(Reason.ERROR, scrub_surrogates(f"{type(exc).__name__}: {exc}"[:200])[0])


def _fail_safe_message(report: Report, policy: Policy, reference: str | None) -> bytes:
    """The held notice when composing the real output failed: no header and no value from
    the message (only the report's codes and our own words), so it cannot fail the same way."""
    language = policy.notice.language
    reasons = ", ".join(label(r, language) for r in report.reasons)
    text = f"{_HELD_TAG[language]} {reasons}\n"
    if reference:
        text += notice.reference_line(_SAFE_TOKEN.sub("_", reference), language) + "\n"
    extra = [("Subject", _HELD_TAG[language]), ("X-Mukaika-Verdict", Verdict.HOLD.value)]
    extra.append(("X-Mukaika-Summary", _summary(report)))
    return compose.compose([], extra, compose.Body(text=text, charset="utf-8"), [])


@dataclass
class _Run:
    """The state of one sanitization: report, text segments and surviving attachments."""

    policy: Policy
    disarmer_given: Disarmer | None
    report: Report
    deadline: float
    passwords: tuple[str, ...] = field(default=(), repr=False)
    unlocked_by_mail: bool = False
    release: ReleaseTerms | None = None
    auth: AuthOutcome | None = None
    headers: RebuiltHeaders | None = None
    segments: list[str] = field(default_factory=list)
    attachments: list[compose.OutAttachment] = field(default_factory=list)
    removed_messages: list[str] = field(default_factory=list)
    text_chars: int = 0

    @property
    def disarmer(self) -> Disarmer:
        """The disarmer given, else this process's isolated one (started on first use)."""
        if self.disarmer_given is None:
            self.disarmer_given = default_disarmer(self.policy)
        return self.disarmer_given

    def sanitize(self, untrusted_raw: bytes) -> None:
        clock = time.monotonic()
        # The sender's carrier and the prior apply to every decode, file names in the MIME
        # parameters (decoded while parsing) included: the From header is read first.
        head = parse_headers_only(untrusted_raw, self.policy.limits)
        sender = first_raw_header(head, "from") or ""
        chosen = Preferences(self.policy.charsets.japanese_prior, carrier_of(sender))
        with preferences(chosen):
            parsed = parse(
                untrusted_raw,
                self.policy.limits,
                self.deadline,
                prefer_plain=self.policy.body.prefer_plain,
            )
            self.report.defects.extend(parsed.defects)
            self.headers = rebuild_headers(parsed.headers, self.policy.output.headers)
            self._note_headers(self.headers)
            self._lap("parse", clock)
            clock = time.monotonic()
            for leaf in parsed.leaves:
                if time.monotonic() > self.deadline:
                    raise LimitExceeded(Reason.LIMIT_TIME, "time budget spent")
                self._leaf(leaf)
        self._lap("parts", clock)

    def fail(self, reason: Reason, detail: str) -> None:
        self.report.reasons.append(reason)
        if detail:
            self.report.defects.append(f"{reason.value}: {detail}")

    def compose(self, reference: str | None, context: NoticeContext, link: str = "") -> bytes:
        """The output message; ``link``: one recipient's PPAP link for a held notice."""
        clock = time.monotonic()
        assert self.headers is not None
        fields = [(name, self._scrub_field(value)) for name, value in self.headers.fields]
        self._scrub_report()
        language = self.policy.notice.language
        delivered = self.report.verdict is Verdict.DELIVER
        tag = self.policy.output.subject_tag if delivered else _HELD_TAG[language]
        fields = _tag_subject(fields, tag)
        warned = self.auth is not None and self.auth.action is AuthAction.WARN and delivered
        if warned:
            fields = _tag_subject(fields, _SPOOFING_TAG[language])
        for name, value in fields:
            self._check_output_charset(name, partial(compose.header_iso2022jp_misfit, value))
        if delivered:
            segments = "\n\n".join(self._scrub(segment) for segment in self.segments)
            self._check_output_charset("body", partial(compose.iso2022jp_misfit, segments))

            def with_notice() -> str:
                if not (notice.is_noteworthy(self.report) or self.policy.notice.always):
                    return segments
                block = notice.render_notice(
                    self.report,
                    self.policy.notice,
                    reference,
                    unlocked_by_mail=self.unlocked_by_mail
                    and RemovedItem.ENCRYPTION in {i for p in self.report.parts for i in p.removed},
                )
                return (segments.rstrip("\n") + "\n" + block).lstrip("\n")

            text = with_notice()
            if warned:
                assert self.auth is not None
                warning = notice.render_spoofing_warning(self.auth.reasons, self.policy.notice)
                text = warning + "\n" + text
            # (a file name in the notice did not fit)
            if self._check_output_charset("body", partial(compose.iso2022jp_misfit, text)):
                text = with_notice()
            attachments = [
                compose.OutAttachment(self._scrub(item.filename), item.content_type, item.data)
                for item in self.attachments
            ]
        else:
            date = next((str(v) for n, v in fields if n.lower() == "date"), "")

            def held() -> str:
                return notice.render_held(
                    self.report,
                    self.policy.notice,
                    reference,
                    date=date,
                    context=context,
                    automatic_unlock=self.policy.unlock.automatic,
                    link=link,
                )

            text = held()
            if self._check_output_charset("body", partial(compose.iso2022jp_misfit, text)):
                text = held()
            attachments = []
        extra = [("X-Mukaika-Verdict", self.report.verdict.value)]
        extra.append(("X-Mukaika-Summary", _summary(self.report)))
        if self.auth is not None:
            extra.insert(0, ("Authentication-Results", self.auth.header_value()))
        if reference:
            extra.append(("X-Mukaika-Reference", self._scrub(reference)))
        text = self._scrub(text)
        body = compose.Body(
            text=text if text.endswith("\n") else text + "\n", charset=self.policy.output.charset
        )
        message = compose.compose(fields, extra, body, attachments)
        self._lap("compose", clock)
        return message

    def _check_output_charset(self, where: str, misfit: Callable[[], str | None]) -> bool:
        """Record that ``where`` (the body, or a header's name) goes out as UTF-8 although
        the policy asks for ISO-2022-JP, with why (``misfit()``; None: it fits); whether that
        was recorded just now (once per place; reason ``output_utf8`` once)."""
        if self.policy.output.charset != "iso-2022-jp" or where in self.report.sent_as_utf8:
            return False
        why = misfit()
        if why is None:
            return False
        if Reason.OUTPUT_UTF8 not in self.report.reasons:
            self.report.reasons.append(Reason.OUTPUT_UTF8)
        self.report.sent_as_utf8.append(where)
        self.report.defects.append(f"{Reason.OUTPUT_UTF8.value}: {where}: {why}")
        return True

    def _scrub(self, text: str) -> str:
        """``text`` without lone surrogates; a replacement is reported once as lossy."""
        scrubbed, changed = compose.scrub_surrogates(text)
        if changed and Reason.LOSSY_DECODE not in self.report.reasons:
            self.report.reasons.append(Reason.LOSSY_DECODE)
            self.report.defects.append("lone surrogates (e.g. from UTF-7) replaced with U+FFFD")
        return scrubbed

    def _scrub_field(self, value: str | list[tuple[str, str]]) -> str | list[tuple[str, str]]:
        if isinstance(value, str):
            return self._scrub(value)
        return [(self._scrub(display), self._scrub(addr)) for display, addr in value]

    def _scrub_report(self) -> None:
        """The report is shown (notice) and written (JSON, audit): no lone surrogate in it."""
        report = self.report
        for name in ("from_", "subject", "message_id"):
            value = getattr(report, name)
            if value is not None:
                setattr(report, name, self._scrub(value))
        report.defects = [self._scrub(defect) for defect in report.defects]
        for part in report.parts:
            for name in ("filename", "attached_as", "detail", "charset", "declared_type"):
                value = getattr(part, name)
                if value is not None:
                    setattr(part, name, self._scrub(value))
            for entry in part.entries:
                entry.name = self._scrub(entry.name)

    # -- parts ------------------------------------------------------------------------------

    def _leaf(self, leaf: Leaf, shown_in: str | None = None) -> None:
        """One part; ``shown_in`` names the container (winmail.dat, a .msg) it came out of."""
        payload = b"" if leaf.role == "attached_message" else leaf.decoded_payload()
        filename = display_text(leaf.filename, 100) if leaf.filename else None
        if shown_in is not None:
            filename = f"{shown_in}{_INSIDE}{filename}" if filename else shown_in
        part = PartReport(
            path=leaf.path,
            declared_type=leaf.content_type,
            action=Action.REMOVED,
            reason=Reason.POLICY,
            size=len(payload),
            sha256=hashlib.sha256(payload).hexdigest() if payload else "",
            filename=filename,
            findings=list(leaf.findings),
            detail="; ".join(leaf.notes),
        )
        self.report.parts.append(part)
        if any(leaf.path.startswith(prefix) for prefix in self.removed_messages):
            part.reason = Reason.POLICY
        elif leaf.content_type == "message/partial":
            part.reason = Reason.MESSAGE_PARTIAL
        elif leaf.content_type == "message/external-body":
            part.reason = Reason.EXTERNAL_BODY
        elif leaf.role == "alternative":
            part.reason = Reason.ALTERNATIVE
        elif leaf.role == "attached_message":
            self._attached_message(leaf, part)
        elif leaf.role == "body":
            self._body(leaf, payload, part)
        else:
            self._attachment(leaf, payload, part)

    def _body(self, leaf: Leaf, payload: bytes, part: PartReport) -> None:
        subtype = leaf.content_type.split("/", 1)[1]
        if subtype not in ("plain", "html") and self.policy.body.other_text == "remove":
            return
        # yEnc data is 8-bit: cut out of the bytes before the text's charset is judged
        limits = self.policy.limits
        payload, yenc_files = cut_yenc_blocks(
            payload, max_files=limits.max_parts, decode_name=lambda raw: decode_body(raw, None).text
        )
        decoded = self._decode(leaf, payload, part)
        if subtype == "html":
            # A block pasted unescaped into the HTML reads right only in its source.
            html, html_files = extract_inline_files(
                decoded.text,
                max_files=max(0, limits.max_parts - len(yenc_files)),
                max_bytes=limits.max_message_bytes,
                markup=True,
            )
            yenc_files += html_files
            text = html_to_text(html, self.policy.body.links, self.policy.links.allowed_schemes)
            part.action, part.reason = Action.CONVERTED, Reason.HTML_BODY
        elif subtype == "plain":
            text = decoded.text
            if _param(leaf, "format") == "flowed":
                text = unflow(text, delsp=_param(leaf, "delsp") == "yes")
            part.action, part.reason = Action.KEPT, Reason.TEXT_BODY
        else:
            text = decoded.text
            part.action, part.reason = Action.CONVERTED, Reason.TEXT_CONVERTED
        text = self._take_inline_files(leaf, text, yenc_files, part)
        # A link of a scheme that is not allowed, written as text, is defanged (mail clients
        # turn "file://…" or "ms-msdt:…" in text back into a link).
        text, defanged = defang_text(text, self.policy.links.allowed_schemes)
        if defanged:
            part.removed.append(UNSAFE_LINK)
        self._add_text(text)

    def _take_inline_files(
        self, leaf: Leaf, text: str, cut: list[InlineFile], body: PartReport
    ) -> str:
        """The text without the files embedded in it (uuencode, yEnc, BinHex; ``cut`` are
        those already cut from the bytes), each of which is treated as an attachment; a
        malformed one is removed. The body reports the move, so the notice lists them."""
        limits = self.policy.limits
        text, files = extract_inline_files(
            text, max_files=max(0, limits.max_parts - len(cut)), max_bytes=limits.max_message_bytes
        )
        files = cut + files
        if files:
            body.removed.append(RemovedItem.INLINE_FILE)
        for number, found in enumerate(files, 1):
            data = found.data or b""
            part = PartReport(
                path=f"{leaf.path}.text{number}",
                declared_type=found.declared_type,
                action=Action.REMOVED,
                reason=Reason.MALFORMED,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest() if data else "",
                filename=display_text(found.filename, 100) or None,
                detail=f"{found.encoding} block in the text",
            )
            self.report.parts.append(part)
            if found.data is None:
                part.detail += f": {found.problem}"
            else:
                self._file(found.data, found.filename, "application/octet-stream", part)
        return text

    def _attached_message(self, leaf: Leaf, part: PartReport) -> None:
        if self.policy.body.attached_messages == "remove":
            self.removed_messages.append(leaf.path + ".")
            return
        part.action, part.reason = Action.CONVERTED, Reason.ATTACHED_MESSAGE
        inner = leaf.attached_headers
        lines = [f"---------- {_ATTACHED_MAIL[self.policy.notice.language]} ----------"]
        if inner is not None:
            shown = rebuild_headers(inner, ("From", "Date", "Subject", "To"))
            if Reason.LOSSY_DECODE in shown.findings:
                part.findings.append(Reason.LOSSY_DECODE)
            for name, value in shown.fields:
                if isinstance(value, list):
                    value = ", ".join(f"{d} <{a}>" if d else a for d, a in value)
                lines.append(f"{name}: {display_text(value, 300)}")
        self._add_text("\n".join(lines))

    def _attachment(self, leaf: Leaf, payload: bytes, part: PartReport) -> None:
        charset = leaf.params.get("charset")
        self._file(
            payload,
            leaf.filename,
            leaf.content_type,
            part,
            leaf.untrusted_filename,
            charset.text if charset is not None else None,
        )

    def _file(
        self,
        payload: bytes,
        filename: str | None,
        declared_type: str,
        part: PartReport,
        untrusted_filename: str | None = None,
        untrusted_charset: str | None = None,
    ) -> None:
        """Detect, scan and disarm one file as the policy says; keep what survives. A file
        delivered under another name than the sender wrote (``untrusted_filename``, else
        ``filename``) is reported as renamed, whatever the reason. ``untrusted_charset`` is
        the charset label the part declares (text is decoded in it before detection)."""
        if not payload:
            part.reason = Reason.EMPTY
            return
        info = detect(payload, declared_type, filename)
        part.detected_type, part.kind = info.detected_mime, info.kind
        if info.mismatch:
            part.findings.append(Reason.TYPE_MISMATCH)
            part.detail = "; ".join(filter(None, [part.detail, info.detail]))
        terms = self.release
        if terms is not None and terms.text_only:
            part.action, part.reason = Action.REMOVED, Reason.TEXT_ONLY
            return
        action = self.policy.attachments.action_for(info.kind)
        if terms is not None and part.path in terms.keep_parts:
            action = AttachmentAction.KEEP
        name = clean_name(filename)
        budgeted = self._budgeted_policy()
        outcome = self.disarmer.disarm(
            payload,
            name,
            info.kind,
            action,
            budgeted,
            charset=untrusted_charset,
            passwords=self.passwords,
        )
        if terms is not None and terms.lift_holds and outcome.action is Action.HELD:
            # The hold is lifted: what caused it is removed (with a notice), never delivered.
            outcome = replace(outcome, action=Action.REMOVED, data=None)
        part.action, part.reason = outcome.action, outcome.reason
        if outcome.reason is Reason.TIMEOUT and budgeted.cdr.seconds < self.policy.cdr.seconds:
            # The message's budget, not the per-file limit, ran out: fail closed, hold it.
            _add_reasons(self.report, {Reason.LIMIT_TIME})
        part.removed = list(outcome.removed)
        part.entries = list(islice(_entries(outcome.children), _MAX_ENTRIES))
        if outcome.detail:
            part.detail = "; ".join(filter(None, [part.detail, outcome.detail]))
        if info.kind in _CONTAINERS and outcome.action is Action.CONVERTED and outcome.data:
            # The container itself never arrives: its parts are handled as the message's own.
            part.action, part.reason = Action.REMOVED, Reason.UNPACKED
            self._unpack(outcome.data, outcome.content_type, part)
            return
        if outcome.action in _DELIVERED and outcome.data is not None:
            # Named after what was rebuilt, never after what the sender claimed.
            content_type = outcome.content_type or info.detected_mime
            kept_as_is = None if outcome.content_type else info.kind
            # The sender's bytes under an exception keep the sender's extension when it is one
            # of their kind's (a macro-enabled .docm stays .docm; Word refuses it as .docx).
            naming = "" if outcome.reason is Reason.EXCEPTION else content_type
            delivered = delivered_name(outcome.filename or name, naming, kept_as_is)
            part.attached_as = delivered
            part.rebuilt_as = _rebuilt_kind(outcome, info.kind)
            sent = untrusted_filename or filename
            if sent is not None and delivered != sent:
                part.renamed_from = visible_text(sent, 200)
            self.attachments.append(compose.OutAttachment(delivered, content_type, outcome.data))

    def _unpack(self, data: bytes, content_type: str | None, container: PartReport) -> None:
        """The parts of a mail container, as a sanitizer composed them (the parts of this
        message for TNEF, an attached mail for .msg), each handled like one of the message's
        own and shown under the container's name. The message's limits bound them: their
        paths continue the container's, so its depth counts, and so do the parts before."""
        if content_type == mailparts.MESSAGE_TYPE:
            data = b"Content-Type: message/rfc822\r\n\r\n" + data
        elif content_type != mailparts.PARTS_TYPE:
            raise ValueError(f"container result of type {content_type!r}")
        limits = self.policy.limits
        parsed = parse(data, limits, self.deadline, prefer_plain=self.policy.body.prefer_plain)
        shown = container.filename or container.path
        for inner in parsed.leaves:
            inner.path = f"{container.path}.{inner.path}"
            if inner.path.count(".") > limits.max_depth:
                raise LimitExceeded(Reason.LIMIT_DEPTH, f"over {limits.max_depth} levels")
            if len(self.report.parts) >= limits.max_parts:
                raise LimitExceeded(Reason.LIMIT_PARTS, f"over {limits.max_parts} parts")
            if time.monotonic() > self.deadline:
                raise LimitExceeded(Reason.LIMIT_TIME, "time budget spent")
            self._leaf(inner, shown_in=shown)

    def _budgeted_policy(self) -> Policy:
        """The policy for one sanitizer call: its wall-clock limit (``cdr.seconds``, which the
        isolated child is killed after) is at most what is left of the message's budget, so
        the budget bounds the whole message, a file inside a sanitizer included."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise LimitExceeded(Reason.LIMIT_TIME, "time budget spent")
        if remaining >= self.policy.cdr.seconds:
            return self.policy
        cdr = self.policy.cdr.model_copy(update={"seconds": remaining})
        return self.policy.model_copy(update={"cdr": cdr})

    def _decode(self, leaf: Leaf, payload: bytes, part: PartReport) -> Decoded:
        charset = leaf.params.get("charset")
        decode = decode_html if leaf.content_type == "text/html" else decode_body
        decoded = decode(payload, charset.text if charset else None)
        part.charset = decoded.charset
        if charset is not None and decoded.detected:
            shown = display_text(charset.text, 40)
            note = f"charset {shown} declared, read as {decoded.charset}"
            part.detail = "; ".join(filter(None, [part.detail, note]))
        text, had_surrogates = scrub_surrogates(decoded.text)
        if decoded.lossy or had_surrogates:
            part.findings.append(Reason.LOSSY_DECODE)
        return replace(decoded, text=text)

    def _add_text(self, text: str) -> None:
        cleaned = body_text(text.replace("\r\n", "\n").replace("\r", "\n")).strip("\n")
        if not cleaned:
            return
        self.text_chars += len(cleaned)
        if self.text_chars > self.policy.limits.max_text_chars:
            raise LimitExceeded(Reason.LIMIT_SIZE, "text body too long")
        self.segments.append(cleaned)

    def _note_headers(self, headers: RebuiltHeaders) -> None:
        self.report.from_ = headers.from_
        self.report.subject = headers.subject
        self.report.message_id = headers.message_id
        self.report.defects.extend(headers.notes)
        if Reason.LOSSY_DECODE in headers.findings:
            self.report.reasons.append(Reason.LOSSY_DECODE)

    def _lap(self, name: str, since: float) -> None:
        self.report.timings_ms[name] = round((time.monotonic() - since) * 1000, 3)


def _param(leaf: Leaf, name: str) -> str:
    """A Content-Type parameter of ``leaf``, lower-cased ("" when absent)."""
    value = leaf.params.get(name)
    return value.text.strip().lower() if value is not None else ""


def _rebuilt_kind(outcome: CdrOutcome, kind: str) -> FileKind | None:
    """The kind a sanitizer rebuilt a file as, when it differs from the kind it came as."""
    if outcome.content_type is None:
        return None
    rebuilt = kind_of_mime(outcome.content_type.split(";", 1)[0].strip().lower())
    if rebuilt is None or rebuilt == kind or rebuilt not in FileKind.__members__.values():
        return None
    return FileKind(rebuilt)


def _entries(
    children: tuple[tuple[str, CdrOutcome], ...], folder: str = ""
) -> Iterator[EntryReport]:
    """The files inside an archive, depth first, named by their path inside it."""
    for untrusted_name, child in children:
        path = f"{folder}{untrusted_name}"
        yield EntryReport(display_text(path, 200), child.action, child.reason, list(child.removed))
        yield from _entries(child.children, f"{path}/")


def _verdict(
    report: Report, policy: Policy, *, lift_holds: bool = False, auth: AuthOutcome | None = None
) -> Verdict:
    """The message verdict; a part-level cause of a hold or reject is added to the message
    reasons, so the notice and the audit line say why. ``lift_holds`` (a release): the hold
    reasons hold nothing; limits and faults still do. A part a sanitizer held for a reason
    that is not in ``policy.hold_reasons`` is removed instead (fail closed: never delivered
    as it is, and the notice says why). ``auth``: sender authentication's action "reject"
    rejects, "hold" holds (a release lifts it like the other holds)."""
    for part in report.parts:
        if part.action is Action.HELD and part.reason not in policy.hold_reasons:
            part.action = Action.REMOVED
            note = f"{part.reason.value} is not in policy.hold_reasons: removed"
            part.detail = "; ".join(filter(None, [part.detail, note]))
    codes = report.reason_codes()
    rejecting = codes & policy.reject_reasons
    if rejecting:
        _add_reasons(report, rejecting)
        return Verdict.REJECT
    if auth is not None and auth.action is AuthAction.REJECT:
        return Verdict.REJECT
    if _LIMIT_REASONS & set(report.reasons) or Reason.ERROR in report.reasons:
        return Verdict.HOLD
    hold_reasons = frozenset() if lift_holds else policy.hold_reasons
    holding = (codes & hold_reasons) | {p.reason for p in report.parts if p.action is Action.HELD}
    if holding:
        _add_reasons(report, holding)
        return Verdict.HOLD
    if auth is not None and auth.action is AuthAction.HOLD and not lift_holds:
        return Verdict.HOLD
    return Verdict.DELIVER


def _add_reasons(report: Report, reasons: set[Reason]) -> None:
    report.reasons.extend(sorted(r for r in reasons if r not in report.reasons))


def _headers_for_notice(untrusted_raw: bytes, policy: Policy) -> RebuiltHeaders:
    """Headers for the notice about a mail that could not be parsed whole (bounded read)."""
    try:
        message = parse_headers_only(untrusted_raw, policy.limits)
        return rebuild_headers(message, policy.output.headers)
    except Exception:  # noqa: BLE001 - the notice still goes out, just without headers
        return RebuiltHeaders()


def _tag_subject(
    fields: list[tuple[str, str | list[tuple[str, str]]]], tag: str
) -> list[tuple[str, str | list[tuple[str, str]]]]:
    if not tag:
        return fields
    tagged: list[tuple[str, str | list[tuple[str, str]]]] = []
    found = False
    for name, value in fields:
        if name.lower() == "subject" and isinstance(value, str):
            found = True
            value = value if value.startswith(tag) else f"{tag} {value}".strip()
        tagged.append((name, value))
    if not found:
        tagged.append(("Subject", tag))
    return tagged


def _summary(report: Report) -> str:
    """A short ASCII summary: counts by action, then the distinct reasons."""
    counts: dict[str, int] = {}
    for part in report.parts:
        counts[part.action.value] = counts.get(part.action.value, 0) + 1
    actions = " ".join(f"{name}={count}" for name, count in sorted(counts.items()))
    reasons = ",".join(sorted(r.value for r in report.reason_codes())) or "none"
    return f"{actions or 'parts=0'}; reasons={reasons}"
