"""A seeded generator of realistic inbound mail for a Japanese municipality (benchmark input).

Real mail cannot be shipped, so the benchmarks build it: the same seed gives the same bytes.
Every message is CRLF-terminated, 7-bit or 8-bit clean with lines under 1,000 bytes (what an
SMTP client may send), and begins with its ``Message-ID`` header (the relay load generator
swaps that line for a unique one per send).

Message classes (:data:`CLASSES`), and the default mix (:data:`DEFAULT_MIX`, weights in %):

=================  ==================================================================  ====
class              what                                                                mix
=================  ==================================================================  ====
``plain_jis``      Japanese text/plain in ISO-2022-JP (CP932 characters ①㈱～ in       20
                   JIS, as Outlook sends them), 1-6 KB
``plain_utf8``     Japanese text/plain, UTF-8, base64, 1-6 KB                          15
``html_30k``       multipart/alternative UTF-8 text + HTML, about 30 KB (the goal)     15
``newsletter``     HTML newsletter, multipart/alternative, 20-200 KB (base64 or QP)    10
``reply``          ISO-2022-JP reply with quoted history (``> ``), In-Reply-To         15
``att_docx``       text + .docx (Japanese paragraphs and a JPEG), 40-200 KB             5
``att_docm``       text + .docm with a (fake) ``vbaProject.bin``                        2
``att_xlsx``       text + .xlsx (a sheet of numbers and Japanese strings)               5
``att_pdf``        text + PDF (pikepdf, 3-12 pages, a JPEG), 60-300 KB                   6
``att_pdf_js``     text + PDF with an ``/OpenAction`` JavaScript                         1
``att_image``      text + JPEG photo or PNG screenshot (Pillow)                          4
``att_zip``        text + .zip (CSV in CP932, a text file, a small PDF)                  2
=================  ==================================================================  ====

``python -m benchmarks.generate --count 50 --out DIR`` writes ``.eml`` files to look at.
"""

from __future__ import annotations

import argparse
import io
import random
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

DEFAULT_SEED = 20261122
DEFAULT_MIX: dict[str, int] = {
    "plain_jis": 20,
    "plain_utf8": 15,
    "html_30k": 15,
    "newsletter": 10,
    "reply": 15,
    "att_docx": 5,
    "att_docm": 2,
    "att_xlsx": 5,
    "att_pdf": 6,
    "att_pdf_js": 1,
    "att_image": 4,
    "att_zip": 2,
}

# ---- text -----------------------------------------------------------------------------------

_SUBJECTS = [
    "【ご案内】令和8年度 住民税の申告受付について",
    "会議資料の送付（第3回 地域防災計画検討会）",
    "【至急】避難所開設訓練の日程調整のお願い",
    "入札公告に関するお問い合わせ",
    "広報誌 12月号 原稿のご確認",
    "ふるさと納税 返礼品の発送状況について",
    "【事務連絡】職員研修（情報セキュリティ）の受講について",
    "道路占用許可申請書の提出について",
    "保育所入所申込みに関する照会",
    "ご依頼の統計データ（人口動態）送付の件",
]
_OPENERS = [
    "いつも大変お世話になっております。",
    "平素より本市行政にご理解とご協力を賜り、誠にありがとうございます。",
    "標記の件につきまして、下記のとおりご連絡いたします。",
    "先日はお忙しいところご対応いただき、ありがとうございました。",
]
_SENTENCES = [
    "申請書の提出期限は令和8年1月15日（木）までとなっております。",
    "添付の資料をご確認のうえ、内容に誤りがないかご確認ください。",
    "ご不明な点がございましたら、担当までお問い合わせください。",
    "会場は市役所本庁舎 5階 第2会議室を予定しております。",
    "当日は①受付、②説明、③質疑応答の順に進行いたします。",
    "㈱サンプル建設様より見積書を受領しましたので、転送いたします。",
    "受付時間は午前9時～午後5時（土日祝日を除く）です。",
    "なお、本件は個人情報を含むため、取り扱いには十分ご注意ください。",
    "前年度の実績は別表のとおりで、前年比で約12％の増加となりました。",
    "防災行政無線の定期点検に伴い、一時的に放送が停止いたします。",
    "お手数をおかけしますが、ご回答を12月5日までにいただけますと幸いです。",
    "詳細につきましては、市ホームページの「お知らせ」欄をご覧ください。",
    "ⅠからⅢまでの各項目について、所管課ごとに取りまとめをお願いします。",
    "本メールは送信専用アドレスから配信しております。",
]
_CLOSERS = ["よろしくお願いいたします。", "以上、よろしくお願い申し上げます。"]
_NAMES = ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健二", "渡辺 由美"]
_DEPTS = ["総務課", "市民課", "防災危機管理課", "財政課", "子育て支援課", "建設課"]
_SENDERS = [
    "info@pref.example.jp",
    "kikaku@city.example.lg.jp",
    "sales@sample-kensetsu.co.jp",
    "newsletter@news.example.com",
    "taro.yamada@example.ne.jp",
]
_RECIPIENT = "staff@city.example.lg.jp"
_BASE_DATE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _paragraphs(rng: random.Random, chars: int) -> list[str]:
    """Japanese paragraphs of about ``chars`` characters in total."""
    out: list[str] = []
    total = 0
    while total < chars:
        para = "".join(rng.choice(_SENTENCES) for _ in range(rng.randint(2, 4)))
        out.append(para)
        total += len(para)
    return out


def _wrap(text: str, width: int = 36) -> list[str]:
    """Hard-wrap Japanese text the way mailers do (by characters)."""
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def _letter(rng: random.Random, chars: int) -> str:
    name, dept = rng.choice(_NAMES), rng.choice(_DEPTS)
    lines = [f"{rng.choice(_DEPTS)} ご担当者様", "", rng.choice(_OPENERS), ""]
    for para in _paragraphs(rng, chars):
        lines.extend(_wrap(para))
        lines.append("")
    lines += [rng.choice(_CLOSERS), "", "-" * 30, f"○○市 {dept} {name}", "TEL 0120-000-000", ""]
    return "\n".join(lines)


# ---- ISO-2022-JP with CP932 extensions (as Windows mailers send it) -------------------------


def _sjis_pair_to_jis(c1: int, c2: int) -> bytes:
    if c1 >= 0xE0:
        c1 -= 0x40
    c1 -= 0x81
    if c2 >= 0x80:
        c2 -= 1
    if c2 >= 0x9E:
        return bytes((c1 * 2 + 0x22, c2 - 0x9E + 0x21))
    return bytes((c1 * 2 + 0x21, c2 - 0x40 + 0x21))


def encode_jis(text: str) -> bytes:
    """ISO-2022-JP bytes of ``text`` with CP932-only characters (NEC row 13) in JIS form."""
    out = bytearray()
    for line in text.split("\n"):
        raw = line.encode("cp932")
        ascii_mode = True
        i = 0
        while i < len(raw):
            b = raw[i]
            if b < 0x80:
                if not ascii_mode:
                    out += b"\x1b(B"
                    ascii_mode = True
                out.append(b)
                i += 1
            else:
                if ascii_mode:
                    out += b"\x1b$B"
                    ascii_mode = False
                out += _sjis_pair_to_jis(b, raw[i + 1])
                i += 2
        if not ascii_mode:
            out += b"\x1b(B"
        out += b"\r\n"
    return bytes(out[:-2])


def _jis_header(text: str) -> str:
    """An RFC 2047 B encoded-word in ISO-2022-JP (one word; short texts only)."""
    import base64

    return "=?ISO-2022-JP?B?" + base64.b64encode(encode_jis(text)).decode("ascii") + "?="


# ---- message assembly -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One generated message."""

    cls: str
    raw: bytes


def _headers(rng: random.Random, cls: str, index: int, subject: str, jis: bool) -> list[str]:
    date = _BASE_DATE + timedelta(seconds=rng.randint(0, 86400 * 3))
    sender = rng.choice(_SENDERS)
    name = rng.choice(_NAMES)
    disp = _jis_header(name) if jis else name
    subj = _jis_header(subject) if jis else subject
    return [
        f"Message-ID: <{cls}.{index}.{rng.getrandbits(32):08x}@gen.example.jp>",
        f"From: {disp} <{sender}>",
        f"To: {_RECIPIENT}",
        f"Subject: {subj}",
        f"Date: {format_datetime(date)}",
        "MIME-Version: 1.0",
    ]


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _jis_text_message(head: list[str], text: str) -> bytes:
    head = [
        *head,
        'Content-Type: text/plain; charset="ISO-2022-JP"',
        "Content-Transfer-Encoding: 7bit",
    ]
    return "\r\n".join(head).encode("ascii") + b"\r\n\r\n" + encode_jis(text) + b"\r\n"


def _email(head: list[str]) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    for line in head:
        name, _, value = line.partition(": ")
        if name != "MIME-Version":
            msg[name] = value
    return msg


def _as_bytes(msg: EmailMessage) -> bytes:
    raw = _crlf(msg.as_bytes(policy=SMTP))
    # Message-ID first, as promised in the module docstring.
    lines = raw.split(b"\r\n")
    mid = next(i for i, line in enumerate(lines) if line.lower().startswith(b"message-id:"))
    first = lines.pop(mid)
    return b"\r\n".join([first, *lines])


def plain_jis(rng: random.Random, index: int) -> bytes:
    subject = rng.choice(_SUBJECTS)
    head = _headers(rng, "plain_jis", index, subject, jis=True)
    return _jis_text_message(head, _letter(rng, rng.randint(400, 2500)))


def plain_utf8(rng: random.Random, index: int) -> bytes:
    msg = _email(_headers(rng, "plain_utf8", index, rng.choice(_SUBJECTS), jis=False))
    msg.set_content(_letter(rng, rng.randint(400, 2500)), cte="base64")
    return _as_bytes(msg)


def _html_page(rng: random.Random, target_bytes: int) -> tuple[str, str]:
    """An HTML newsletter of about ``target_bytes`` UTF-8 bytes and its plain-text version."""
    parts = [
        "<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'>",
        "<title>市政だより</title><style>body{font-family:sans-serif}"
        ".box{border:1px solid #ccc;padding:8px}td{padding:4px}</style></head>",
        "<body><table width='600' align='center' cellpadding='0' cellspacing='0'>",
        "<tr><td><img src='https://news.example.com/logo.png' width='600' alt='市政だより'>",
        "</td></tr>",
    ]
    text = ["市政だより", ""]
    size = sum(len(p.encode()) for p in parts)
    n = 0
    while size < target_bytes:
        n += 1
        title = rng.choice(_SUBJECTS)
        paras = _paragraphs(rng, rng.randint(150, 500))
        block = [f"<tr><td class='box'><h2 style='color:#036'>{n}. {title}</h2>"]
        for para in paras:
            block.append(f"<p style='margin:0 0 1em 0;line-height:1.6'>{para}</p>")
        link = f"https://www.city.example.lg.jp/news/{rng.randint(1000, 9999)}.html"
        block.append(f"<p><a href='{link}' target='_blank'>詳しくはこちら</a></p>")
        if rng.random() < 0.4:
            block.append("<table border='1'><tr><th>項目</th><th>件数</th><th>前年比</th></tr>")
            for _ in range(rng.randint(3, 8)):
                row = f"<tr><td>{rng.choice(_DEPTS)}</td><td>{rng.randint(1, 999)}</td>"
                block.append(row + f"<td>{rng.randint(80, 130)}％</td></tr>")
            block.append("</table>")
        block.append("</td></tr>")
        text += [f"{n}. {title}", *paras, f"詳しくはこちら: {link}", ""]
        chunk = "\n".join(block)
        parts.append(chunk)
        size += len(chunk.encode())
    parts.append("<tr><td style='font-size:small'>配信停止は<a href='https://news.example.com/u'>")
    parts.append("こちら</a></td></tr></table></body></html>")
    return "\n".join(parts), "\n".join(text)


def _alternative(
    rng: random.Random, cls: str, index: int, html_bytes: int, cte: str
) -> EmailMessage:
    msg = _email(_headers(rng, cls, index, rng.choice(_SUBJECTS), jis=False))
    html, text = _html_page(rng, html_bytes)
    text_lines: list[str] = []
    for line in text.split("\n"):
        text_lines.extend(_wrap(line, 60))
    msg.set_content("\n".join(text_lines), cte=cte)
    msg.add_alternative(html, subtype="html", cte=cte)
    return msg


def html_30k(rng: random.Random, index: int) -> bytes:
    # ~30 KB on the wire: text alternative + HTML, base64 (what Outlook and Gmail do often).
    return _as_bytes(_alternative(rng, "html_30k", index, 11_500, "base64"))


def newsletter(rng: random.Random, index: int) -> bytes:
    size = int(20_000 * (10 ** rng.random()))  # log-uniform, 20-200 KB on the wire
    # Mostly base64; some quoted-printable (Japanese in QP is about 3x its UTF-8 size).
    qp = rng.random() < 0.3
    html_bytes = int(size / (4.2 if qp else 2.3))
    cte = "quoted-printable" if qp else "base64"
    return _as_bytes(_alternative(rng, "newsletter", index, html_bytes, cte))


def reply(rng: random.Random, index: int) -> bytes:
    subject = "Re: " + rng.choice(_SUBJECTS)
    head = _headers(rng, "reply", index, subject, jis=True)
    ref = f"<orig.{rng.getrandbits(40):010x}@city.example.lg.jp>"
    head += [f"In-Reply-To: {ref}", f"References: {ref}"]
    body = [_letter(rng, rng.randint(150, 600))]
    for depth in range(1, rng.randint(2, 4)):
        date = format_datetime(_BASE_DATE - timedelta(days=depth))
        quoted = _letter(rng, rng.randint(300, 1200)).split("\n")
        body.append(f"{'> ' * (depth - 1)}{date} {rng.choice(_NAMES)} wrote:")
        body.extend(("> " * depth) + line for line in quoted)
    return _jis_text_message(head, "\n".join(body))


# ---- attachments ----------------------------------------------------------------------------


def _image(rng: random.Random, width: int, height: int, fmt: str) -> bytes:
    from PIL import Image

    tile = Image.frombytes("RGB", (32, 24), rng.randbytes(32 * 24 * 3))
    img = tile.resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=85)
    else:
        img = img.quantize(64)
        img.save(buf, "PNG", optimize=False)
    return buf.getvalue()


_CT_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_NS_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
_RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 20, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _rels(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{g}"/>' for i, t, g in items)
    return (_CT_XML + f'<Relationships xmlns="{_NS_PKG_REL}">{body}</Relationships>').encode()


def _content_types(overrides: dict[str, str], defaults: dict[str, str]) -> bytes:
    d = "".join(f'<Default Extension="{e}" ContentType="{c}"/>' for e, c in defaults.items())
    o = "".join(f'<Override PartName="{p}" ContentType="{c}"/>' for p, c in overrides.items())
    return (_CT_XML + f'<Types xmlns="{_NS_CT}">{d}{o}</Types>').encode()


def make_docx(rng: random.Random, macro: bool = False) -> bytes:
    """A Word document (Japanese paragraphs, one JPEG); ``macro`` adds a fake VBA project."""
    paras = _paragraphs(rng, rng.randint(2_000, 12_000))
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paras)
    doc = (
        f'{_CT_XML}<w:document xmlns:w="{_W}" xmlns:r="{_RT}"><w:body>{body}</w:body></w:document>'
    )
    main = (
        "application/vnd.ms-word.document.macroEnabled.main+xml"
        if macro
        else "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    )
    defaults = {
        "rels": "application/vnd.openxmlformats-package.relationships+xml",
        "xml": "application/xml",
        "jpeg": "image/jpeg",
    }
    overrides = {"/word/document.xml": main}
    doc_rels = [("rId1", f"{_RT}/image", "media/image1.jpeg")]
    entries = {
        "word/document.xml": doc.encode(),
        "word/media/image1.jpeg": _image(rng, rng.choice([320, 640, 800]), 480, "JPEG"),
    }
    if macro:
        overrides["/word/vbaProject.bin"] = "application/vnd.ms-office.vbaProject"
        doc_rels.append(
            (
                "rId2",
                "http://schemas.microsoft.com/office/2006/relationships/vbaProject",
                "vbaProject.bin",
            )
        )
        # Not a real compound file: the OLE magic and a VBA-ish payload. The sanitizer drops the
        # part by its relationship type and content type, whatever its bytes.
        entries["word/vbaProject.bin"] = (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + b"\x00" * 24
            + b'Attribute VB_Name = "ThisDocument"\r\n'
            + b'Sub AutoOpen()\r\n Shell "calc"\r\nEnd Sub\r\n'
            + rng.randbytes(4096)
        )
    entries["word/_rels/document.xml.rels"] = _rels(doc_rels)
    entries["_rels/.rels"] = _rels([("rId1", f"{_RT}/officeDocument", "word/document.xml")])
    entries = {"[Content_Types].xml": _content_types(overrides, defaults), **entries}
    return _zip(entries)


def make_xlsx(rng: random.Random) -> bytes:
    """A workbook with one sheet: 200-1,500 rows of numbers and Japanese labels."""
    rows = []
    for r in range(1, rng.randint(200, 1500) + 1):
        label = rng.choice(_DEPTS)
        cells = f'<c r="A{r}" t="inlineStr"><is><t>{label}</t></is></c>'
        cells += "".join(f'<c r="{col}{r}"><v>{rng.randint(0, 99999)}</v></c>' for col in "BCDEF")
        cells += f'<c r="G{r}"><f>SUM(B{r}:F{r})</f></c>'
        rows.append(f'<row r="{r}">{cells}</row>')
    sheet = f'{_CT_XML}<worksheet xmlns="{_S}"><sheetData>{"".join(rows)}</sheetData></worksheet>'
    book = (
        f'{_CT_XML}<workbook xmlns="{_S}" xmlns:r="{_RT}"><sheets>'
        '<sheet name="集計" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = {
        "/xl/workbook.xml": f"{ct}.sheet.main+xml",
        "/xl/worksheets/sheet1.xml": f"{ct}.worksheet+xml",
    }
    defaults = {
        "rels": "application/vnd.openxmlformats-package.relationships+xml",
        "xml": "application/xml",
    }
    return _zip(
        {
            "[Content_Types].xml": _content_types(overrides, defaults),
            "_rels/.rels": _rels([("rId1", f"{_RT}/officeDocument", "xl/workbook.xml")]),
            "xl/workbook.xml": book.encode(),
            "xl/_rels/workbook.xml.rels": _rels(
                [("rId1", f"{_RT}/worksheet", "worksheets/sheet1.xml")]
            ),
            "xl/worksheets/sheet1.xml": sheet.encode(),
        }
    )


_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink"'
)


def make_odt(rng: random.Random, macro: bool = False) -> bytes:
    """A text document of 20-60 Japanese paragraphs and one picture; ``macro`` adds a Basic
    library bound to the document's open event."""
    paragraphs = "".join(f"<text:p>{p}</text:p>" for p in _paragraphs(rng, rng.randint(2000, 8000)))
    picture = '<text:p><draw:frame><draw:image xlink:href="Pictures/p.png"/></draw:frame></text:p>'
    head = ""
    parts = {"Pictures/p.png": _image(rng, 320, 240, "PNG")}
    if macro:
        head = (
            "<office:scripts><office:event-listeners><script:event-listener script:event-name="
            '"dom:load" xlink:href="vnd.sun.star.script:Standard.M.Main?language=Basic&amp;'
            'location=document"/></office:event-listeners></office:scripts>'
        )
        parts["Basic/Standard/M.xml"] = b"<script:module>Sub Main\nEnd Sub</script:module>"
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS}>{head}'
        f"<office:body><office:text>{paragraphs}{picture}</office:text></office:body>"
        "</office:document-content>"
    )
    return _odf("text", content.encode(), parts)


def _odf(flavor: str, content: bytes, parts: dict[str, bytes]) -> bytes:
    media_type = f"application/vnd.oasis.opendocument.{flavor}"
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="'
        f'{"image/png" if name.endswith(".png") else "text/xml"}"/>'
        for name in ["content.xml", *parts]
    )
    manifest = (
        '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
        'opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" '
        f'manifest:media-type="{media_type}"/>{entries}</manifest:manifest>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), media_type)
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def make_ods(rng: random.Random) -> bytes:
    """A spreadsheet of 200-1,500 rows of numbers, Japanese labels and a SUM formula."""
    rows = []
    for r in range(1, rng.randint(200, 1500) + 1):
        cells = f"<table:table-cell><text:p>{rng.choice(_DEPTS)}</text:p></table:table-cell>"
        for _ in range(5):
            value = rng.randint(0, 99999)
            cells += (
                f'<table:table-cell office:value-type="float" office:value="{value}">'
                f"<text:p>{value}</text:p></table:table-cell>"
            )
        cells += f'<table:table-cell table:formula="of:=SUM([.B{r}:.F{r}])"/>'
        rows.append(f"<table:table-row>{cells}</table:table-row>")
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS}>'
        f'<office:body><office:spreadsheet><table:table table:name="集計">{"".join(rows)}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    return _odf("spreadsheet", content.encode(), {})


def _biff12(kind: int, payload: bytes = b"") -> bytes:
    size, encoded = len(payload), bytearray()
    while True:
        encoded.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    head = bytes([kind]) if kind < 0x80 else bytes([(kind & 0x7F) | 0x80, kind >> 7])
    return head + bytes(encoded) + payload


def make_xlsb(rng: random.Random, macro: bool = False) -> bytes:
    """A binary workbook: one sheet of 200-1,500 rows of number and text cells (BIFF12
    records); ``macro`` adds a vbaProject part."""
    records = [_biff12(129)]
    for r in range(rng.randint(200, 1500)):
        records.append(_biff12(0, r.to_bytes(4, "little") + bytes(4)))  # BrtRowHdr (short)
        label = rng.choice(_DEPTS).encode("utf-16-le")
        records.append(_biff12(6, bytes(8) + (len(label) // 2).to_bytes(4, "little") + label))
        for col in range(1, 6):
            value = float(rng.randint(0, 99999))
            records.append(
                _biff12(5, col.to_bytes(4, "little") + bytes(4) + struct.pack("<d", value))
            )
    records.append(_biff12(130))
    main = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
    overrides = {
        "/xl/workbook.bin": main,
        "/xl/worksheets/sheet1.bin": "application/vnd.ms-excel.worksheet",
    }
    book_rels = [("rId1", f"{_RT}/worksheet", "worksheets/sheet1.bin")]
    parts = {
        "xl/workbook.bin": _biff12(131) + _biff12(132),
        "xl/worksheets/sheet1.bin": b"".join(records),
    }
    if macro:
        overrides["/xl/vbaProject.bin"] = "application/vnd.ms-office.vbaProject"
        book_rels.append(("rId2", f"{_RT}/vbaProject", "vbaProject.bin"))
        parts["xl/vbaProject.bin"] = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)
    defaults = {"rels": "application/vnd.openxmlformats-package.relationships+xml"}
    return _zip(
        {
            "[Content_Types].xml": _content_types(overrides, defaults),
            "_rels/.rels": _rels([("rId1", f"{_RT}/officeDocument", "xl/workbook.bin")]),
            "xl/_rels/workbook.bin.rels": _rels(book_rels),
            **parts,
        }
    )


def make_svg(rng: random.Random, script: bool = False) -> bytes:
    """A drawing of 100-400 shapes and Japanese labels; ``script`` adds a script and handlers."""
    shapes = []
    for i in range(rng.randint(100, 400)):
        x, y = rng.randint(0, 800), rng.randint(0, 600)
        shapes.append(f'<rect x="{x}" y="{y}" width="20" height="10" fill="#{i % 999:03d}"/>')
        shapes.append(f'<text x="{x}" y="{y}">{rng.choice(_DEPTS)}</text>')
    extra = "<script>alert(1)</script>" if script else ""
    handler = ' onload="alert(1)"' if script else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg"'
        f' width="800" height="600"{handler}>{extra}{"".join(shapes)}</svg>'
    ).encode()


def make_pdf(rng: random.Random, javascript: bool = False) -> bytes:
    """A PDF of 3-12 text pages and one JPEG; ``javascript`` adds an OpenAction script."""
    import pikepdf

    pdf = pikepdf.new()
    jpeg = _image(rng, 640, 480, "JPEG")
    image = pikepdf.Stream(pdf, jpeg)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height = 640, 480
    image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceRGB, 8
    image.Filter = pikepdf.Name.DCTDecode
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    words = ["budget", "report", "municipal", "office", "plan", "meeting", "item", "total"]
    for page_no in range(rng.randint(3, 12)):
        ops = ["BT /F1 10 Tf 50 780 Td 12 TL"]
        for _ in range(60):
            line = " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))
            ops.append(f"({line}) '")
        ops.append("ET")
        if page_no == 0:
            ops.append("q 320 0 0 240 50 300 cm /Im1 Do Q")
        content = pikepdf.Stream(pdf, "\n".join(ops).encode())
        resources = pikepdf.Dictionary(
            Font=pikepdf.Dictionary(F1=font), XObject=pikepdf.Dictionary(Im1=image)
        )
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842], Contents=content, Resources=resources
        )
        pdf.pages.append(pikepdf.Page(page))
    if javascript:
        pdf.Root.OpenAction = pdf.make_indirect(
            pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x');"))
        )
    buf = io.BytesIO()
    pdf.save(buf, compress_streams=True, deterministic_id=True)
    return buf.getvalue()


def make_zip(rng: random.Random) -> bytes:
    csv_rows = ["課名,件数,金額"] + [
        f"{rng.choice(_DEPTS)},{rng.randint(1, 500)},{rng.randint(1000, 9_999_999)}"
        for _ in range(300)
    ]
    return _zip(
        {
            "集計/一覧.csv": "\r\n".join(csv_rows).encode("cp932"),
            "集計/説明.txt": _letter(rng, 800).encode("utf-8"),
            "集計/資料.pdf": make_pdf(rng),
        }
    )


def make_archive(rng: random.Random, fmt: str) -> bytes:
    """The members of :func:`make_zip` in another archive format: ``7z``, ``rar`` (RAR 4,
    stored), ``lzh`` (``-lh0-``, Shift_JIS names) or ``tar.gz``; the writers are the tests'."""
    from tests.sanitizers.cdr import archive_fixtures as build

    with zipfile.ZipFile(io.BytesIO(make_zip(rng))) as source:
        members = [(name, source.read(name)) for name in source.namelist()]
    if fmt == "7z":
        return build.sevenzip(members)
    if fmt == "tar.gz":
        return build.tar(list(members), "gz")
    raw = [(name.replace("/", "\\").encode("cp932"), data) for name, data in members]
    return build.rar4(raw) if fmt == "rar" else build.lzh(raw)


def _with_attachment(
    rng: random.Random, cls: str, index: int, data: bytes, ctype: str, filename: str
) -> bytes:
    msg = _email(_headers(rng, cls, index, rng.choice(_SUBJECTS), jis=False))
    msg.set_content(_letter(rng, rng.randint(200, 800)), cte="base64")
    maintype, subtype = ctype.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return _as_bytes(msg)


_OOXML = "application/vnd.openxmlformats-officedocument"


def att_docx(rng: random.Random, index: int) -> bytes:
    data = make_docx(rng)
    return _with_attachment(
        rng, "att_docx", index, data, f"{_OOXML}.wordprocessingml.document", "会議資料.docx"
    )


def att_docm(rng: random.Random, index: int) -> bytes:
    data = make_docx(rng, macro=True)
    ctype = "application/vnd.ms-word.document.macroEnabled.12"
    return _with_attachment(rng, "att_docm", index, data, ctype, "請求書.docm")


def att_xlsx(rng: random.Random, index: int) -> bytes:
    data = make_xlsx(rng)
    return _with_attachment(
        rng, "att_xlsx", index, data, f"{_OOXML}.spreadsheetml.sheet", "集計表.xlsx"
    )


def att_pdf(rng: random.Random, index: int) -> bytes:
    return _with_attachment(rng, "att_pdf", index, make_pdf(rng), "application/pdf", "お知らせ.pdf")


def att_pdf_js(rng: random.Random, index: int) -> bytes:
    data = make_pdf(rng, javascript=True)
    return _with_attachment(rng, "att_pdf_js", index, data, "application/pdf", "invoice.pdf")


def att_image(rng: random.Random, index: int) -> bytes:
    if rng.random() < 0.5:
        data = _image(rng, rng.choice([1024, 1600]), 768, "JPEG")
        return _with_attachment(rng, "att_image", index, data, "image/jpeg", "現場写真.jpg")
    data = _image(rng, 800, 600, "PNG")
    return _with_attachment(rng, "att_image", index, data, "image/png", "screenshot.png")


def att_zip(rng: random.Random, index: int) -> bytes:
    return _with_attachment(rng, "att_zip", index, make_zip(rng), "application/zip", "資料一式.zip")


CLASSES: dict[str, Callable[[random.Random, int], bytes]] = {
    "plain_jis": plain_jis,
    "plain_utf8": plain_utf8,
    "html_30k": html_30k,
    "newsletter": newsletter,
    "reply": reply,
    "att_docx": att_docx,
    "att_docm": att_docm,
    "att_xlsx": att_xlsx,
    "att_pdf": att_pdf,
    "att_pdf_js": att_pdf_js,
    "att_image": att_image,
    "att_zip": att_zip,
}


def generate_class(cls: str, count: int, seed: int = DEFAULT_SEED) -> list[Sample]:
    """``count`` messages of one class; the same seed gives the same bytes."""
    rng = random.Random(f"{seed}:{cls}")
    return [Sample(cls, CLASSES[cls](rng, i)) for i in range(count)]


def generate_mix(
    count: int, seed: int = DEFAULT_SEED, mix: dict[str, int] | None = None
) -> list[Sample]:
    """``count`` messages drawn from ``mix`` (class -> weight), in a seeded order."""
    mix = mix or DEFAULT_MIX
    rng = random.Random(f"{seed}:mix")
    classes = rng.choices(list(mix), weights=list(mix.values()), k=count)
    counters = dict.fromkeys(mix, 0)
    out = []
    for cls in classes:
        crng = random.Random(f"{seed}:{cls}:{counters[cls]}")
        out.append(Sample(cls, CLASSES[cls](crng, counters[cls])))
        counters[cls] += 1
    return out


def big_message(megabytes: float, seed: int = DEFAULT_SEED) -> bytes:
    """One message of about ``megabytes`` MB on the wire: short text + one binary attachment."""
    rng = random.Random(f"{seed}:big")
    payload = rng.randbytes(int(megabytes * 1_000_000 * 3 / 4 * 76 / 78))
    return _with_attachment(rng, "big", 0, payload, "application/octet-stream", "backup.bin")


def describe(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Per class: count, mean and max size in KB (printed with every result)."""
    out: dict[str, dict[str, float]] = {}
    for s in samples:
        d = out.setdefault(s.cls, {"count": 0, "kb_total": 0.0, "kb_max": 0.0})
        d["count"] += 1
        d["kb_total"] += len(s.raw) / 1000
        d["kb_max"] = max(d["kb_max"], len(s.raw) / 1000)
    for d in out.values():
        d["kb_mean"] = round(d.pop("kb_total") / d["count"], 1)
        d["kb_max"] = round(d["kb_max"], 1)
    return out


def iter_corpus(path: Path) -> Iterator[bytes]:
    """Messages of a directory of ``.eml`` files (recursive), an mbox or a Maildir."""
    import mailbox

    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        maildir = mailbox.Maildir(path, create=False)
        for key in maildir.iterkeys():
            yield maildir.get_bytes(key)
    elif path.is_dir():
        for file in sorted(path.rglob("*.eml")):
            yield file.read_bytes()
    else:
        box = mailbox.mbox(path, create=False)
        for key in box.iterkeys():
            yield box.get_bytes(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=len(DEFAULT_MIX) * 2)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, required=True, help="directory for .eml files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    samples = generate_mix(args.count, args.seed)
    for i, s in enumerate(samples):
        (args.out / f"{i:05d}-{s.cls}.eml").write_bytes(s.raw)
    for cls, d in sorted(describe(samples).items()):
        print(f"{cls:12s} n={d['count']:4d} mean={d['kb_mean']:8.1f} KB max={d['kb_max']:8.1f} KB")


if __name__ == "__main__":
    main()
