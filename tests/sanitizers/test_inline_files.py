"""Files embedded in body text (issue 12, class 9): uuencode, begin-base64, yEnc and BinHex
blocks are cut out of the text and treated as attachments; malformed ones are removed and
reported. Encoders are written here, so every shape is built in code."""

from __future__ import annotations

import base64
import binascii
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sanitizers.charsets import encode_iso2022jp
from sanitizers.errors import LimitExceeded
from sanitizers.inline_files import cut_yenc_blocks, extract_inline_files
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.vocabulary import Action, Reason, RemovedItem, label
from tests.mailfactory import body_text, leaf, mail, parse

LIMITS = {"max_files": 20, "max_bytes": 1 << 20}
BEFORE = "お世話になっております。ファイルを送ります。"
AFTER = "よろしくお願いいたします。"


# --- encoders (the test's own) ---------------------------------------------------------------


def uuencode(name: str, data: bytes) -> str:
    lines = [
        binascii.b2a_uu(data[i : i + 45]).decode().rstrip("\n") for i in range(0, len(data), 45)
    ]
    return "\n".join([f"begin 644 {name}", *lines, "`", "end"])


def base64_block(name: str, data: bytes) -> str:
    encoded = base64.encodebytes(data).decode().rstrip("\n")
    return "\n".join(
        [f"begin-base64 644 {name}", *encoded.split("\n")[: bool(data) * 99999], "===="]
    )


def yenc(name: str, data: bytes, *, crc: int | None = None) -> str:
    out = bytearray()
    for byte in data:
        value = (byte + 42) & 0xFF
        if value in (0, 10, 13, 61):
            out += bytes([61, (value + 64) & 0xFF])
        else:
            out.append(value)
    text = out.decode("latin-1")
    lines = [text[i : i + 128] for i in range(0, len(text), 128)]
    # (an escape split across lines is avoided by re-joining a line that ends in "=")
    fixed: list[str] = []
    for line in lines:
        if fixed and fixed[-1].endswith("=") and not fixed[-1].endswith("=="):
            fixed[-1] += line
        else:
            fixed.append(line)
    check = binascii.crc32(data) if crc is None else crc
    return "\n".join(
        [
            f"=ybegin line=128 size={len(data)} name={name}",
            *fixed,
            f"=yend size={len(data)} crc32={check:08x}",
        ]
    )


ALPHABET = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"


def binhex(
    name: str, data: bytes, *, break_crc: bool = False, break_header_crc: bool = False
) -> str:
    raw_name = name.encode("mac_roman")
    header = bytes([len(raw_name)]) + raw_name + b"\0" + b"TEXTttxt" + b"\0\0"
    header += len(data).to_bytes(4, "big") + (0).to_bytes(4, "big")
    header_crc = binascii.crc_hqx(header + b"\0\0" * break_header_crc, 0)
    stream = header + header_crc.to_bytes(2, "big")
    data_crc = binascii.crc_hqx(data, 0) ^ (1 if break_crc else 0)
    stream += data + data_crc.to_bytes(2, "big") + (0).to_bytes(2, "big")
    stream = stream.replace(b"\x90", b"\x90\x00")  # the run marker written literally
    bits = "".join(f"{byte:08b}" for byte in stream)
    bits += "0" * (-len(bits) % 6)
    chars = ":" + "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6)) + ":"
    lines = [chars[i : i + 64] for i in range(0, len(chars), 64)]
    return "\n".join(["(This file must be converted with BinHex 4.0)", "", *lines])


ENCODERS = {"uuencode": uuencode, "base64": base64_block, "yenc": yenc, "binhex": binhex}


# --- the detector ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_block_is_cut_out_and_decoded(encoding: str) -> None:
    data = bytes(range(256)) * 3 + "本文".encode()
    text = f"{BEFORE}\n{ENCODERS[encoding]('memo.bin', data)}\n{AFTER}\n"
    rest, files = extract_inline_files(text, **LIMITS)
    assert rest == f"{BEFORE}\n{AFTER}\n"
    assert [(f.encoding, f.filename, f.data) for f in files] == [(encoding, "memo.bin", data)]


@given(st.binary(max_size=700), st.sampled_from(sorted(ENCODERS)), st.text(max_size=40))
@settings(max_examples=150, deadline=None)
def test_any_file_round_trips_out_of_any_text(data: bytes, encoding: str, around: str) -> None:
    around = around.replace("\r", "")
    text = f"{around}\n{ENCODERS[encoding]('f.bin', data)}\n{around}"
    rest, files = extract_inline_files(text, **LIMITS)
    if "begin" in around.lower() or "binhex" in around.lower():
        return  # (the surrounding text may itself start a block: covered by the next test)
    assert rest == f"{around}\n{around}"
    assert len(files) == 1
    assert files[0].data == data


LINE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "begin 644 x.exe",
            "begin-base64 600 y",
            "=ybegin line=128 size=3 name=z",
            "=ypart begin=1 end=3",
            "=yend size=3",
            "(This file must be converted with BinHex 4.0)",
            ":!!!:",
            "end",
            "====",
            "`",
            "M86)C",
            "#86)C",
        ]
    ),
)


@given(st.lists(LINE, max_size=30))
@settings(max_examples=400, deadline=None)
def test_the_detector_never_raises_and_leaves_no_block_start(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        rest, files = extract_inline_files(text, **LIMITS)
    except LimitExceeded:
        return
    kept = rest.split("\n") if rest else []
    # Kept lines are input lines, in order; none of them starts a block any more.
    iterator = iter(text.split("\n"))
    assert all(any(line == other for other in iterator) for line in kept)
    assert (rest == text) is not files
    assert extract_inline_files(rest, **LIMITS) == (rest, [])
    for found in files:
        assert (found.data is None) == bool(found.problem)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("begin 644 a.exe\nM86)C", "no end line"),
        ("begin 644 a.exe\nM86)C\nこれは本文です\nend", "not uuencoded"),
        ("begin-base64 644 a.exe\nTVqQ", "no ==== end line"),
        ("begin-base64 644 a.exe\nTVqQA\n====", "invalid base64"),
        ("=ybegin line=128 size=3 name=a.exe\nabc", "no =yend line"),
        ("=ybegin line=128 size=9 name=a.exe\nabc\n=yend size=9", "size does not match"),
        (yenc("a.exe", b"MZ\x90\x00", crc=0x1234), "CRC does not match"),
        (binhex("a.exe", b"MZ\x90\x00", break_crc=True), "data checksum"),
        ("(This file must be converted with BinHex 4.0)\n:!!!!!!", "no closing colon"),
        ("(This file must be converted with BinHex 4.0)\nこれは本文", "not BinHex"),
    ],
)
def test_a_malformed_block_is_cut_out_and_flagged(block: str, problem: str) -> None:
    rest, files = extract_inline_files(f"{BEFORE}\n{block}", **LIMITS)
    assert BEFORE in rest
    assert "a.exe" not in rest
    assert "M86" not in rest
    assert "TVq" not in rest
    assert len(files) == 1
    assert files[0].data is None
    assert problem in files[0].problem


def test_the_text_after_a_broken_block_is_kept() -> None:
    rest, files = extract_inline_files(f"{BEFORE}\nbegin 644 a.exe\nM86)C\n{AFTER}", **LIMITS)
    assert rest == f"{BEFORE}\n{AFTER}"
    assert files[0].problem == "a line that is not uuencoded"


def test_too_many_blocks_is_a_limit() -> None:
    text = "\n".join(uuencode(f"{n}.txt", b"x") for n in range(3))
    with pytest.raises(LimitExceeded):
        extract_inline_files(text, max_files=2, max_bytes=1 << 20)


def test_a_binhex_run_bomb_is_bounded() -> None:
    stream = b"\x01a" + b"\x90\xff" * 400  # each pair repeats the last byte 254 times
    bits = "".join(f"{byte:08b}" for byte in stream)
    bits += "0" * (-len(bits) % 6)
    chars = "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))
    text = f"(This file must be converted with BinHex 4.0)\n:{chars}:"
    _, files = extract_inline_files(text, max_files=5, max_bytes=10_000)
    assert files[0].data is None
    assert "expands over" in files[0].problem


def test_ordinary_text_mentioning_begin_is_left_alone() -> None:
    text = "会議は begin 10時 から\nbegin with the end in mind\nend\n"
    assert extract_inline_files(text, **LIMITS) == (text, [])


# --- in the pipeline -------------------------------------------------------------------------

CHARSETS = ["iso-2022-jp", "shift_jis", "utf-8"]


def encoded(text: str, charset: str) -> bytes:
    data = encode_iso2022jp(text) if charset == "iso-2022-jp" else text.encode(charset)
    assert data is not None
    return data


@pytest.mark.parametrize("charset", CHARSETS)
@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_an_inline_executable_is_removed_and_listed(charset: str, encoding: str) -> None:
    exe = b"MZ" + b"\x90\x00" * 64
    text = f"{BEFORE}\n{ENCODERS[encoding]('setup.exe', exe)}\n{AFTER}\n"
    if encoding == "yenc":
        charset = "iso-8859-1"  # (yEnc is 8-bit: it travels in a byte-transparent charset)
        text = f"Hello\n{yenc('setup.exe', exe)}\nBye\n"
    raw = mail(leaf(f"text/plain; charset={charset}", encoded(text, charset)))
    result = sanitize_message(raw, Policy())
    body = body_text(result.message)
    inline = [p for p in result.report.parts if ".text" in p.path]
    assert len(inline) == 1
    assert inline[0].action is Action.REMOVED
    assert inline[0].reason is Reason.EXECUTABLE
    assert "setup.exe" in body  # listed in the notice (the block that named it is gone)
    assert "begin" not in body
    assert "=ybegin" not in body
    assert "BinHex 4.0" not in body
    assert not [p for p in parse(result.message).walk() if p.get_filename()]


@pytest.mark.parametrize("charset", CHARSETS)
def test_an_inline_text_document_is_disarmed_and_attached(charset: str) -> None:
    document = "議事録\r\n出席者：山田、佐藤\r\n".encode("cp932")
    text = f"{BEFORE}\n{uuencode('議事録.txt', document)}\n{AFTER}\n"
    raw = mail(leaf(f"text/plain; charset={charset}", encoded(text, charset)))
    result = sanitize_message(raw, Policy())
    inline = [p for p in result.report.parts if ".text" in p.path]
    assert inline[0].action is Action.SANITIZED
    files = [p for p in parse(result.message).walk() if p.get_filename()]
    assert [f.get_filename() for f in files] == ["議事録.txt"]
    assert "出席者：山田、佐藤" in files[0].get_payload(decode=True).decode("utf-8")
    body = body_text(result.message)
    assert BEFORE in body
    assert AFTER in body


@pytest.mark.parametrize("charset", CHARSETS)
def test_a_malformed_inline_block_is_removed_and_reported(charset: str) -> None:
    text = f"{BEFORE}\nbegin 644 請求書.exe\nM86)C\n{AFTER}\n"
    raw = mail(leaf(f"text/plain; charset={charset}", encoded(text, charset)))
    result = sanitize_message(raw, Policy())
    inline = [p for p in result.report.parts if ".text" in p.path]
    assert (inline[0].action, inline[0].reason) == (Action.REMOVED, Reason.MALFORMED)
    body = body_text(result.message)
    assert "M86)C" not in body
    assert "begin 644" not in body
    assert "請求書.exe" in body  # listed in the notice
    assert AFTER in body


# --- yEnc among Japanese text: cut from the bytes before the charset is judged ----------------

JAPANESE_CHARSETS = ["utf-8", "shift_jis", "euc-jp", "iso-2022-jp"]
DOCUMENT = "議事録\r\n出席者：山田、佐藤\r\n".encode("cp932")


def yenc_bytes(name: str, data: bytes, **options: int) -> bytes:
    return yenc(name, data, **options).encode("latin-1")


def japanese_with(block: bytes, charset: str) -> bytes:
    return encoded(BEFORE + "\n", charset) + block + b"\n" + encoded(AFTER + "\n", charset)


@pytest.mark.parametrize("data", [bytes(range(256)) * 3, b"", b"=\r\n\x00\xd6\xe3\x13", DOCUMENT])
def test_yenc_is_decoded_from_the_raw_bytes(data: bytes) -> None:
    payload = b"head\r\n" + yenc_bytes("f.bin", data).replace(b"\n", b"\r\n") + b"\r\ntail\r\n"
    rest, files = cut_yenc_blocks(payload, max_files=5, decode_name=bytes.decode)
    assert rest == b"head\r\ntail\r\n"
    assert [(f.encoding, f.filename, f.data) for f in files] == [("yenc", "f.bin", data)]


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (yenc_bytes("a.bin", b"abc", crc=1), "CRC"),
        (yenc_bytes("a.bin", b"abc").replace(b"size=3", b"size=4"), "size"),
        (
            b"=ybegin part=1 total=2 line=128 size=6 name=a.bin\n=ypart begin=1 end=3\nKLM\n"
            b"=yend size=3 part=1 pcrc32=352441c2",
            "multi-part",
        ),
        (b"=ybegin line=128 size=3 name=a.bin\nKLM", "=yend"),
    ],
)
def test_a_broken_yenc_block_is_cut_and_flagged(block: bytes, problem: str) -> None:
    rest, files = cut_yenc_blocks(b"a\n" + block + b"\nb\n", max_files=5, decode_name=bytes.decode)
    assert b"ybegin" not in rest
    assert files[0].data is None
    assert problem in files[0].problem


@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.parametrize("charset", JAPANESE_CHARSETS)
def test_yenc_in_japanese_text_keeps_the_text_and_the_file(charset: str, declared: bool) -> None:
    name = "議事録.txt"
    block = yenc_bytes("x", DOCUMENT).replace(b"name=x", b"name=" + name.encode("utf-8"))
    content_type = f"text/plain; charset={charset}" if declared else "text/plain"
    raw = mail(leaf(content_type, japanese_with(block, charset), cte="base64"))
    result = sanitize_message(raw, Policy())
    body = body_text(result.message)
    assert body.startswith(f"{BEFORE}\n{AFTER}\n"), body[:80]
    assert not [p for p in result.report.parts if Reason.LOSSY_DECODE in p.findings]
    inline = [p for p in result.report.parts if ".text" in p.path]
    assert inline[0].action is Action.SANITIZED, inline
    files = [p for p in parse(result.message).walk() if p.get_filename()]
    assert "出席者：山田、佐藤" in files[0].get_payload(decode=True).decode("utf-8")
    assert name in body  # listed in the notice


@pytest.mark.parametrize("encoding", ["uuencode", "base64", "binhex"])
def test_an_inline_file_that_is_kept_is_listed_in_the_notice(encoding: str) -> None:
    text = f"{BEFORE}\n{ENCODERS[encoding]('memo.txt', DOCUMENT)}\n{AFTER}\n"
    result = sanitize_message(mail(leaf("text/plain; charset=utf-8", text.encode())), Policy())
    body = body_text(result.message)
    assert "memo.txt" in body.split(AFTER, 1)[1]
    assert label(RemovedItem.INLINE_FILE, "ja") in body
    assert RemovedItem.INLINE_FILE in result.report.parts[0].removed


# --- a block quoted in a reply ----------------------------------------------------------------


def quoted(block: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in block.split("\n"))


@pytest.mark.parametrize("prefix", ["> ", ">", "> > ", ">> "])
@pytest.mark.parametrize("encoding", ["uuencode", "base64", "binhex"])
def test_a_quoted_block_is_cut_out_and_decoded(encoding: str, prefix: str) -> None:
    data = bytes(range(256)) * 2
    block = quoted(ENCODERS[encoding]("memo.bin", data), prefix)
    text = f"{BEFORE}\n{prefix}前のメール:\n{block}\n{prefix}以上\n{AFTER}\n"
    rest, files = extract_inline_files(text, **LIMITS)
    assert rest == f"{BEFORE}\n{prefix}前のメール:\n{prefix}以上\n{AFTER}\n"
    assert [(f.encoding, f.data) for f in files] == [(encoding, data)]


def test_a_quoted_block_ends_where_the_quote_ends() -> None:
    block = quoted(uuencode("a.exe", b"MZ" * 100), "> ").split("\n")
    text = "\n".join([*block[:2], "unquoted line", *block[2:]])
    rest, files = extract_inline_files(text, **LIMITS)
    assert files[0].data is None
    assert "unquoted line" in rest


@pytest.mark.parametrize("charset", CHARSETS)
def test_a_quoted_inline_executable_is_removed(charset: str) -> None:
    exe = b"MZ" + b"\x90\x00" * 64
    text = f"{BEFORE}\n> {AFTER}\n{quoted(uuencode('setup.exe', exe), '> ')}\n"
    raw = mail(leaf(f"text/plain; charset={charset}", encoded(text, charset)))
    result = sanitize_message(raw, Policy())
    inline = [p for p in result.report.parts if ".text" in p.path]
    assert (inline[0].action, inline[0].reason) == (Action.REMOVED, Reason.EXECUTABLE)
    body = body_text(result.message)
    assert "begin 644" not in body
    assert "setup.exe" in body
    assert f"> {AFTER}" in body


@pytest.mark.parametrize("name", ["report.pdf", "Résumé.doc", "a"])
def test_a_binhex_block_with_a_wrong_checksum_keeps_its_claimed_name(name: str) -> None:
    """(An encoder that feeds BinHex's two zero bytes to the direct CRC algorithm writes a
    wrong header checksum: the spec's CRC equals binascii.crc_hqx of the bytes alone.)"""
    rest, files = extract_inline_files(
        f"a\n{binhex(name, b'%PDF-1.4 x', break_header_crc=True)}\nb\n", **LIMITS
    )
    assert rest == "a\nb\n"
    assert (files[0].data, files[0].filename) == (None, name)
    assert "header checksum" in files[0].problem


# --- blocks in HTML bodies --------------------------------------------------------------------

HTML_CHARSETS = ["utf-8", "shift_jis", "euc-jp", "iso-2022-jp"]
# Bytes whose uuencoded lines hold "<" followed by letters and "&": an HTML parser reads tags
# and entities in them when the block is pasted unescaped.
TAG_LIKE = bytes(range(256)) * 3


def html_mail(html: str, charset: str) -> bytes:
    return mail(leaf(f"text/html; charset={charset}", encoded(html, charset)))


def unescaped_in_pre(block: str) -> str:
    return (
        f"<html><head><title>t</title></head><body><p>{BEFORE}</p>"
        f"<pre>{block}</pre><p>{AFTER}</p></body></html>"
    )


@pytest.mark.parametrize("charset", HTML_CHARSETS)
@pytest.mark.parametrize("encoding", ["uuencode", "base64", "binhex"])
def test_an_unescaped_block_in_html_pre_is_the_file(charset: str, encoding: str) -> None:
    block = ENCODERS[encoding]("data.bin", TAG_LIKE)
    if encoding == "uuencode":
        assert re.search(r"<[A-Za-z]", block) is not None  # the parser would eat it
    result = sanitize_message(html_mail(unescaped_in_pre(block), charset), Policy())
    inline = [p for p in result.report.parts if ".text" in p.path]
    assert len(inline) == 1
    assert inline[0].reason is not Reason.MALFORMED
    assert inline[0].size == len(TAG_LIKE)
    body = body_text(result.message)
    assert BEFORE in body
    assert AFTER in body
    assert "begin" not in body.split(AFTER)[0]


@pytest.mark.parametrize("charset", HTML_CHARSETS)
def test_an_inline_executable_in_html_is_removed_as_an_executable(charset: str) -> None:
    exe = b"MZ" + b"<html&amp;>" * 40
    html = unescaped_in_pre(uuencode("setup.exe", exe))
    result = sanitize_message(html_mail(html, charset), Policy())
    (inline,) = [p for p in result.report.parts if ".text" in p.path]
    assert (inline.action, inline.reason) == (Action.REMOVED, Reason.EXECUTABLE)
    assert "setup.exe" in body_text(result.message)


def test_an_escaped_block_in_html_is_still_read_from_the_text() -> None:
    block = uuencode("data.bin", TAG_LIKE)
    escaped = block.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    result = sanitize_message(html_mail(unescaped_in_pre(escaped), "utf-8"), Policy())
    (inline,) = [p for p in result.report.parts if ".text" in p.path]
    assert inline.reason is not Reason.MALFORMED
    assert inline.size == len(TAG_LIKE)


def test_a_block_start_after_other_markup_on_its_line_is_found() -> None:
    block = uuencode("data.bin", TAG_LIKE)
    html = f"<div><b>{BEFORE}</b><br><tt>{block}</tt><br>{AFTER}</div>"
    text, files = extract_inline_files(html, markup=True, **LIMITS)
    assert [(f.filename, f.data) for f in files] == [("data.bin", TAG_LIKE)]
    assert BEFORE in text
    assert AFTER in text


def test_a_broken_block_in_html_source_is_left_for_the_text() -> None:
    html = "<pre>begin 644 x.bin\nnot uuencoded at all\nend</pre>"
    assert extract_inline_files(html, markup=True, **LIMITS) == (html, [])


def test_html_without_blocks_is_returned_as_is() -> None:
    html = "<p>begin 644 is what uuencode writes</p><p>end</p>"
    text, files = extract_inline_files(html, markup=True, **LIMITS)
    assert files == []
    assert text == html
