"""What the pipeline is allowed to do: every limit and choice, named and validated.

A policy is plain, frozen, validated data: it pickles into worker processes, and an unknown
key or a wrong value is an error (a typo must never weaken a rule). It is the ``[policy]``
part of the one configuration model (the service's part is in ``gateway/configuration``);
each field's docstring is its description in ``config/defaults.toml``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from sanitizers.cdr.settings import CdrPolicy
from sanitizers.charsets import DEFAULT_JAPANESE_PRIOR
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES, normalize_schemes
from sanitizers.section import Section
from sanitizers.vocabulary import FORMER_FILE_KINDS, Reason


class LinkMode(StrEnum):
    """How a link in HTML is shown in the text: as is, defanged (``hxxp://``) or not at all."""

    KEEP = "keep"
    DEFANG = "defang"
    DROP = "drop"


class AttachmentAction(StrEnum):
    """Per-type choice for attachments."""

    REMOVE = "remove"
    SANITIZE = "sanitize"
    KEEP_IF_CLEAN = "keep_if_clean"
    # The sender's bytes, after the malware scan: only inside an approved exception (例外措置);
    # the gateway's configuration refuses it anywhere else (gateway.configuration.config).
    KEEP = "keep"


class Limits(Section):
    """Named resource limits. Hitting one holds the message with the matching ``limit_*``."""

    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest message the pipeline reads (limit_size); smtp.max_message_bytes may not exceed
    it."""
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    """Largest header block of one message or part (limit_header)."""
    max_line_bytes: int = Field(default=64 * 1024, gt=0)
    """Longest line of the message (limit_line)."""
    max_parts: int = Field(default=500, gt=0)
    """Most MIME parts in one message (limit_parts)."""
    max_depth: int = Field(default=16, gt=0, le=200)
    """Deepest nesting of multiparts and attached messages (limit_depth)."""
    seconds: float = Field(default=30.0, gt=0)
    """Time budget for sanitizing one message (limit_time); above policy.cdr.seconds and below
    worker.sanitize_timeout_seconds."""
    max_text_chars: int = Field(default=4 * 1024 * 1024, gt=0)
    """Most characters of text produced from the bodies (limit_size)."""


class BodyPolicy(Section):
    """How bodies become text."""

    prefer_plain: bool = True
    """Of a text/plain and an HTML alternative, keep the plain one (false: convert the HTML)."""
    links: LinkMode = LinkMode.KEEP
    """Links of HTML bodies in the text: "keep", "defang" (hxxp://) or "drop"."""
    other_text: Literal["convert", "remove"] = "convert"
    """Other text/* bodies (e.g. text/enriched): "convert" to plain text or "remove"."""
    attached_messages: Literal["flatten", "remove"] = "flatten"
    """Attached messages (message/rfc822): "flatten" into the body or "remove"."""


class LinksPolicy(Section):
    """Which links stay clickable, in bodies and documents alike (:mod:`sanitizers.links`)."""

    allowed_schemes: tuple[str, ...] = DEFAULT_ALLOWED_SCHEMES
    """URL schemes a link may have. Documents lose links of other schemes (unsafe_link); text
    bodies get them defanged (javascript[:]…)."""

    @field_validator("allowed_schemes")
    @classmethod
    def _schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return normalize_schemes(value)


class NoticePolicy(Section):
    """The notice appended to the body that tells the recipient what was done."""

    language: Literal["ja", "en"] = "ja"
    """Language of the notice: "ja" or "en"."""
    template: str = ""
    """A file whose text replaces the shipped template for the language (string.Template
    syntax); "" = the shipped one."""
    templates_dir: str = ""
    """A directory whose files replace the shipped templates of the same name: notice_ja.txt,
    held_ja.txt, held_password_ja.txt (held awaiting a password), crash_ja.txt (held because
    sanitizing kept failing) and their _en twins; "" = the shipped ones."""
    always: bool = False
    """Append a notice even when every part was kept and nothing was found."""


class CharsetPolicy(Section):
    """How text whose charset is missing or wrong is read."""

    japanese_prior: float = Field(default=DEFAULT_JAPANESE_PRIOR, ge=0.0, le=1.0)
    """How strongly a valid Japanese reading is preferred to a Chinese or Korean one (0 to 1):
    another reading wins only with at least two of its language's most frequent characters,
    making up a share of the non-ASCII text greater than the Japanese reading's share of kana
    plus this. 0 weighs the evidence alone; 1 never gives up a valid Japanese reading."""


class OutputPolicy(Section):
    """The shape of the rebuilt message."""

    charset: Literal["utf-8", "iso-2022-jp"] = "utf-8"
    """Charset of the rebuilt text: "utf-8" or "iso-2022-jp" (7-bit, for old LGWAN clients)."""
    subject_tag: str = ""
    """Text put in front of the Subject of every sanitized message (e.g. "[無害化]"); "" = none."""
    headers: tuple[str, ...] = (
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
    )
    """Headers copied (rebuilt, never as they were) into the sanitized message."""


class UnlockPolicy(Section):
    """Password-protected attachments (PPAP): how a held message may be unlocked."""

    automatic: bool = False
    """Unlock a message held for a password-protected attachment with the password
    candidates found in the text of another mail from the same envelope sender to (at least)
    the same recipients within window_seconds, whichever of the two came first. The password
    mail itself is delivered as usual. Off by default."""
    window_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    """How far apart the encrypted mail and its password mail may arrive (automatic unlock)."""
    max_candidates: int = Field(default=10, ge=1, le=100)
    """Most password candidates taken from one password mail."""
    max_attempts: int = Field(default=5, ge=1, le=100)
    """Unlock attempts per held message by command, and as many again by password mails (a
    count of their own, so forged password mails cannot use up the operator's); each is
    recorded (its number, never the password). Then only an operator's release remains."""
    max_waiting: int = Field(default=1000, ge=0, le=1_000_000)
    """Password mails whose candidates the running service keeps in memory (never on disk),
    waiting for an encrypted mail that comes after them; the oldest is forgotten first."""


OutboundAction = Literal["pass", "hold", "reject"]


class OutboundPolicy(Section):
    """The checks of the outbound direction (mail leaving for the Internet), overridable per
    sender, recipient and client network by [[rules]] like the rest of [policy]. Each check
    has an action: "pass", "hold" (for approval) or "reject" (with a notice to the sender);
    the strictest one found decides. "Outside" means a domain not in smtp.accept_domains."""

    personal_number: OutboundAction = "hold"
    """A My Number (個人番号, valid check digit, with a keyword or column header beside it) in
    the text or in an attachment (reason personal_number)."""
    unreadable: Literal["hold", "reject"] = "hold"
    """An attachment whose content cannot be checked: password-protected (PPAP sent out),
    broken, or of a kind whose text is not read (reasons encrypted, encrypted_archive,
    unreadable)."""
    auto_forward: OutboundAction = "reject"
    """Mail that carries the marks of automatic forwarding (Auto-Submitted: auto-forwarded,
    Resent-*, X-MS-Exchange-Inbox-Rules-Loop) to an outside recipient (reason
    auto_forward)."""
    keywords: tuple[str, ...] = ()
    """Words that may not leave, found in the Subject, the text or an attachment's text
    (width and case folded; reason keyword)."""
    patterns: tuple[str, ...] = ()
    """Regular expressions (Python syntax) with the same effect as keywords."""
    keyword_action: OutboundAction = "hold"
    """The action for keywords and patterns."""
    file_kinds: tuple[str, ...] = ()
    """Attachment kinds (those of sanitizers.filetype: ooxml, pdf, zip...) that may not leave
    freely (reason file_type)."""
    file_extensions: tuple[str, ...] = ()
    """File name extensions (".xlsx") with the same effect as file_kinds."""
    max_attachment_bytes: int = Field(default=0, ge=0)
    """An attachment larger than this (reason limit_size); 0 = no limit."""
    file_action: OutboundAction = "hold"
    """The action for file_kinds, file_extensions and max_attachment_bytes."""
    recipient_domains: tuple[str, ...] = ()
    """Recipient domains (``*.example.com`` for sub-domains) that may not receive freely
    (reason recipient_domain)."""
    recipient_domain_action: OutboundAction = "hold"
    """The action for recipient_domains."""
    max_outside_recipients: int = Field(default=0, ge=0)
    """More outside recipients than this in one mail (reason recipient_count); 0 = no
    limit."""
    recipient_count_action: OutboundAction = "hold"
    """The action for max_outside_recipients."""

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r}: {exc}") from exc
        return value

    @field_validator("file_kinds")
    @classmethod
    def _kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from sanitizers.filetype import KINDS

        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}; known: {', '.join(KINDS)}")
        return value


_SANITIZED_BY_DEFAULT = (
    "ooxml",
    "xlsb",
    "odf",
    "pdf",
    "image",
    "svg",
    "zip",
    "archive",
    "text",
    "html",
    "tnef",
    "msg",
)


class AttachmentPolicy(Section):
    """Per-type attachment actions; kinds are those of :mod:`sanitizers.filetype`.

    Shipped: OOXML (xlsb included), OpenDocument, PDF, images, SVG, ZIP, other archives (7z,
    RAR, LZH, tar, gzip/bzip2/xz: rebuilt as ZIP) and text-like files are disarmed; Outlook
    containers (``tnef``: winmail.dat, ``msg``: .msg files) are unpacked and their files and
    text handled like the message's own; everything else (legacy Office, RTF, 一太郎, unknown
    types) is removed; executables are always removed whatever this says. For ``ichitaro``,
    "sanitize" (or "keep_if_clean") keeps only the document's text, as a .txt file; the
    document itself never passes.
    """

    default: AttachmentAction = AttachmentAction.REMOVE
    """Action for a kind not listed in by_kind: "remove", "sanitize" or "keep_if_clean"."""
    by_kind: dict[str, AttachmentAction] = Field(
        default_factory=lambda: dict.fromkeys(_SANITIZED_BY_DEFAULT, AttachmentAction.SANITIZE)
    )
    """Action per file kind (the kinds of sanitizers.filetype); executables are always
    removed."""

    @field_validator("by_kind", mode="before")
    @classmethod
    def _current_names(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {FORMER_FILE_KINDS.get(kind, kind): action for kind, action in value.items()}

    @field_validator("by_kind")
    @classmethod
    def _known_kinds(cls, value: dict[str, AttachmentAction]) -> dict[str, AttachmentAction]:
        from sanitizers.filetype import KINDS

        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}; known: {', '.join(KINDS)}")
        return value

    def action_for(self, kind: str) -> AttachmentAction:
        return self.by_kind.get(kind, self.default)


class Policy(Section):
    """Everything the pipeline needs to decide; defaults are the shipped behaviour."""

    limits: Limits = Limits()
    body: BodyPolicy = BodyPolicy()
    links: LinksPolicy = LinksPolicy()
    notice: NoticePolicy = NoticePolicy()
    output: OutputPolicy = OutputPolicy()
    charsets: CharsetPolicy = CharsetPolicy()
    attachments: AttachmentPolicy = AttachmentPolicy()
    cdr: CdrPolicy = CdrPolicy()
    unlock: UnlockPolicy = UnlockPolicy()
    outbound: OutboundPolicy = OutboundPolicy()
    hold_reasons: frozenset[Reason] = frozenset(
        {Reason.ENCRYPTED_ARCHIVE, Reason.ENCRYPTED, Reason.ENCRYPTED_NO_UNLOCK}
    )
    """Part-level reason codes that hold the whole message (limits always do). A part that a
    sanitizer would hold for a reason not listed here (e.g. an encrypted archive when
    "encrypted_archive" is left out) is removed with a notice instead, never delivered."""
    reject_reasons: frozenset[Reason] = frozenset()
    """Part-level reason codes that reject the whole message."""
