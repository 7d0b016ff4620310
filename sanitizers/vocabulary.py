"""The one vocabulary of outcomes used in reports, audit lines, metric labels and tests.

Values are stable strings: operators grep for them and dashboards group by them, so a value
is never renamed, only added. Every code has a Japanese and an English label here
(:func:`label`), used by the notices and the command line; a test checks that none is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, Literal


class Action(StrEnum):
    """What happened to one MIME part."""

    KEPT = "kept"
    CONVERTED = "converted"
    SANITIZED = "sanitized"
    REMOVED = "removed"
    HELD = "held"


class Verdict(StrEnum):
    """What happens to the whole message. Only the SMTP layer turns this into reply codes."""

    DELIVER = "deliver"
    HOLD = "hold"
    REJECT = "reject"


class Reason(StrEnum):
    """Why a part got its action, or why a message got its verdict."""

    # Bodies and text.
    TEXT_BODY = "text_body"  # a text/plain body kept as text
    HTML_BODY = "html_body"  # an HTML body converted to text
    ALTERNATIVE = "alternative"  # an alternative dropped because a better one exists
    TEXT_CONVERTED = "text_converted"  # another text type converted to plain text
    ATTACHED_MESSAGE = "attached_message"  # a message/rfc822 part, flattened into the body
    UNPACKED = (
        "unpacked"  # a mail container (winmail.dat, .msg) whose parts were handled one by one
    )
    TEXT_EXTRACTED = "text_extracted"  # only the text of a document was kept, as a .txt file
    EMPTY = "empty"  # a part with no content
    # Attachments, by policy or by what they are.
    POLICY = "policy"  # removed because policy says so for this type
    EXECUTABLE = "executable"
    TYPE_MISMATCH = "type_mismatch"
    UNSUPPORTED_TYPE = "unsupported_type"
    UNSUPPORTED_ARCHIVE = "unsupported_archive"
    MESSAGE_PARTIAL = "message_partial"
    EXTERNAL_BODY = "external_body"
    # Findings of content disarm (CDR).
    CLEAN = "clean"  # checked, nothing dangerous found
    MACRO = "macro"
    ACTIVE_CONTENT = "active_content"
    EMBEDDED_OBJECT = "embedded_object"
    EXTERNAL_REFERENCE = "external_reference"
    METADATA = "metadata"
    ENCRYPTED = "encrypted"
    ENCRYPTED_ARCHIVE = "encrypted_archive"
    # A password-protected archive that no password given here could open (RAR: its reader
    # would put the password on a command line): held for an operator, no unlock offered.
    ENCRYPTED_NO_UNLOCK = "encrypted_no_unlock"
    PATH_TRAVERSAL = "path_traversal"
    MALWARE = "malware"
    SCANNER_UNAVAILABLE = "scanner_unavailable"
    NOT_SCANNED = "not_scanned"  # a file no malware scanner looked at (the scanner is off)
    # The held-mail workflow (sanitizers/release.py).
    EXCEPTION = "exception"  # the sender's bytes, let through by an approved exception (例外措置)
    TEXT_ONLY = "text_only"  # removed: a message held for a limit is released as text only
    # The outbound direction (mail from the municipality to the Internet; gateway/outbound).
    PERSONAL_NUMBER = "personal_number"  # a My Number (個人番号) with context, in text or a file
    KEYWORD = "keyword"  # a keyword or pattern of the outbound checks (policy.outbound)
    FILE_TYPE = "file_type"  # an attachment kind or extension the outbound checks name
    RECIPIENT_DOMAIN = "recipient_domain"  # a recipient domain the outbound checks name
    RECIPIENT_COUNT = "recipient_count"  # more outside recipients than the outbound checks allow
    AUTO_FORWARD = "auto_forward"  # the marks of automatic forwarding to the outside
    RATE_LIMIT = "rate_limit"  # the sender (or everyone) sent more than the outbound rate limits
    UNREADABLE = "unreadable"  # an attachment whose text could not be checked
    # Faults while sanitizing: the part is removed, never kept.
    CRASH = "crash"
    TIMEOUT = "timeout"
    ERROR = "error"
    VERIFY_FAILED = "verify_failed"
    # Malformed input, decided one deterministic way and recorded.
    MALFORMED = "malformed"
    LOSSY_DECODE = "lossy_decode"
    # Output: the body went out as UTF-8 although the policy asks for ISO-2022-JP (a character
    # or a line of it does not fit), so a reader whose client assumes JIS is told.
    OUTPUT_UTF8 = "output_utf8"
    # Named limits.
    LIMIT_SIZE = "limit_size"
    LIMIT_HEADER = "limit_header"
    LIMIT_LINE = "limit_line"
    LIMIT_PARTS = "limit_parts"
    LIMIT_DEPTH = "limit_depth"
    LIMIT_TIME = "limit_time"
    LIMIT_RATIO = "limit_ratio"
    LIMIT_ENTRIES = "limit_entries"
    LIMIT_PIXELS = "limit_pixels"
    # Sender authentication (gateway/senderauth): why a message is tagged, held or refused.
    DMARC_REJECT = "dmarc_reject"  # DMARC failed; the sender's domain publishes p=reject
    DMARC_QUARANTINE = "dmarc_quarantine"  # DMARC failed; the domain publishes p=quarantine
    DMARC_FAIL = "dmarc_fail"  # DMARC failed; the domain publishes p=none
    AUTH_TEMPERROR = "auth_temperror"  # a DNS failure left SPF, DKIM or DMARC undecided
    DISPLAY_NAME_ADDRESS = "display_name_address"  # a From display name names another address
    LOOKALIKE_SENDER = "lookalike_sender"  # a From domain made to look like one of ours


# The reasons a password may lift: a part held for one of them awaits a password
# (ZIP and 7z: ``encrypted_archive``; Office and PDF: ``encrypted``). ``encrypted_no_unlock``
# (RAR) holds a part too, but no password is asked for: only an operator's release ends it.
PASSWORD_REASONS: Final = frozenset({Reason.ENCRYPTED, Reason.ENCRYPTED_ARCHIVE})


class FileKind(StrEnum):
    """What an attachment really is, by its content (see :mod:`sanitizers.filetype`)."""

    OOXML = "ooxml"  # Office Open XML (docx, xlsx, pptx)
    OLE = "ole"  # legacy Office (doc, xls, ppt)
    RTF = "rtf"  # Rich Text Format
    PDF = "pdf"  # PDF
    IMAGE = "image"  # raster image
    SVG = "svg"  # SVG drawing
    ZIP = "zip"  # ZIP archive
    ARCHIVE = "archive"  # other archive: 7z, RAR, LZH, tar, gzip/bzip2/xz (rebuilt as ZIP)
    TEXT = "text"  # text-like file (txt, csv, …)
    HTML = "html"  # HTML file
    EXECUTABLE = "executable"  # executable or script
    MESSAGE = "message"  # attached mail
    OTHER = "other"  # anything else
    ODF = "odf"  # OpenDocument (odt, ods, odp)
    XLSB = "xlsb"  # Excel binary workbook (xlsb): an OOXML package with binary parts
    TNEF = "tnef"  # Outlook's winmail.dat (application/ms-tnef)
    MSG = "msg"  # an Outlook message saved as a file (.msg)
    ICHITARO = "ichitaro"  # 一太郎 document or template (jtd, jtt, jtdc)


# The one kind that was renamed (issue 21 names OpenDocument ``odf``; versions before it said
# ``opendocument``): configurations written for them keep working.
FORMER_FILE_KINDS: Final = {"opendocument": FileKind.ODF}


class RemovedItem(StrEnum):
    """One kind of thing a sanitizer took out of a file (``CdrOutcome.removed``)."""

    VBA = "vba"
    XLM_MACRO = "xlm_macro"
    ACTIVEX = "activex"
    OLE_OBJECT = "ole_object"
    EXTERNAL_RELATIONSHIP = "external_relationship"
    DDE = "dde"
    JAVASCRIPT = "javascript"
    OPEN_ACTION = "open_action"
    ADDITIONAL_ACTIONS = "additional_actions"
    LAUNCH = "launch"
    SUBMIT_FORM = "submit_form"
    IMPORT_DATA = "import_data"
    REMOTE_GOTO = "remote_goto"
    RICH_MEDIA = "rich_media"
    EMBEDDED_FILE = "embedded_file"
    FILE_ATTACHMENT = "file_attachment"
    XFA = "xfa"
    URI = "uri"
    METADATA = "metadata"
    TRAILING_DATA = "trailing_data"
    FRAMES = "frames"
    CONTROL_CHARACTERS = "control_characters"
    CSV_FORMULA = "csv_formula"
    EMBEDDED_PACKAGE = "embedded_package"
    ALT_CHUNK = "alt_chunk"
    CUSTOM_UI = "custom_ui"
    WEB_EXTENSION = "web_extension"
    EXTERNAL_LINK = "external_link"
    DATA_CONNECTION = "data_connection"
    HYPERLINK = "hyperlink"
    LINKED_FIELD = "linked_field"
    PROGRAM_ACTION = "program_action"
    UNKNOWN_PART = "unknown_part"
    ATTACHMENT = "attachment"
    ENTRY = "entry"
    REMOTE_TEMPLATE = "remote_template"
    UNSAFE_LINK = "unsafe_link"
    COMPUTED_FIELD = "computed_field"
    FORMULA_FUNCTION = "formula_function"
    SVG_IMAGE = "svg_image"
    INLINE_FILE = "inline_file"  # a file encoded in body text, taken out as an attachment
    ENCRYPTION = "encryption"  # a password opened the file; it was disarmed decrypted
    DOCUMENT_MACRO = "document_macro"  # OpenDocument Basic/Python/JavaScript macros, scripts
    EVENT_HANDLER = "event_handler"  # code bound to an event (on open, on click, onload=)
    FOREIGN_OBJECT = "foreign_object"  # SVG foreignObject (HTML or other content inside)


class SmtpRefusal(StrEnum):
    """Why the SMTP layer refused something (log field ``reason`` and metric label); the
    receiver maps every 4xx or 5xx reply it sends to one (:mod:`gateway.receiving.refusals`)."""

    RELAY = "relay"  # recipient domain not accepted (554 5.7.1)
    SIZE = "size"  # message too large, declared or not (552 5.3.4)
    RECIPIENTS = "recipients"  # too many recipients (452 4.5.3)
    BARE_NEWLINE = "bare_newline"  # bare CR or LF in DATA: SMTP smuggling (550 5.5.2)
    SMUGGLING = "smuggling"  # NUL in DATA (550 5.5.2)
    PIPELINING = "pipelining"  # commands pipelined after the final dot (503 5.5.0)
    LINE_LENGTH = "line_length"  # a data line too long (500 5.5.2)
    SYNTAX = "syntax"  # a bad sender or recipient address (553)
    PROTOCOL = "protocol"  # any other bad command, argument or sequence (aiosmtpd's 5xx)
    TIMEOUT = "timeout"  # a command line or data record not complete in time (421 4.4.2)
    STRESS_TIMEOUT = "stress_timeout"  # the same, with the shorter limits of stress mode
    DEADLINE = "deadline"  # the whole session ran past its deadline (421 4.4.2)
    TOO_SLOW = "too_slow"  # DATA below the minimum rate (421 4.4.2)
    CONNECTIONS = "connections"  # overall connection cap (421 4.7.0)
    CONNECTIONS_PER_CLIENT = "connections_per_client"  # per-address connection cap (421 4.7.0)
    DISK = "disk"  # free disk below the threshold (452 4.3.1)
    STORE = "store"  # the store (database) does not answer: mail could not be recorded (451)
    SHUTDOWN = "shutdown"  # stopping (421 4.3.2)
    INTERNAL = "internal"  # internal error (451 4.3.0)
    VERDICT = "verdict"  # the sanitizer's verdict was reject (after 250: a dead letter)
    AUTH_REJECT = "auth_reject"  # sender authentication failed, action reject (550 5.7.1)
    AUTH_TEMPORARY = "auth_temporary"  # authentication undecided in time or by DNS (451 4.7.0)


class MessageState(StrEnum):
    """Where a message is: a spool directory, a quarantine delivery state, a queue gauge."""

    INCOMING = "incoming"  # accepted, waiting to be sanitized
    OUTGOING = "outgoing"  # sanitized, waiting to be delivered
    QUEUED = "queued"  # stored, not yet delivered
    ACTIVE = "active"  # being worked on
    SANITIZED = "sanitized"  # sanitized
    DEFERRED = "deferred"  # delivery failed for now; retried later
    HELD = "held"  # held: the recipients got a notice, not the mail
    DELIVERED = "delivered"  # delivered to the LGWAN side
    DEAD = "dead"  # given up: dead letter, the sender is told
    # The held-mail workflow (a quarantine entry's state; gateway.service.held_mail).
    AWAITING_PASSWORD = "awaiting_password"  # noqa: S105 - held until the archive's password is given
    RELEASE_REQUESTED = "release_requested"  # an exception (例外措置) waits for its approval
    APPROVED = "approved"  # a release or an approved exception waits for serve to carry it out
    RELEASED = "released"  # serve sanitized it again and spooled it for delivery
    DENIED = "denied"  # the approver refused the exception


class DeadLetterReason(StrEnum):
    """Why a message was given up and moved to the dead letters."""

    LIFETIME = "lifetime"  # not delivered within delivery.lifetime_seconds
    UNDELIVERABLE = "undeliverable"  # every recipient refused for good
    REJECTED = "rejected"  # the sanitizer's verdict was reject
    CANCELLED = "cancelled"  # outbound: its sender cancelled it during the delay
    DENIED = "denied"  # outbound: the approver refused it, or nobody approved it in time


class UnlockResult(StrEnum):
    """What became of one attempt to unlock a message held for a password-protected file
    (audit ``state`` of an ``unlock`` or ``automatic_unlock`` line; the command's answer)."""

    UNLOCKED = "unlocked"  # a password opened it: the sanitized mail is spooled for delivery
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a result: no password given opened it
    NO_ATTEMPTS_LEFT = "no_attempts_left"  # policy.unlock.max_attempts used up
    HELD = "held"  # opened, but what was inside holds the message for another reason
    NOT_FOUND = "not_found"  # no held message with that reference
    WRONG_STATE = "wrong_state"  # the message is not awaiting a password
    FAILED = "failed"  # the sanitizer failed (crash, scanner down): try again later
    LOCKED_OUT = "locked_out"  # console: too many wrong ones by this link, user or address


class UserRole(StrEnum):
    """What a user of the held-mail workflow may do."""

    RECIPIENT = "recipient"  # sees the mail addressed to their addresses (web console)
    OPERATOR = "operator"  # releases held mail, requests exceptions
    APPROVER = "approver"  # also approves or denies another user's exception request
    AUDITOR = "auditor"  # reads the audit trail and the held mail; changes nothing
    ADMIN = "admin"  # manages the users of the web console


class RequestKind(StrEnum):
    """What a recorded decision on a held message lets through."""

    RELEASE = "release"  # sanitized again, the hold lifted; what held it is removed
    EXCEPTION = "exception"  # 例外措置: named original parts cross as they came
    OUTBOUND = "outbound"  # 上長承認: an outbound mail held until an approver of its sender decides


class RequestState(StrEnum):
    """Where a recorded decision is."""

    PENDING = "pending"  # waits for an approver
    APPROVED = "approved"  # waits for serve to carry it out
    DENIED = "denied"  # refused by an approver
    DONE = "done"  # serve spooled the sanitized copy for delivery
    FAILED = "failed"  # serve could not carry it out (the entry is held again)


class AuditEvent(StrEnum):
    """What one audit line records (its ``event``)."""

    MESSAGE = "message"  # a message reached its end: delivered, held, dead
    RELEASE = "release"  # an operator released a held message
    REQUEST = "request"  # an exception (例外措置) was requested
    APPROVAL = "approval"  # an approver approved an exception
    DENIAL = "denial"  # an approver denied an exception
    RELEASE_DONE = "release_done"  # serve carried out a release or an exception (or failed)
    UNLOCK_ATTEMPT = "unlock_attempt"  # a password was tried on a held archive
    USER = "user"  # a workflow user was added, changed or disabled
    LOGIN = "login"  # a sign-in to the web console: ok, failed or locked (its outcome)
    LOGOUT = "logout"  # a console session ended by its user
    VIEW = "view"  # a console user looked at a quarantined original (its text rendering)
    DOWNLOAD = "download"  # an operator downloaded a quarantined original from the console
    STORE = "store"  # the store was migrated, backed up or copied
    NODE = "node"  # serve started on a node, or measured its clock against the database's
    EVIDENCE = "evidence"  # a message was exported as evidence (sha256: of its manifest)
    NOTICE = "notice"  # a requester was told of the decision on their request
    DIGEST = "digest"  # serve (or mukaika digest send) sent the daily digests and summary


class OutboundEvent(StrEnum):
    """What happened to an outbound mail (metric ``mukaika_outbound_total{event}``)."""

    RECEIVED = "received"  # accepted on the outbound listener
    DELIVERED = "delivered"  # handed to the outbound relay
    DEFERRED = "deferred"  # a delivery attempt to the relay will be retried
    HELD = "held"  # held for an approver (上長承認)
    REJECTED = "rejected"  # refused by the checks; its sender was told
    CANCELLED = "cancelled"  # cancelled by its sender during the delay
    APPROVED = "approved"  # an approver let it go
    DENIED = "denied"  # an approver refused it, or nobody decided in time
    DEAD = "dead"  # the relay refused it for good, or it was not delivered in time
    RATE_LIMITED = "rate_limited"  # held because its sender (or everyone) sent too much


Code = (
    Action
    | Verdict
    | Reason
    | FileKind
    | RemovedItem
    | SmtpRefusal
    | MessageState
    | DeadLetterReason
    | UnlockResult
    | UserRole
    | RequestKind
    | RequestState
    | AuditEvent
    | OutboundEvent
)
VOCABULARY: Final = (
    Action, Verdict, Reason, FileKind, RemovedItem, SmtpRefusal, MessageState, DeadLetterReason,
    UnlockResult, UserRole, RequestKind, RequestState, AuditEvent, OutboundEvent,
)  # fmt: skip
Language = Literal["ja", "en"]


def label(code: Code, language: Language) -> str:
    """What ``code`` means for a reader of ``language``. Labels are kept per enum: the same
    string may be a code of two enums (``timeout`` is a reason and an SMTP refusal)."""
    return (_JA if language == "ja" else _EN)[type(code)][code]


_JA: Final[Mapping[type[Code], Mapping[str, str]]] = {
    Action: {
        Action.KEPT: "そのまま",
        Action.CONVERTED: "テキストに変換",
        Action.SANITIZED: "無害化して添付",
        Action.REMOVED: "削除",
        Action.HELD: "保留",
    },
    Verdict: {
        Verdict.DELIVER: "配送",
        Verdict.HOLD: "保留",
        Verdict.REJECT: "拒否",
    },
    Reason: {
        Reason.TEXT_BODY: "本文",
        Reason.HTML_BODY: "HTML形式の本文",
        Reason.ALTERNATIVE: "同じ内容の別形式",
        Reason.TEXT_CONVERTED: "テキスト形式の部分",
        Reason.ATTACHED_MESSAGE: "添付されたメール",
        Reason.UNPACKED: "中のファイルと本文を取り出し、それぞれ処理しました",
        Reason.TEXT_EXTRACTED: "文書の文字だけを取り出し、テキストファイルにしました",
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
        Reason.ENCRYPTED_NO_UNLOCK: (
            "パスワード付きの圧縮ファイルで検査できず、この形式はここではパスワードで開けないため"
        ),
        Reason.PATH_TRAVERSAL: "不正なファイル名を含むため",
        Reason.MALWARE: "ウイルスが検出されたため",
        Reason.SCANNER_UNAVAILABLE: "ウイルス検査ができなかったため",
        Reason.CRASH: "処理中に異常が起きたため",
        Reason.TIMEOUT: "処理が制限時間内に終わらなかったため",
        Reason.ERROR: "処理できなかったため",
        Reason.VERIFY_FAILED: "無害化後の検査に合格しなかったため",
        Reason.MALFORMED: "形式に不正な箇所があったため",
        Reason.LOSSY_DECODE: "一部の文字を復元できなかったため",
        Reason.OUTPUT_UTF8: "ISO-2022-JP で表せない文字を含むため、UTF-8 で送りました",
        Reason.LIMIT_SIZE: "大きさの上限を超えたため",
        Reason.LIMIT_HEADER: "ヘッダーの大きさの上限を超えたため",
        Reason.LIMIT_LINE: "行の長さの上限を超えたため",
        Reason.LIMIT_PARTS: "部分の数の上限を超えたため",
        Reason.LIMIT_DEPTH: "入れ子の深さの上限を超えたため",
        Reason.LIMIT_TIME: "処理時間の上限を超えたため",
        Reason.LIMIT_RATIO: "圧縮率の上限を超えたため",
        Reason.LIMIT_ENTRIES: "ファイル数の上限を超えたため",
        Reason.LIMIT_PIXELS: "画像の画素数の上限を超えたため",
        Reason.DMARC_REJECT: "送信元ドメインの認証（DMARC）に失敗（ドメインの方針: 拒否）",
        Reason.DMARC_QUARANTINE: "送信元ドメインの認証（DMARC）に失敗（ドメインの方針: 隔離）",
        Reason.DMARC_FAIL: "送信元ドメインの認証（DMARC）に失敗しました",
        Reason.AUTH_TEMPERROR: "DNS の障害で送信元を認証できませんでした",
        Reason.DISPLAY_NAME_ADDRESS: "差出人の表示名に別のメールアドレスが書かれています",
        Reason.LOOKALIKE_SENDER: "差出人のドメインが当団体のドメインに似せてあります",
        Reason.NOT_SCANNED: "ウイルス検査未実施",
        Reason.EXCEPTION: "承認された例外措置により原本のまま",
        Reason.TEXT_ONLY: "保留の解除は本文のみのため",
        Reason.PERSONAL_NUMBER: "個人番号（マイナンバー）を含むため",
        Reason.KEYWORD: "送信禁止の語句を含むため",
        Reason.FILE_TYPE: "送信が制限された種類のファイルのため",
        Reason.RECIPIENT_DOMAIN: "送信が制限された宛先ドメインのため",
        Reason.RECIPIENT_COUNT: "外部の宛先が多すぎるため",
        Reason.AUTO_FORWARD: "外部への自動転送のため",
        Reason.RATE_LIMIT: "送信数が上限を超えたため",
        Reason.UNREADABLE: "内容を確認できないファイルのため",
    },
    FileKind: {
        FileKind.OOXML: "Office 文書（docx・xlsx・pptx）",
        FileKind.OLE: "旧形式の Office 文書（doc・xls・ppt）",
        FileKind.RTF: "リッチテキスト（RTF）",
        FileKind.PDF: "PDF",
        FileKind.IMAGE: "画像",
        FileKind.SVG: "SVG 画像",
        FileKind.ZIP: "ZIP 圧縮ファイル",
        FileKind.ARCHIVE: "圧縮ファイル（7z・RAR・LZH・tar・gzip など）",
        FileKind.TEXT: "テキストファイル",
        FileKind.HTML: "HTML ファイル",
        FileKind.EXECUTABLE: "実行ファイル・スクリプト",
        FileKind.MESSAGE: "添付されたメール",
        FileKind.OTHER: "その他のファイル",
        FileKind.ODF: "OpenDocument 文書（odt・ods・odp）",
        FileKind.XLSB: "Excel バイナリブック（xlsb）",
        FileKind.TNEF: "Outlook の winmail.dat（TNEF）",
        FileKind.MSG: "Outlook のメールファイル（msg）",
        FileKind.ICHITARO: "一太郎文書（jtd・jtt・jtdc）",
    },
    RemovedItem: {
        RemovedItem.VBA: "VBAマクロ",
        RemovedItem.XLM_MACRO: "Excel 4.0 マクロ",
        RemovedItem.ACTIVEX: "ActiveX コントロール",
        RemovedItem.OLE_OBJECT: "埋め込みオブジェクト",
        RemovedItem.EXTERNAL_RELATIONSHIP: "外部参照",
        RemovedItem.DDE: "DDE フィールド",
        RemovedItem.JAVASCRIPT: "JavaScript",
        RemovedItem.OPEN_ACTION: "開いたときの動作",
        RemovedItem.ADDITIONAL_ACTIONS: "自動実行の動作",
        RemovedItem.LAUNCH: "外部プログラムの起動",
        RemovedItem.SUBMIT_FORM: "フォーム送信",
        RemovedItem.IMPORT_DATA: "データ読み込み",
        RemovedItem.REMOTE_GOTO: "外部文書へのリンク",
        RemovedItem.RICH_MEDIA: "動画・Flash",
        RemovedItem.EMBEDDED_FILE: "埋め込みファイル",
        RemovedItem.FILE_ATTACHMENT: "添付ファイル注釈",
        RemovedItem.XFA: "XFA フォーム",
        RemovedItem.URI: "URL リンク",
        RemovedItem.METADATA: "メタデータ",
        RemovedItem.TRAILING_DATA: "末尾の余分なデータ",
        RemovedItem.FRAMES: "2枚目以降の画像",
        RemovedItem.CONTROL_CHARACTERS: "制御文字",
        RemovedItem.CSV_FORMULA: "数式として実行されるセル（文字列に変更）",
        RemovedItem.EMBEDDED_PACKAGE: "埋め込みパッケージ",
        RemovedItem.ALT_CHUNK: "取り込まれた別形式の文書",
        RemovedItem.CUSTOM_UI: "リボンのカスタマイズ",
        RemovedItem.WEB_EXTENSION: "Office アドイン",
        RemovedItem.EXTERNAL_LINK: "外部ブックへのリンク",
        RemovedItem.DATA_CONNECTION: "外部データ接続",
        RemovedItem.HYPERLINK: "外部へのハイパーリンク（文字は残しました）",
        RemovedItem.LINKED_FIELD: "外部を参照するフィールド",
        RemovedItem.PROGRAM_ACTION: "プログラム実行の動作",
        RemovedItem.UNKNOWN_PART: "不明な部品",
        RemovedItem.ATTACHMENT: "内部の添付ファイル",
        RemovedItem.ENTRY: "圧縮ファイル内のファイル",
        RemovedItem.REMOTE_TEMPLATE: "外部のテンプレートへの参照",
        RemovedItem.UNSAFE_LINK: "許可されていない種類のリンク（javascript:、file: など）",
        RemovedItem.COMPUTED_FIELD: "命令が計算で作られるフィールド",
        RemovedItem.FORMULA_FUNCTION: "外部を呼び出す数式（WEBSERVICE など）",
        RemovedItem.SVG_IMAGE: "SVG 画像（スクリプトを含み得るもの）",
        RemovedItem.INLINE_FILE: "本文中のファイル（uuencode、yEnc など。添付として扱います）",
        RemovedItem.ENCRYPTION: "パスワードによる暗号化（解除して無害化しました）",
        RemovedItem.DOCUMENT_MACRO: "文書のマクロ・スクリプト（Basic、Python など）",
        RemovedItem.EVENT_HANDLER: "開いたときやクリックしたときに動くマクロ・スクリプト",
        RemovedItem.FOREIGN_OBJECT: "SVG 内に埋め込まれた HTML などの内容",
    },
    SmtpRefusal: {
        SmtpRefusal.RELAY: "中継を許可していない宛先",
        SmtpRefusal.SIZE: "メールが大きすぎる",
        SmtpRefusal.RECIPIENTS: "宛先が多すぎる",
        SmtpRefusal.BARE_NEWLINE: "単独の CR・LF（SMTP スマグリング）",
        SmtpRefusal.SMUGGLING: "データ終端に似た並び（SMTP スマグリング）",
        SmtpRefusal.PIPELINING: "最後のドットの後に続けて送られたコマンド",
        SmtpRefusal.LINE_LENGTH: "行またはコマンドが長すぎる",
        SmtpRefusal.SYNTAX: "コマンドまたは引数の誤り",
        SmtpRefusal.TOO_SLOW: "データ転送が遅すぎる",
        SmtpRefusal.CONNECTIONS: "同時接続数の上限",
        SmtpRefusal.CONNECTIONS_PER_CLIENT: "接続元ごとの同時接続数の上限",
        SmtpRefusal.DISK: "ディスクの空き不足",
        SmtpRefusal.STORE: "データベースに接続できない",
        SmtpRefusal.SHUTDOWN: "停止中",
        SmtpRefusal.INTERNAL: "内部エラー",
        SmtpRefusal.VERDICT: "無害化の判定が拒否",
        SmtpRefusal.AUTH_REJECT: "送信元の認証に失敗（DMARC）",
        SmtpRefusal.AUTH_TEMPORARY: "送信元の認証が一時的にできない",
        SmtpRefusal.PROTOCOL: "コマンドの誤りまたは順序の誤り",
        SmtpRefusal.STRESS_TIMEOUT: "高負荷時の時間切れ",
        SmtpRefusal.DEADLINE: "セッションの時間切れ",
        SmtpRefusal.TIMEOUT: "コマンドまたはデータの時間切れ",
    },
    MessageState: {
        MessageState.INCOMING: "受信済み（無害化待ち）",
        MessageState.OUTGOING: "無害化済み（配送待ち）",
        MessageState.QUEUED: "保管済み（未配送）",
        MessageState.ACTIVE: "処理中",
        MessageState.SANITIZED: "無害化済み",
        MessageState.DEFERRED: "配送延期（後で再送）",
        MessageState.HELD: "保留（宛先には通知のみ）",
        MessageState.DELIVERED: "配送済み",
        MessageState.DEAD: "配送断念（送信者に通知）",
        MessageState.AWAITING_PASSWORD: "パスワード入力待ち",
        MessageState.RELEASE_REQUESTED: "例外措置の承認待ち",
        MessageState.APPROVED: "解除済み（送信待ち）",
        MessageState.RELEASED: "解除して送信",
        MessageState.DENIED: "例外措置を却下",
    },
    DeadLetterReason: {
        DeadLetterReason.LIFETIME: "配送期限切れ",
        DeadLetterReason.UNDELIVERABLE: "すべての宛先が恒久的に拒否",
        DeadLetterReason.REJECTED: "無害化の判定が拒否",
        DeadLetterReason.CANCELLED: "送信者が送信を取り消した",
        DeadLetterReason.DENIED: "承認されなかった",
    },
    UnlockResult: {
        UnlockResult.UNLOCKED: "解除しました（無害化して元の宛先へ配送します）",
        UnlockResult.WRONG_PASSWORD: "パスワードが違います",
        UnlockResult.NO_ATTEMPTS_LEFT: "試行回数の上限に達しました",
        UnlockResult.HELD: "解除しましたが、中身が別の理由で保留されました",
        UnlockResult.NOT_FOUND: "その参照番号の保留メールはありません",
        UnlockResult.WRONG_STATE: "このメールはパスワード入力待ちではありません",
        UnlockResult.FAILED: "処理に失敗しました（後でもう一度お試しください）",
        UnlockResult.LOCKED_OUT: "誤ったパスワードが続いたため、しばらく入力できません",
    },
    UserRole: {
        UserRole.RECIPIENT: "受信者",
        UserRole.OPERATOR: "運用担当",
        UserRole.APPROVER: "承認者",
        UserRole.AUDITOR: "監査担当",
        UserRole.ADMIN: "管理者",
    },
    RequestKind: {
        RequestKind.RELEASE: "保留の解除",
        RequestKind.EXCEPTION: "例外措置（原本の添付を配送）",
        RequestKind.OUTBOUND: "外部への送信の承認（上長承認）",
    },
    RequestState: {
        RequestState.PENDING: "承認待ち",
        RequestState.APPROVED: "承認済み（実施待ち）",
        RequestState.DENIED: "却下",
        RequestState.DONE: "実施済み",
        RequestState.FAILED: "実施できず（保留に戻した）",
    },
    AuditEvent: {
        AuditEvent.MESSAGE: "メールの処理結果",
        AuditEvent.RELEASE: "保留の解除",
        AuditEvent.REQUEST: "例外措置の申請",
        AuditEvent.APPROVAL: "例外措置の承認",
        AuditEvent.DENIAL: "例外措置の却下",
        AuditEvent.RELEASE_DONE: "解除の実施",
        AuditEvent.UNLOCK_ATTEMPT: "パスワードの試行",
        AuditEvent.USER: "利用者の変更",
        AuditEvent.LOGIN: "コンソールへのログイン",
        AuditEvent.LOGOUT: "コンソールからのログアウト",
        AuditEvent.VIEW: "原本の閲覧",
        AuditEvent.DOWNLOAD: "原本のダウンロード",
        AuditEvent.STORE: "データベースの移行・バックアップ・複製",
        AuditEvent.NODE: "ノードの起動・時刻の照合",
        AuditEvent.EVIDENCE: "証拠の書き出し",
        AuditEvent.NOTICE: "申請者への結果の通知",
        AuditEvent.DIGEST: "日次ダイジェスト・集計の送信",
    },
    OutboundEvent: {
        OutboundEvent.RECEIVED: "受付",
        OutboundEvent.DELIVERED: "送信",
        OutboundEvent.DEFERRED: "送信延期（再試行）",
        OutboundEvent.HELD: "承認待ちで保留",
        OutboundEvent.REJECTED: "送信拒否",
        OutboundEvent.CANCELLED: "送信者が取り消し",
        OutboundEvent.APPROVED: "承認",
        OutboundEvent.DENIED: "否認",
        OutboundEvent.DEAD: "送信不能",
        OutboundEvent.RATE_LIMITED: "送信数の上限で保留",
    },
}

_EN: Final[Mapping[type[Code], Mapping[str, str]]] = {
    Action: {
        Action.KEPT: "kept",
        Action.CONVERTED: "converted to text",
        Action.SANITIZED: "disarmed and attached",
        Action.REMOVED: "removed",
        Action.HELD: "held",
    },
    Verdict: {
        Verdict.DELIVER: "deliver",
        Verdict.HOLD: "hold",
        Verdict.REJECT: "reject",
    },
    Reason: {
        Reason.TEXT_BODY: "text body",
        Reason.HTML_BODY: "html body",
        Reason.ALTERNATIVE: "alternative",
        Reason.TEXT_CONVERTED: "text converted",
        Reason.ATTACHED_MESSAGE: "attached message",
        Reason.UNPACKED: "unpacked: its files and text were handled one by one",
        Reason.TEXT_EXTRACTED: "only the document's text was kept, as a text file",
        Reason.EMPTY: "empty",
        Reason.POLICY: "policy",
        Reason.EXECUTABLE: "executable",
        Reason.TYPE_MISMATCH: "type mismatch",
        Reason.UNSUPPORTED_TYPE: "unsupported type",
        Reason.UNSUPPORTED_ARCHIVE: "unsupported archive",
        Reason.MESSAGE_PARTIAL: "message partial",
        Reason.EXTERNAL_BODY: "external body",
        Reason.CLEAN: "clean",
        Reason.MACRO: "macro",
        Reason.ACTIVE_CONTENT: "active content",
        Reason.EMBEDDED_OBJECT: "embedded object",
        Reason.EXTERNAL_REFERENCE: "external reference",
        Reason.METADATA: "metadata",
        Reason.ENCRYPTED: "encrypted",
        Reason.ENCRYPTED_ARCHIVE: "encrypted archive",
        Reason.ENCRYPTED_NO_UNLOCK: "encrypted archive that cannot be unlocked here",
        Reason.PATH_TRAVERSAL: "path traversal",
        Reason.MALWARE: "malware",
        Reason.SCANNER_UNAVAILABLE: "scanner unavailable",
        Reason.CRASH: "crash",
        Reason.TIMEOUT: "timeout",
        Reason.ERROR: "error",
        Reason.VERIFY_FAILED: "verify failed",
        Reason.MALFORMED: "malformed",
        Reason.LOSSY_DECODE: "lossy decode",
        Reason.OUTPUT_UTF8: "sent as UTF-8: it has characters ISO-2022-JP cannot hold",
        Reason.LIMIT_SIZE: "limit size",
        Reason.LIMIT_HEADER: "limit header",
        Reason.LIMIT_LINE: "limit line",
        Reason.LIMIT_PARTS: "limit parts",
        Reason.LIMIT_DEPTH: "limit depth",
        Reason.LIMIT_TIME: "limit time",
        Reason.LIMIT_RATIO: "limit ratio",
        Reason.LIMIT_ENTRIES: "limit entries",
        Reason.LIMIT_PIXELS: "limit pixels",
        Reason.DMARC_REJECT: "the sender's domain failed DMARC (its policy: reject)",
        Reason.DMARC_QUARANTINE: "the sender's domain failed DMARC (its policy: quarantine)",
        Reason.DMARC_FAIL: "the sender's domain failed DMARC",
        Reason.AUTH_TEMPERROR: "a DNS failure left the sender unauthenticated",
        Reason.DISPLAY_NAME_ADDRESS: "the sender's display name shows another address",
        Reason.LOOKALIKE_SENDER: "the sender's domain imitates one of ours",
        Reason.NOT_SCANNED: "not scanned",
        Reason.EXCEPTION: "original kept by an approved exception",
        Reason.TEXT_ONLY: "released as text only",
        Reason.PERSONAL_NUMBER: "contains a My Number (individual number)",
        Reason.KEYWORD: "contains a word or pattern not to be sent",
        Reason.FILE_TYPE: "a kind of file whose sending is restricted",
        Reason.RECIPIENT_DOMAIN: "a recipient domain whose sending is restricted",
        Reason.RECIPIENT_COUNT: "too many outside recipients",
        Reason.AUTO_FORWARD: "automatic forwarding to the outside",
        Reason.RATE_LIMIT: "more mail than the sending limit",
        Reason.UNREADABLE: "a file whose content could not be checked",
    },
    FileKind: {
        FileKind.OOXML: "Office document (docx, xlsx, pptx)",
        FileKind.OLE: "legacy Office document (doc, xls, ppt)",
        FileKind.RTF: "rich text (RTF)",
        FileKind.PDF: "PDF",
        FileKind.IMAGE: "image",
        FileKind.SVG: "SVG image",
        FileKind.ZIP: "ZIP archive",
        FileKind.ARCHIVE: "archive (7z, RAR, LZH, tar, gzip...)",
        FileKind.TEXT: "text file",
        FileKind.HTML: "HTML file",
        FileKind.EXECUTABLE: "executable or script",
        FileKind.MESSAGE: "attached mail",
        FileKind.OTHER: "other file",
        FileKind.ODF: "OpenDocument document (odt, ods, odp)",
        FileKind.XLSB: "Excel binary workbook (xlsb)",
        FileKind.TNEF: "Outlook winmail.dat (TNEF)",
        FileKind.MSG: "Outlook message file (msg)",
        FileKind.ICHITARO: "Ichitaro document (jtd, jtt, jtdc)",
    },
    RemovedItem: {
        RemovedItem.VBA: "VBA macros",
        RemovedItem.XLM_MACRO: "Excel 4.0 macros",
        RemovedItem.ACTIVEX: "ActiveX controls",
        RemovedItem.OLE_OBJECT: "embedded objects",
        RemovedItem.EXTERNAL_RELATIONSHIP: "external references",
        RemovedItem.DDE: "DDE fields",
        RemovedItem.JAVASCRIPT: "JavaScript",
        RemovedItem.OPEN_ACTION: "open action",
        RemovedItem.ADDITIONAL_ACTIONS: "automatic actions",
        RemovedItem.LAUNCH: "program launch",
        RemovedItem.SUBMIT_FORM: "form submission",
        RemovedItem.IMPORT_DATA: "data import",
        RemovedItem.REMOTE_GOTO: "links to other documents",
        RemovedItem.RICH_MEDIA: "rich media",
        RemovedItem.EMBEDDED_FILE: "embedded files",
        RemovedItem.FILE_ATTACHMENT: "file attachment annotations",
        RemovedItem.XFA: "XFA forms",
        RemovedItem.URI: "URL links",
        RemovedItem.METADATA: "metadata",
        RemovedItem.TRAILING_DATA: "trailing data",
        RemovedItem.FRAMES: "frames after the first",
        RemovedItem.CONTROL_CHARACTERS: "control characters",
        RemovedItem.CSV_FORMULA: "cells a spreadsheet would run (made text)",
        RemovedItem.EMBEDDED_PACKAGE: "embedded packages",
        RemovedItem.ALT_CHUNK: "imported documents",
        RemovedItem.CUSTOM_UI: "ribbon customisation",
        RemovedItem.WEB_EXTENSION: "Office add-ins",
        RemovedItem.EXTERNAL_LINK: "links to other workbooks",
        RemovedItem.DATA_CONNECTION: "external data connections",
        RemovedItem.HYPERLINK: "external hyperlinks (text kept)",
        RemovedItem.LINKED_FIELD: "fields referring outside",
        RemovedItem.PROGRAM_ACTION: "program actions",
        RemovedItem.UNKNOWN_PART: "unknown parts",
        RemovedItem.ATTACHMENT: "inner attachments",
        RemovedItem.ENTRY: "files inside the archive",
        RemovedItem.REMOTE_TEMPLATE: "remote templates",
        RemovedItem.UNSAFE_LINK: "links of a scheme that is not allowed (javascript:, file:, ...)",
        RemovedItem.COMPUTED_FIELD: "fields whose instruction is computed",
        RemovedItem.FORMULA_FUNCTION: "formulas that fetch or call outside (WEBSERVICE, ...)",
        RemovedItem.SVG_IMAGE: "SVG images (they can carry script)",
        RemovedItem.INLINE_FILE: "files encoded in the text (uuencode, yEnc, ...), now attachments",
        RemovedItem.ENCRYPTION: "password encryption (unlocked, then disarmed)",
        RemovedItem.DOCUMENT_MACRO: "document macros and scripts (Basic, Python, ...)",
        RemovedItem.EVENT_HANDLER: "macros or scripts run on an event (opening, clicking, ...)",
        RemovedItem.FOREIGN_OBJECT: "HTML or other content embedded in an SVG",
    },
    SmtpRefusal: {
        SmtpRefusal.RELAY: "recipient domain not accepted",
        SmtpRefusal.SIZE: "message too large",
        SmtpRefusal.RECIPIENTS: "too many recipients",
        SmtpRefusal.BARE_NEWLINE: "bare CR or LF (SMTP smuggling)",
        SmtpRefusal.SMUGGLING: "end-of-data look-alike (SMTP smuggling)",
        SmtpRefusal.PIPELINING: "commands pipelined after the final dot",
        SmtpRefusal.LINE_LENGTH: "line or command too long",
        SmtpRefusal.SYNTAX: "bad command or argument",
        SmtpRefusal.TOO_SLOW: "data sent too slowly",
        SmtpRefusal.CONNECTIONS: "too many connections",
        SmtpRefusal.CONNECTIONS_PER_CLIENT: "too many connections from one client",
        SmtpRefusal.DISK: "too little free disk space",
        SmtpRefusal.STORE: "the database does not answer",
        SmtpRefusal.SHUTDOWN: "service stopping",
        SmtpRefusal.INTERNAL: "internal error",
        SmtpRefusal.VERDICT: "rejected by the sanitizer's verdict",
        SmtpRefusal.AUTH_REJECT: "sender authentication failed (DMARC)",
        SmtpRefusal.AUTH_TEMPORARY: "sender authentication temporarily impossible",
        SmtpRefusal.PROTOCOL: "bad command or sequence",
        SmtpRefusal.STRESS_TIMEOUT: "timeout under stress",
        SmtpRefusal.DEADLINE: "session deadline",
        SmtpRefusal.TIMEOUT: "command or data timeout",
    },
    MessageState: {
        MessageState.INCOMING: "received, waiting to be sanitized",
        MessageState.OUTGOING: "sanitized, waiting to be delivered",
        MessageState.QUEUED: "stored, not yet delivered",
        MessageState.ACTIVE: "being processed",
        MessageState.SANITIZED: "sanitized",
        MessageState.DEFERRED: "delivery deferred, retried later",
        MessageState.HELD: "held: recipients got a notice only",
        MessageState.DELIVERED: "delivered",
        MessageState.DEAD: "given up (dead letter)",
        MessageState.AWAITING_PASSWORD: "held until the archive's password is given",
        MessageState.RELEASE_REQUESTED: "exception requested, waiting for approval",
        MessageState.APPROVED: "released, waiting to be sent",
        MessageState.RELEASED: "released and sent again",
        MessageState.DENIED: "exception denied",
    },
    DeadLetterReason: {
        DeadLetterReason.LIFETIME: "delivery lifetime exceeded",
        DeadLetterReason.UNDELIVERABLE: "every recipient refused",
        DeadLetterReason.REJECTED: "rejected by the sanitizer",
        DeadLetterReason.CANCELLED: "cancelled by its sender",
        DeadLetterReason.DENIED: "not approved",
    },
    UnlockResult: {
        UnlockResult.UNLOCKED: "unlocked: sanitized and queued for the original recipients",
        UnlockResult.WRONG_PASSWORD: "wrong password",
        UnlockResult.NO_ATTEMPTS_LEFT: "no attempts left",
        UnlockResult.HELD: "unlocked, but what was inside holds the message for another reason",
        UnlockResult.NOT_FOUND: "no held message with that reference",
        UnlockResult.WRONG_STATE: "the message is not awaiting a password",
        UnlockResult.FAILED: "the sanitizer failed; try again later",
        UnlockResult.LOCKED_OUT: "too many wrong passwords: wait before trying again",
    },
    UserRole: {
        UserRole.RECIPIENT: "recipient",
        UserRole.OPERATOR: "operator",
        UserRole.APPROVER: "approver",
        UserRole.AUDITOR: "auditor",
        UserRole.ADMIN: "administrator",
    },
    RequestKind: {
        RequestKind.RELEASE: "release of a held message",
        RequestKind.EXCEPTION: "exception: original parts delivered",
        RequestKind.OUTBOUND: "approval of an outbound mail",
    },
    RequestState: {
        RequestState.PENDING: "waiting for approval",
        RequestState.APPROVED: "approved, waiting to be carried out",
        RequestState.DENIED: "denied",
        RequestState.DONE: "carried out",
        RequestState.FAILED: "could not be carried out (held again)",
    },
    AuditEvent: {
        AuditEvent.MESSAGE: "message handled",
        AuditEvent.RELEASE: "held message released",
        AuditEvent.REQUEST: "exception requested",
        AuditEvent.APPROVAL: "exception approved",
        AuditEvent.DENIAL: "exception denied",
        AuditEvent.RELEASE_DONE: "release carried out",
        AuditEvent.UNLOCK_ATTEMPT: "password tried",
        AuditEvent.USER: "user changed",
        AuditEvent.LOGIN: "console login",
        AuditEvent.LOGOUT: "console logout",
        AuditEvent.VIEW: "original viewed",
        AuditEvent.DOWNLOAD: "original downloaded",
        AuditEvent.STORE: "store migrated, backed up or copied",
        AuditEvent.NODE: "node started or its clock checked",
        AuditEvent.EVIDENCE: "evidence exported",
        AuditEvent.NOTICE: "requester told of the decision",
        AuditEvent.DIGEST: "daily digests and summary sent",
    },
    OutboundEvent: {
        OutboundEvent.RECEIVED: "received",
        OutboundEvent.DELIVERED: "sent to the relay",
        OutboundEvent.DEFERRED: "deferred, retried later",
        OutboundEvent.HELD: "held for approval",
        OutboundEvent.REJECTED: "refused",
        OutboundEvent.CANCELLED: "cancelled by its sender",
        OutboundEvent.APPROVED: "approved",
        OutboundEvent.DENIED: "denied",
        OutboundEvent.DEAD: "could not be sent",
        OutboundEvent.RATE_LIMITED: "held: sending limit",
    },
}
