"""The notice that tells the recipient, in Japanese by default, what was done to the mail.

Wording lives in templates (``string.Template``: ``${parts}``, ``${reference_line}``, and for
held mail ``${sender}``, ``${subject}``, ``${date}``, ``${reasons}``, ``${reference}``,
``${contact}``, ``${unlock_how}``, ``${automatic_line}``) that operators can replace, one by
one, with files of the same name in ``policy.notice.templates_dir``: ``notice_ja.txt``,
``held_ja.txt``, ``held_password_ja.txt`` (held awaiting a password), ``crash_ja.txt`` (held
because sanitizing kept failing; written by the gateway), ``spoofing_ja.txt`` (the warning at
the top of a mail whose sender may be forged: ``${reasons}``) and their ``_en`` twins;
the per-part lines use fixed labels for actions, reasons and removed items so that the same
code reads the same everywhere. Every value shown comes from the report, already made
display-safe (no controls, no bidi overrides, bounded length).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from string import Template
from zoneinfo import ZoneInfo

from sanitizers.policy import NoticePolicy
from sanitizers.report import PartReport, Report
from sanitizers.vocabulary import Action, Code, FileKind, Reason, label

_KINDS = frozenset(kind.value for kind in FileKind)


@dataclass(frozen=True, slots=True)
class NoticeContext:
    """What the held notices tell that the pipeline does not know: where a password is given
    (``[console] public_url``, and a signed link per recipient), whom to ask (``[console]
    contact``), and the time zone dates are shown in (``[service] display_timezone``; "" = the
    system's)."""

    public_url: str = ""
    contact: str = ""
    timezone: str = ""
    links: tuple[tuple[str, str], ...] = ()
    """(recipient, signed PPAP link) for each envelope recipient of this message (the gateway
    signs them); a held notice awaiting a password goes to each recipient with theirs only."""
    links_expire: datetime | None = None
    """When those links stop working, as the notice says."""


# Kinds whose entries are what a mail container held back (a .msg's OLE objects), not files of
# an archive.
_MAIL_CONTAINERS = frozenset({FileKind.TNEF.value, FileKind.MSG.value})
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
        "inside_mail": "メール内",
        "more": "ほか {} 件",
        "rebuilt_as": "{}の形式に作り直しました",
        "no_text": "文書の文字を取り出せませんでした",
        "contact": "情報システム担当",
        "unlocked_by_mail": (
            "パスワード付きの添付ファイルは、同じ送信者から届いたパスワードのメールで"
            "自動的に解除しました"
        ),
        "unlock_url": "次のページで参照番号とパスワードを入力してください: {}",
        "unlock_link": (
            "次のリンクを開いて、パスワードを入力してください（あなた専用のリンクです。"
            "{expires} まで有効）。\n"
            "{link}\n"
            "リンクが開けない場合は、上の行をコピーしてブラウザーのアドレス欄に貼り付けてください。"
        ),
        "unlock_ask": (
            "参照番号とパスワードをお問い合わせ先へお伝えください（電話など、メール以外の方法で）。"
        ),
        "automatic": (
            "送信者から同じ宛先へパスワードを知らせるメールが届いた場合は、自動で解除を試みます。\n"
        ),
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
        "inside_mail": "in the mail",
        "more": "and {} more",
        "rebuilt_as": "rebuilt as {}",
        "no_text": "its text could not be extracted",
        "contact": "your IT administrators",
        "unlocked_by_mail": (
            "password-protected attachments were unlocked automatically with the password mail"
            " from the same sender"
        ),
        "unlock_url": "Enter the reference and the password on this page: {}",
        "unlock_link": (
            "Open this link and enter the password (it is yours alone; valid until {expires}).\n"
            "{link}\n"
            "If the link does not open, copy the line above into the browser's address bar."
        ),
        "unlock_ask": (
            "Give the reference and the password to the contact below (by phone, or any way"
            " but mail)."
        ),
        "automatic": (
            "If the sender mails the password to the same recipients, it is tried automatically.\n"
        ),
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
        if part.findings or part.removed or part.renamed_from or part.rebuilt_as:
            return True
        changed = part.action in (Action.REMOVED, Action.HELD, Action.CONVERTED)
        if changed and part.reason is not Reason.ALTERNATIVE:
            return True
    return False


def render_notice(
    report: Report, policy: NoticePolicy, reference: str | None, *, unlocked_by_mail: bool = False
) -> str:
    """The block appended to the text body of a delivered message; ``unlocked_by_mail``: a
    password mail's candidates opened its files (automatic unlock), which it says."""
    language = policy.language
    template = _template(policy.template, policy.templates_dir, f"notice_{language}.txt")
    automatic = f"\n■ {_WORDS[language]['unlocked_by_mail']}" if unlocked_by_mail else ""
    return template.safe_substitute(
        reference_line=reference_line(reference, language),
        parts=_parts_block(report, language) + _output_lines(report, language) + automatic,
    )


def render_spoofing_warning(reasons: tuple[Reason, ...], policy: NoticePolicy) -> str:
    """The warning at the top of the body of a mail whose sender may be forged (sender
    authentication's "warn"), naming why."""
    language = policy.language
    template = _template("", policy.templates_dir, f"spoofing_{language}.txt")
    separator = "、" if language == "ja" else "; "
    return template.safe_substitute(reasons=separator.join(_label(r, language) for r in reasons))


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
    context: NoticeContext | None = None,
    automatic_unlock: bool = False,
    link: str = "",
) -> str:
    """The whole body of the notice-only message sent in place of a held mail: the one
    awaiting a password (``held_password_*.txt``) says where and how to give it: with
    ``link``, the recipient's own signed link to the PPAP page, on a line of its own so it can
    be copied. Only the attachments are listed (the text is not delivered either, whatever
    became of it)."""
    context = context or NoticeContext()
    language = policy.language
    words = _WORDS[language]
    awaiting = report.awaiting_password()
    name = f"held_password_{language}.txt" if awaiting else f"held_{language}.txt"
    template = _template("", policy.templates_dir, name)
    none = words["none"]
    if link:
        expires = context.links_expire
        until = _format_time(expires, context.timezone) if expires is not None else none
        unlock_how = words["unlock_link"].format(link=link, expires=until)
    elif context.public_url:
        unlock_how = words["unlock_url"].format(context.public_url)
    else:
        unlock_how = words["unlock_ask"]
    return template.safe_substitute(
        sender=report.from_ or none,
        subject=report.subject or none,
        date=local_time(date, context.timezone) if date else none,
        reasons=", ".join(_label(r, language) for r in report.reasons) or none,
        reference_line=reference_line(reference, language),
        reference=reference or none,
        contact=context.contact or words["contact"],
        unlock_how=unlock_how,
        automatic_line=words["automatic"] if automatic_unlock else "",
        parts=_parts_block(report, language, attachments_only=True),
    )


def render_crash(
    policy: NoticePolicy,
    context: NoticeContext,
    *,
    sender: str,
    received: datetime,
    reference: str,
    queue_id: str,
) -> str:
    """The body of the notice recipients get when sanitizing a message kept failing (the
    gateway writes it; nothing of the message but its envelope sender is shown)."""
    language = policy.language
    words = _WORDS[language]
    template = _template("", policy.templates_dir, f"crash_{language}.txt")
    return template.safe_substitute(
        sender=sender or "<>",
        received=_format_time(received, context.timezone),
        reference=reference or words["none"],
        queue_id=queue_id,
        reasons=_label(Reason.CRASH, language),
        contact=context.contact or words["contact"],
    )


def local_time(untrusted_date: str, timezone: str) -> str:
    """A Date header's time in the operator's time zone (``timezone``; "" = the system's),
    or the header as it was when it is not a date."""
    try:
        moment = parsedate_to_datetime(untrusted_date)
    except (TypeError, ValueError, IndexError):
        return untrusted_date
    if moment.tzinfo is None:
        return untrusted_date
    return _format_time(moment, timezone)


def _format_time(moment: datetime, timezone: str) -> str:
    zone: tzinfo | None = ZoneInfo(timezone) if timezone else None
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or local.strftime("%z"))


def reference_line(reference: str | None, language: str) -> str:
    return f"{_WORDS[language]['reference']}: {reference}" if reference else ""


def _parts_block(report: Report, language: str, *, attachments_only: bool = False) -> str:
    lines: list[str] = []
    for part in report.parts:
        if part.reason is Reason.ALTERNATIVE:
            continue
        if attachments_only and part.kind is None and part.reason in _BODY_REASONS:
            continue
        lines.extend(_part_lines(part, language))
    return "\n".join(lines)


def _part_lines(part: PartReport, language: str) -> list[str]:
    words = _WORDS[language]
    action = _label(part.action, language)
    if part.kind is None and part.reason in _BODY_REASONS:  # attachments all have a kind
        # A body taken out of a container (winmail.dat, a .msg) says which.
        where = f"{part.filename}, " if part.filename else ""
        line = f"■ {words['body']} ({where}{part.declared_type}): {action}"
        if part.removed:  # links of a scheme that is not allowed, defanged in the text
            removed = ", ".join(_label(item, language) for item in part.removed)
            line += f" — {words['removed']}: {removed}"
        return [line]
    name = part.filename or words["unnamed"]
    detected = part.detected_type or part.declared_type
    reason = _label(part.reason, language)
    if part.reason is Reason.POLICY and part.kind in _KINDS:  # which kind the policy refuses
        reason += f" ({_label(FileKind(part.kind), language)})"
    lines = [
        f"■ {words['attachment']}: {name} ({_size(part.size)}, {detected})",
        f"  → {action}: {reason}",
    ]
    if part.renamed_from:
        lines.append(f'  {words["sent_as"]}: "{part.renamed_from}"')
    if part.renamed_from or (part.attached_as and part.attached_as != part.filename):
        lines.append(f"  {words['becomes']}: {part.attached_as}")
    if part.rebuilt_as:
        lines.append(f"  {words['rebuilt_as'].format(_label(part.rebuilt_as, language))}")
    unread = part.action is Action.REMOVED and part.reason is not Reason.POLICY
    if part.kind == FileKind.ICHITARO and unread:  # its text was asked for, and not read
        lines.append(f"  {words['no_text']}")
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
    """The files inside an archive (or held back by a mail container) that were removed or
    changed, each by name (at most :data:`_MAX_ENTRY_LINES`, then how many more)."""
    words = _WORDS[language]
    changed = [
        entry
        for entry in part.entries
        if entry.action in (Action.REMOVED, Action.HELD) or entry.removed
    ]
    inside = words["inside_mail" if part.kind in _MAIL_CONTAINERS else "inside"]
    lines = []
    for entry in changed[:_MAX_ENTRY_LINES]:
        action = _label(entry.action, language)
        lines.append(f"  {inside}: {entry.name} → {action}: {_label(entry.reason, language)}")
    if len(changed) > _MAX_ENTRY_LINES:
        lines.append(f"  {words['more'].format(len(changed) - _MAX_ENTRY_LINES)}")
    return lines


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _template(path: str, directory: str, shipped: str) -> Template:
    """``path`` when given, else the file named ``shipped`` in ``directory`` when there is
    one (looked for each time: a file added later counts), else the shipped template."""
    if path:
        return _read(path)
    if directory and (Path(directory) / shipped).is_file():
        return _read(str(Path(directory) / shipped))
    return _read_shipped(shipped)


@lru_cache(maxsize=32)
def _read(path: str) -> Template:
    return Template(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=16)
def _read_shipped(name: str) -> Template:
    return Template(resources.files("sanitizers").joinpath("templates", name).read_text("utf-8"))
