"""What the pipeline is allowed to do: every limit and choice, named and validated.

A policy is plain, frozen, validated data: it pickles into worker processes, and an unknown
key or a wrong value is an error (a typo must never weaken a rule).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sanitizers.cdr.settings import CdrPolicy
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES, normalize_schemes
from sanitizers.vocabulary import Reason


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


class Limits(_Frozen):
    """Named resource limits. Hitting one holds the message with the matching ``limit_*``."""

    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    max_line_bytes: int = Field(default=64 * 1024, gt=0)
    max_parts: int = Field(default=500, gt=0)
    max_depth: int = Field(default=16, gt=0, le=200)
    seconds: float = Field(default=30.0, gt=0)
    max_text_chars: int = Field(default=4 * 1024 * 1024, gt=0)


class BodyPolicy(_Frozen):
    """How bodies become text."""

    prefer_plain: bool = True
    links: LinkMode = LinkMode.KEEP
    other_text: Literal["convert", "remove"] = "convert"
    attached_messages: Literal["flatten", "remove"] = "flatten"


class LinksPolicy(_Frozen):
    """Which links stay clickable, in bodies and documents alike (:mod:`sanitizers.links`)."""

    # URL schemes a link may have. Documents lose links of other schemes (``unsafe_link``);
    # text bodies get them defanged (``javascript[:]…``).
    allowed_schemes: tuple[str, ...] = DEFAULT_ALLOWED_SCHEMES

    @field_validator("allowed_schemes")
    @classmethod
    def _schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return normalize_schemes(value)


class NoticePolicy(_Frozen):
    """The notice appended to the body that tells the recipient what was done."""

    language: Literal["ja", "en"] = "ja"
    # A file whose text replaces the shipped template for ``language`` (string.Template syntax).
    template: str | None = None
    # Append a notice even when every part was kept and nothing was found.
    always: bool = False


class OutputPolicy(_Frozen):
    """The shape of the rebuilt message."""

    charset: Literal["utf-8", "iso-2022-jp"] = "utf-8"
    subject_tag: str = ""
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


_SANITIZED_BY_DEFAULT = ("ooxml", "pdf", "image", "zip", "text", "html")


class AttachmentPolicy(_Frozen):
    """Per-type attachment actions; kinds are those of :mod:`sanitizers.filetype`.

    Shipped: OOXML, PDF, images, ZIP and text-like files are disarmed; everything else
    (legacy Office, RTF, SVG, other archives, unknown types) is removed; executables are
    always removed whatever this says.
    """

    default: AttachmentAction = AttachmentAction.REMOVE
    by_kind: dict[str, AttachmentAction] = Field(
        default_factory=lambda: dict.fromkeys(_SANITIZED_BY_DEFAULT, AttachmentAction.SANITIZE)
    )

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


class Policy(_Frozen):
    """Everything the pipeline needs to decide; defaults are the shipped behaviour."""

    limits: Limits = Limits()
    body: BodyPolicy = BodyPolicy()
    links: LinksPolicy = LinksPolicy()
    notice: NoticePolicy = NoticePolicy()
    output: OutputPolicy = OutputPolicy()
    attachments: AttachmentPolicy = AttachmentPolicy()
    cdr: CdrPolicy = CdrPolicy()
    # Part-level reasons that hold the whole message (limits always do).
    hold_reasons: frozenset[Reason] = frozenset({Reason.ENCRYPTED_ARCHIVE})
    # Part-level reasons that reject the whole message.
    reject_reasons: frozenset[Reason] = frozenset()
