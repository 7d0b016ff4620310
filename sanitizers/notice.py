"""The notice that tells the recipient, in Japanese by default, what was done to the mail.

Wording lives in templates (``string.Template``: ``${parts}``, ``${reference_line}``, and for
held mail ``${sender}``, ``${subject}``, ``${date}``, ``${reasons}``) that operators can replace;
the per-part lines use fixed labels for actions, reasons and removed items so that the same
code reads the same everywhere. Every value shown comes from the report, already made
display-safe (no controls, no bidi overrides, bounded length).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from string import Template

from sanitizers.policy import NoticePolicy
from sanitizers.report import PartReport, Report
from sanitizers.vocabulary import Action, Code, Reason, label

_BODY_REASONS = frozenset({Reason.TEXT_BODY, Reason.HTML_BODY, Reason.TEXT_CONVERTED})
# Files inside one archive named in the notice; the report and audit line list them all.
_MAX_ENTRY_LINES = 20

# What may go out as UTF-8 under the ISO-2022-JP policy, by ``Report.sent_as_utf8`` entry
# (lower case); another header is shown by its name.
_OUTPUT_PLACES = {
    "ja": {
        "body": "本文",
        "subject": "件名",
        "from": "差出人の名前",
        "to": "宛先の名前",
        "cc": "Cc の名前",
        "reply-to": "返信先の名前",
    },
    "en": {
        "body": "body",
        "subject": "Subject",
        "from": "sender's name",
        "to": "recipient's name",
        "cc": "Cc name",
        "reply-to": "Reply-To name",
    },
}
_WORDS = {
    "ja": {
        "body": "本文",
        "attachment": "添付ファイル",
        "reference": "参照番号",
        "removed": "取り除いたもの",
        "becomes": "添付名",
        "sent_as": "送信者が付けた名前",
        "findings": "検出",
        "unnamed": "(名前なし)",
        "none": "(なし)",
        "inside": "圧縮ファイル内",
        "more": "ほか {} 件",
    },
    "en": {
        "body": "body",
        "attachment": "attachment",
        "reference": "Reference",
        "removed": "removed",
        "becomes": "attached as",
        "sent_as": "name as sent",
        "findings": "found",
        "unnamed": "(no name)",
        "none": "(none)",
        "inside": "in the archive",
        "more": "and {} more",
    },
}


def _label(code: Code, language: str) -> str:
    return label(code, "ja" if language == "ja" else "en")


def is_noteworthy(report: Report) -> bool:
    """Whether the recipient needs to be told anything: a part changed or something was found.

    A losing alternative (the HTML twin of a text body) is not news, and neither is a body
    sent as UTF-8 under the ISO-2022-JP policy (``output_utf8``: the report and
    X-Mukaika-Summary say it, and so does a notice written for another reason; a notice of
    its own would be added again at each pass over the output). Keeping this stable is what
    makes sanitizing an already-sanitized message a no-op.
    """
    if any(reason is not Reason.OUTPUT_UTF8 for reason in report.reasons):
        return True
    for part in report.parts:
        if part.findings or part.removed or part.renamed_from:
            return True
        changed = part.action in (Action.REMOVED, Action.HELD, Action.CONVERTED)
        if changed and part.reason is not Reason.ALTERNATIVE:
            return True
    return False


def render_notice(report: Report, policy: NoticePolicy, reference: str | None) -> str:
    """The block appended to the text body of a delivered message."""
    language = policy.language
    template = _template(policy.template, f"notice_{language}.txt")
    return template.safe_substitute(
        reference_line=reference_line(reference, language),
        parts=_parts_block(report, language) + _output_lines(report, language),
    )


def _output_lines(report: Report, language: str) -> str:
    """Changes to the message as a whole that the parts do not show: what went out as UTF-8
    under the ISO-2022-JP policy (the body, the Subject, a display name)."""
    if Reason.OUTPUT_UTF8 not in report.reasons:
        return ""
    names = _OUTPUT_PLACES[language]
    places = "・" if language == "ja" else ", "
    where = places.join(names.get(place.lower(), place) for place in report.sent_as_utf8)
    return f"\n■ {where or names['body']}: {_label(Reason.OUTPUT_UTF8, language)}"


def render_held(
    report: Report,
    policy: NoticePolicy,
    reference: str | None,
    *,
    date: str,
) -> str:
    """The whole body of the notice-only message sent in place of a held mail."""
    language = policy.language
    template = _template("", f"held_{language}.txt")
    none = _WORDS[language]["none"]
    return template.safe_substitute(
        sender=report.from_ or none,
        subject=report.subject or none,
        date=date or none,
        reasons=", ".join(_label(r, language) for r in report.reasons) or none,
        reference_line=reference_line(reference, language),
        parts=_parts_block(report, language),
    )


def reference_line(reference: str | None, language: str) -> str:
    return f"{_WORDS[language]['reference']}: {reference}" if reference else ""


def _parts_block(report: Report, language: str) -> str:
    lines: list[str] = []
    for part in report.parts:
        if part.reason is Reason.ALTERNATIVE:
            continue
        lines.extend(_part_lines(part, language))
    return "\n".join(lines)


def _part_lines(part: PartReport, language: str) -> list[str]:
    words = _WORDS[language]
    action = _label(part.action, language)
    if part.kind is None and part.reason in _BODY_REASONS:  # attachments all have a kind
        line = f"■ {words['body']} ({part.declared_type}): {action}"
        if part.removed:  # links of a scheme that is not allowed, defanged in the text
            removed = ", ".join(_label(item, language) for item in part.removed)
            line += f" — {words['removed']}: {removed}"
        return [line]
    name = part.filename or words["unnamed"]
    detected = part.detected_type or part.declared_type
    lines = [
        f"■ {words['attachment']}: {name} ({_size(part.size)}, {detected})",
        f"  → {action}: {_label(part.reason, language)}",
    ]
    if part.renamed_from:
        lines.append(f'  {words["sent_as"]}: "{part.renamed_from}"')
    if part.renamed_from or (part.attached_as and part.attached_as != part.filename):
        lines.append(f"  {words['becomes']}: {part.attached_as}")
    if part.removed:
        items = ", ".join(_label(item, language) for item in part.removed)
        lines.append(f"  {words['removed']}: {items}")
    lines.extend(_entry_lines(part, language))
    extra = [r for r in part.findings if r is not part.reason]
    if extra:
        found = ", ".join(_label(r, language) for r in extra)
        lines.append(f"  {words['findings']}: {found}")
    if part.sha256:
        lines.append(f"  SHA-256: {part.sha256}")
    return lines


def _entry_lines(part: PartReport, language: str) -> list[str]:
    """The files inside an archive that were removed or changed, each by name (at most
    :data:`_MAX_ENTRY_LINES`, then how many more)."""
    words = _WORDS[language]
    changed = [
        entry
        for entry in part.entries
        if entry.action in (Action.REMOVED, Action.HELD) or entry.removed
    ]
    lines = []
    for entry in changed[:_MAX_ENTRY_LINES]:
        action = _label(entry.action, language)
        lines.append(
            f"  {words['inside']}: {entry.name} → {action}: {_label(entry.reason, language)}"
        )
    if len(changed) > _MAX_ENTRY_LINES:
        lines.append(f"  {words['more'].format(len(changed) - _MAX_ENTRY_LINES)}")
    return lines


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@lru_cache(maxsize=16)
def _template(path: str, shipped: str) -> Template:
    if path:
        return Template(Path(path).read_text(encoding="utf-8"))
    text = resources.files("sanitizers").joinpath("templates", shipped).read_text("utf-8")
    return Template(text)
