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
from sanitizers.vocabulary import Action, Reason

_ACTIONS = {
    "ja": {
        Action.KEPT: "そのまま",
        Action.CONVERTED: "テキストに変換",
        Action.SANITIZED: "無害化して添付",
        Action.REMOVED: "削除",
        Action.HELD: "保留",
    },
    "en": {
        Action.KEPT: "kept",
        Action.CONVERTED: "converted to text",
        Action.SANITIZED: "disarmed and attached",
        Action.REMOVED: "removed",
        Action.HELD: "held",
    },
}

_REASONS_JA = {
    Reason.TEXT_BODY: "本文",
    Reason.HTML_BODY: "HTML形式の本文",
    Reason.ALTERNATIVE: "同じ内容の別形式",
    Reason.TEXT_CONVERTED: "テキスト形式の部分",
    Reason.ATTACHED_MESSAGE: "添付されたメール",
    Reason.EMPTY: "内容が空",
    Reason.POLICY: "この種類のファイルは受け付けない設定のため",
    Reason.EXECUTABLE: "実行ファイルまたはスクリプトのため",
    Reason.TYPE_MISMATCH: "ファイル名・宣言された種類と中身が一致しないため",
    Reason.UNSUPPORTED_TYPE: "無害化できない種類のファイルのため",
    Reason.UNSUPPORTED_ARCHIVE: "中身を検査できない圧縮形式のため",
    Reason.MESSAGE_PARTIAL: "分割されたメールのため",
    Reason.EXTERNAL_BODY: "外部を参照する部分のため",
    Reason.CLEAN: "危険な内容は見つかりませんでした",
    Reason.MACRO: "マクロを含むため",
    Reason.ACTIVE_CONTENT: "スクリプトなどの動的な内容を含むため",
    Reason.EMBEDDED_OBJECT: "埋め込みオブジェクトを含むため",
    Reason.EXTERNAL_REFERENCE: "外部への参照を含むため",
    Reason.METADATA: "付随情報を含むため",
    Reason.ENCRYPTED: "暗号化されていて検査できないため",
    Reason.ENCRYPTED_ARCHIVE: "パスワード付きの圧縮ファイルで検査できないため",
    Reason.PATH_TRAVERSAL: "不正なファイル名を含むため",
    Reason.MALWARE: "ウイルスが検出されたため",
    Reason.SCANNER_UNAVAILABLE: "ウイルス検査ができなかったため",
    Reason.NOT_SCANNED: "ウイルス検査未実施",
    Reason.CRASH: "処理中に異常が起きたため",
    Reason.TIMEOUT: "処理が制限時間内に終わらなかったため",
    Reason.ERROR: "処理できなかったため",
    Reason.VERIFY_FAILED: "無害化後の検査に合格しなかったため",
    Reason.MALFORMED: "形式に不正な箇所があったため",
    Reason.LOSSY_DECODE: "一部の文字を復元できなかったため",
    Reason.LIMIT_SIZE: "大きさの上限を超えたため",
    Reason.LIMIT_HEADER: "ヘッダーの大きさの上限を超えたため",
    Reason.LIMIT_LINE: "行の長さの上限を超えたため",
    Reason.LIMIT_PARTS: "部分の数の上限を超えたため",
    Reason.LIMIT_DEPTH: "入れ子の深さの上限を超えたため",
    Reason.LIMIT_TIME: "処理時間の上限を超えたため",
    Reason.LIMIT_RATIO: "圧縮率の上限を超えたため",
    Reason.LIMIT_ENTRIES: "ファイル数の上限を超えたため",
    Reason.LIMIT_PIXELS: "画像の画素数の上限を超えたため",
}

_REMOVED_ITEMS = {
    "ja": {
        "vba": "VBAマクロ",
        "xlm_macro": "Excel 4.0 マクロ",
        "activex": "ActiveX コントロール",
        "ole_object": "埋め込みオブジェクト",
        "external_relationship": "外部参照",
        "dde": "DDE フィールド",
        "javascript": "JavaScript",
        "open_action": "開いたときの動作",
        "additional_actions": "自動実行の動作",
        "launch": "外部プログラムの起動",
        "submit_form": "フォーム送信",
        "import_data": "データ読み込み",
        "remote_goto": "外部文書へのリンク",
        "rich_media": "動画・Flash",
        "embedded_file": "埋め込みファイル",
        "file_attachment": "添付ファイル注釈",
        "xfa": "XFA フォーム",
        "unsafe_link": "許可されていない種類のリンク（javascript:、file: など）",
        "metadata": "メタデータ",
        "trailing_data": "末尾の余分なデータ",
        "frames": "2枚目以降の画像",
        "control_characters": "制御文字",
        "csv_formula": "数式として実行されるセル（文字列に変更）",
        "embedded_package": "埋め込みパッケージ",
        "alt_chunk": "取り込まれた別形式の文書",
        "custom_ui": "リボンのカスタマイズ",
        "web_extension": "Office アドイン",
        "external_link": "外部ブックへのリンク",
        "data_connection": "外部データ接続",
        "hyperlink": "外部へのハイパーリンク（文字は残しました）",
        "linked_field": "外部を参照するフィールド",
        "computed_field": "命令が計算で作られるフィールド",
        "formula_function": "外部を呼び出す数式（WEBSERVICE など）",
        "svg_image": "SVG 画像（スクリプトを含み得るもの）",
        "program_action": "プログラム実行の動作",
        "unknown_part": "不明な部品",
        "attachment": "内部の添付ファイル",
        "entry": "圧縮ファイル内のファイル",
    },
    "en": {
        "vba": "VBA macros",
        "xlm_macro": "Excel 4.0 macros",
        "activex": "ActiveX controls",
        "ole_object": "embedded objects",
        "external_relationship": "external references",
        "dde": "DDE fields",
        "javascript": "JavaScript",
        "open_action": "open action",
        "additional_actions": "automatic actions",
        "launch": "program launch",
        "submit_form": "form submission",
        "import_data": "data import",
        "remote_goto": "links to other documents",
        "rich_media": "rich media",
        "embedded_file": "embedded files",
        "file_attachment": "file attachment annotations",
        "xfa": "XFA forms",
        "unsafe_link": "links of a scheme that is not allowed (javascript:, file:, ...)",
        "metadata": "metadata",
        "trailing_data": "trailing data",
        "frames": "frames after the first",
        "control_characters": "control characters",
        "csv_formula": "cells a spreadsheet would run (made text)",
        "embedded_package": "embedded packages",
        "alt_chunk": "imported documents",
        "custom_ui": "ribbon customisation",
        "web_extension": "Office add-ins",
        "external_link": "links to other workbooks",
        "data_connection": "external data connections",
        "hyperlink": "external hyperlinks (text kept)",
        "linked_field": "fields referring outside",
        "computed_field": "fields whose instruction is computed",
        "formula_function": "formulas that fetch or call outside (WEBSERVICE, ...)",
        "svg_image": "SVG images (they can carry script)",
        "program_action": "program actions",
        "unknown_part": "unknown parts",
        "attachment": "inner attachments",
        "entry": "files inside the archive",
    },
}

_BODY_REASONS = frozenset({Reason.TEXT_BODY, Reason.HTML_BODY, Reason.TEXT_CONVERTED})
# Files inside one archive named in the notice; the report and audit line list them all.
_MAX_ENTRY_LINES = 20

_WORDS = {
    "ja": {
        "body": "本文",
        "attachment": "添付ファイル",
        "reference": "参照番号",
        "removed": "取り除いたもの",
        "becomes": "添付名",
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
        "findings": "found",
        "unnamed": "(no name)",
        "none": "(none)",
        "inside": "in the archive",
        "more": "and {} more",
    },
}


def reason_label(reason: Reason, language: str) -> str:
    if language == "ja":
        return _REASONS_JA.get(reason, reason.value)
    return reason.value.replace("_", " ")


def is_noteworthy(report: Report) -> bool:
    """Whether the recipient needs to be told anything: a part changed or something was found.

    A losing alternative (the HTML twin of a text body) is not news. Keeping this stable is
    what makes sanitizing an already-sanitized message a no-op.
    """
    if report.reasons:
        return True
    for part in report.parts:
        if part.findings or part.removed:
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
        parts=_parts_block(report, language),
    )


def render_held(
    report: Report,
    policy: NoticePolicy,
    reference: str | None,
    *,
    date: str,
) -> str:
    """The whole body of the notice-only message sent in place of a held mail."""
    language = policy.language
    template = _template(None, f"held_{language}.txt")
    none = _WORDS[language]["none"]
    return template.safe_substitute(
        sender=report.from_ or none,
        subject=report.subject or none,
        date=date or none,
        reasons=", ".join(reason_label(r, language) for r in report.reasons) or none,
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
    action = _ACTIONS[language][part.action]
    if part.kind is None and part.reason in _BODY_REASONS:  # attachments all have a kind
        line = f"■ {words['body']} ({part.declared_type}): {action}"
        if part.removed:  # links of a scheme that is not allowed, defanged in the text
            labels = _REMOVED_ITEMS[language]
            line += f" — {words['removed']}: " + ", ".join(labels.get(c, c) for c in part.removed)
        return [line]
    name = part.filename or words["unnamed"]
    detected = part.detected_type or part.declared_type
    lines = [
        f"■ {words['attachment']}: {name} ({_size(part.size)}, {detected})",
        f"  → {action}: {reason_label(part.reason, language)}",
    ]
    if part.attached_as and part.attached_as != part.filename:
        lines.append(f"  {words['becomes']}: {part.attached_as}")
    if part.removed:
        labels = _REMOVED_ITEMS[language]
        items = ", ".join(labels.get(code, code) for code in part.removed)
        lines.append(f"  {words['removed']}: {items}")
    lines.extend(_entry_lines(part, language))
    extra = [r for r in part.findings if r is not part.reason]
    if extra:
        found = ", ".join(reason_label(r, language) for r in extra)
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
        action = _ACTIONS[language][entry.action]
        lines.append(
            f"  {words['inside']}: {entry.name} → {action}: {reason_label(entry.reason, language)}"
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
def _template(path: str | None, shipped: str) -> Template:
    if path is not None:
        return Template(Path(path).read_text(encoding="utf-8"))
    text = resources.files("sanitizers").joinpath("templates", shipped).read_text("utf-8")
    return Template(text)
