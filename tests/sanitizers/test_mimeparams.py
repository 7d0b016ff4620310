"""sanitizers.mimeparams: Content-Type / Content-Disposition values as mailers really write
them, Japanese file names exact, every deviation a defect, never an exception."""

from __future__ import annotations

import base64
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sanitizers.charsets import Decoded, encode_iso2022jp
from sanitizers.mimeparams import parse_header_params

CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NAME = "①②㈱㍑～髙﨑 会議資料.xlsx"


def raw(data: bytes) -> str:
    """Bytes as the compat32 parser keeps them in a header value."""
    return data.decode("ascii", "surrogateescape")


def pct(data: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in data)


def jis(text: str) -> bytes:
    """ISO-2022-JP as Windows writes it (CP932 extensions included)."""
    data = encode_iso2022jp(text)
    assert data is not None
    return data


def texts(params: dict[str, Decoded]) -> dict[str, str]:
    return {name: value.text for name, value in params.items()}


# --- main value and plain parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "main", "params"),
    [
        ('text/plain; charset="iso-2022-jp"', "text/plain", {"charset": "iso-2022-jp"}),
        ("TEXT/Plain;CHARSET=Shift_JIS", "text/plain", {"charset": "Shift_JIS"}),
        ("text / html ; charset = utf-8 ", "text/html", {"charset": "utf-8"}),
        ("attachment", "attachment", {}),
        ("Attachment;", "attachment", {}),
        ("inline;; ;filename=a.txt;", "inline", {"filename": "a.txt"}),
        ('multipart/mixed; boundary="a;b=c"', "multipart/mixed", {"boundary": "a;b=c"}),
        (r'attachment; filename="a\"b\\c.txt"', "attachment", {"filename": 'a"b\\c.txt'}),
        (
            r'attachment; filename="C:\temp\report.doc"',
            "attachment",
            {"filename": r"C:\temp\report.doc"},
        ),
        ("attachment; filename=my file.txt", "attachment", {"filename": "my file.txt"}),
        ('attachment; filename=""', "attachment", {"filename": ""}),
        ("attachment; filename=", "attachment", {"filename": ""}),
    ],
)
def test_plain_values(value: str, main: str, params: dict[str, str]) -> None:
    parsed_main, parsed, defects = parse_header_params(value)
    assert (parsed_main, texts(parsed), defects) == (main, params, [])


def test_folded_value_is_unfolded() -> None:
    main, params, defects = parse_header_params(
        'attachment;\r\n filename="long\r\n name.txt";\r\n\tsize=10'
    )
    assert (main, texts(params), defects) == (
        "attachment",
        {"filename": "long name.txt", "size": "10"},
        [],
    )


@pytest.mark.parametrize(
    ("value", "main", "defect"),
    [
        ("text/plain charset=utf-8", "text/plain", "missing ';' after the value"),
        ("", "", "malformed value"),
        ("text/pl\x00ain", "text/pl?ain", "malformed value"),
        (raw(b"text/\xff"), "text/?", "malformed value"),
    ],
)
def test_malformed_main_value(value: str, main: str, defect: str) -> None:
    parsed_main, _params, defects = parse_header_params(value)
    assert parsed_main == main
    assert defect in defects


def test_duplicate_parameter_first_wins() -> None:
    _main, params, defects = parse_header_params('attachment; filename="a.txt"; FILENAME=b.exe')
    assert texts(params) == {"filename": "a.txt"}
    assert defects == ["duplicate parameter: filename"]


@pytest.mark.parametrize(
    ("value", "params", "defects"),
    [
        ("attachment; filename", {}, ["parameter without a value: filename"]),
        ("attachment; filename; size=3", {"size": "3"}, ["parameter without a value: filename"]),
        ('attachment; "x"=y; =z', {}, ["parameter without a value"] * 2),
        ('attachment; filename="a.txt', {"filename": "a.txt"}, ["unterminated quoted string"]),
        ('attachment; filename="a" b', {"filename": "a"}, ["text after quoted string"]),
        (raw(b"a; fil\xffe=1"), {}, ["invalid parameter name: fil?e"]),
    ],
)
def test_missing_or_broken_values_are_defects(
    value: str, params: dict[str, str], defects: list[str]
) -> None:
    _main, parsed, found = parse_header_params(value)
    assert (texts(parsed), found) == (params, defects)


# --- RFC 2231 -----------------------------------------------------------------------------


def test_rfc2231_utf8() -> None:
    value = f"attachment; filename*=UTF-8''{pct(NAME.encode())}"
    _main, params, defects = parse_header_params(value)
    assert params["filename"] == Decoded(NAME, "utf-8", False, False)
    assert defects == []


def test_rfc2231_iso2022jp_with_cp932_extensions() -> None:
    value = f"attachment; filename*=iso-2022-jp'ja'{pct(jis(NAME))}"
    _main, params, _defects = parse_header_params(value)
    assert params["filename"] == Decoded(NAME, "iso-2022-jp-ms", False, False)


def test_rfc2231_shift_jis_and_quoted_and_raw_8bit() -> None:
    quoted = f"attachment; filename*=\"shift_jis''{pct(NAME.encode('cp932'))}\""
    assert parse_header_params(quoted)[1]["filename"].text == NAME
    unencoded = raw(b"attachment; filename*=utf-8''" + NAME.encode())
    assert parse_header_params(unencoded)[1]["filename"].text == NAME


def _sections(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_rfc2231_continuations_in_any_order(order: tuple[int, ...]) -> None:
    data = jis(NAME)
    parts = _sections(data, -(-len(data) // 3))
    sections = [f"filename*0*=iso-2022-jp''{pct(parts[0])}"]
    sections += [f"filename*{index}*={pct(part)}" for index, part in enumerate(parts[1:], 1)]
    value = "attachment; " + ";\r\n ".join(sections[index] for index in order)
    _main, params, defects = parse_header_params(value)
    assert params["filename"] == Decoded(NAME, "iso-2022-jp-ms", False, False)
    assert defects == []


def test_rfc2231_continuations_mix_encoded_and_literal_sections() -> None:
    value = (
        f"attachment; filename*0*=utf-8'ja'{pct('会議'.encode())}; "
        f'filename*1="資料 %41.txt"; filename*2*=%E2%91%A0'
    )
    value = raw(value.encode())
    _main, params, defects = parse_header_params(value)
    assert params["filename"].text == "会議資料 %41.txt①"
    assert defects == []


def test_rfc2231_utf8_split_inside_a_character() -> None:
    data = NAME.encode()
    value = "; ".join([f"filename*0*=utf-8''{pct(data[:5])}", f"filename*1*={pct(data[5:])}"])
    assert parse_header_params("attachment; " + value)[1]["filename"].text == NAME


@pytest.mark.parametrize(
    ("value", "text", "defect"),
    [
        ("a; filename*0=x; filename*2=z", "xz", "missing RFC 2231 section of filename"),
        ("a; filename*1=y; filename*2=z", "yz", "missing RFC 2231 section of filename"),
        ("a; filename*0=x; filename*0=z", "x", "duplicate parameter: filename*0"),
        (
            "a; filename*=utf-8''x; filename*0=y",
            "x",
            "both filename* and filename*N: using filename*",
        ),
        ("a; filename*=%41%42", "AB", "RFC 2231 value of filename without charset'language'"),
        ("a; filename*99999=x", None, "malformed parameter name: filename*99999"),
        ("a; filename**=x", None, "malformed parameter name: filename**"),
    ],
)
def test_rfc2231_defects(value: str, text: str | None, defect: str) -> None:
    _main, params, defects = parse_header_params(value)
    assert (params["filename"].text if "filename" in params else None) == text
    assert defect in defects


def test_rfc2231_wins_over_plain_without_defect() -> None:
    value = f"attachment; filename=\"fallback.xlsx\"; filename*=utf-8''{pct(NAME.encode())}"
    _main, params, defects = parse_header_params(value)
    assert texts(params) == {"filename": NAME}
    assert defects == []


def test_rfc2231_unknown_charset_is_detected() -> None:
    value = f"attachment; filename*=x-unknown''{pct(NAME.encode('cp932'))}"
    decoded = parse_header_params(value)[1]["filename"]
    assert (decoded.text, decoded.detected, decoded.lossy) == (NAME, True, False)


# --- RFC 2047 and raw 8-bit in values -----------------------------------------------------


def b_word(charset: str, data: bytes) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def test_encoded_words_in_quoted_filename_and_name() -> None:
    data = jis(NAME)
    words = f"{b_word('ISO-2022-JP', data[:9])} {b_word('ISO-2022-JP', data[9:])}"
    _main, params, _defects = parse_header_params(
        f'application/octet-stream; name="{words}"; x-other="{b_word("utf-8", b"x")}"'
    )
    assert params["name"] == Decoded(NAME, "iso-2022-jp-ms", False, False)
    assert params["x-other"].text == b_word("utf-8", b"x")  # only name and filename


def test_encoded_words_inside_rfc2231_literal_sections() -> None:
    word = b_word("utf-8", NAME.encode())
    value = f'attachment; filename*0="{word[:20]}"; filename*1="{word[20:]}"'
    assert parse_header_params(value)[1]["filename"].text == NAME


def test_boundary_is_never_decoded() -> None:
    word = b_word("utf-8", b"x")
    _main, params, _defects = parse_header_params(f'multipart/mixed; boundary="{word}"')
    assert params["boundary"].text == word


@pytest.mark.parametrize(
    ("data", "charset"),
    [(NAME.encode("cp932"), "cp932"), (NAME.encode(), "utf-8"), (jis(NAME), "iso-2022-jp-ms")],
)
def test_raw_8bit_and_raw_jis_filenames(data: bytes, charset: str) -> None:
    for quoted in (b'"' + data + b'"', data):
        value = raw(b"attachment; filename=" + quoted)
        _main, params, defects = parse_header_params(value)
        assert params["filename"] == Decoded(NAME, charset, False, True)
        assert defects == []


def test_raw_jis_pairs_with_quote_and_backslash_are_opaque() -> None:
    value = raw(b'attachment; filename="\x1b$B\x5c\x22\x5c\x5c\x1b(B;x.txt"; size=1')
    _main, params, defects = parse_header_params(value)
    assert texts(params) == {"filename": "棧樛;x.txt", "size": "1"}
    assert defects == []


# "あ" is 0x82 0xA0 in Shift_JIS; "だぅ" is E3 81 A0 E3 81 85 in UTF-8 (0xA0 NBSP, 0x85 NEL).
@pytest.mark.parametrize("name", ["資料あ", "だぅ"])
def test_8bit_bytes_are_never_whitespace(name: str) -> None:
    for value in (name.encode("cp932"), name.encode()):
        parsed = parse_header_params(raw(b"attachment; filename=" + value))[1]["filename"]
        assert parsed.text == name


def test_shift_jis_byte_0x5c_keeps_its_backslash() -> None:
    name = "申請表.xls"  # 表 is 0x95 0x5C in Shift_JIS
    value = raw(b'attachment; filename="' + name.encode("cp932") + b'"')
    assert parse_header_params(value)[1]["filename"].text == name


# --- injection and robustness -------------------------------------------------------------


INJECTED_WORD = b_word("utf-8", b"a\r\nBcc: x\x00")
INJECTED_SEPARATORS = pct("a\u2028b\u0085c".encode())


@pytest.mark.parametrize(
    "value",
    [
        "attachment; filename*=utf-8''a%0D%0ABcc%3A%20x%00.txt",
        f'attachment; filename="{INJECTED_WORD}"',
        'attachment; filename="a\r\nBcc: x"',
        "attachment; filename=a\rb\x00c",
        f"attachment; filename*=utf-8''{INJECTED_SEPARATORS}",
    ],
)
def test_values_never_carry_controls(value: str) -> None:
    _main, params, _defects = parse_header_params(value)
    assert not CONTROLS.search(params["filename"].text)


def test_defects_show_only_safe_names() -> None:
    _main, _params, defects = parse_header_params("a; " + "x" * 500 + "*z=1; b\x00c")
    assert all(not CONTROLS.search(defect) and len(defect) < 120 for defect in defects)


PIECES = st.sampled_from(
    [
        ";",
        "=",
        '"',
        "\\",
        " ",
        "\r\n ",
        "\r\n",
        "*",
        "*0",
        "*1*",
        "*99999999999999",
        "'",
        "%",
        "%E2%91",
        "filename",
        "name",
        "boundary",
        "utf-8",
        "iso-2022-jp",
        "=?utf-8?B?4pGg?=",
        "=?",
        "?=",
        "\x1b$B-!",
        "\udc82\udca0",
        "\x00",
        "text/plain",
    ]
)
VALUES = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=120).map(raw),
    st.lists(PIECES, max_size=40).map("".join),
)


@given(VALUES)
@settings(max_examples=800)
def test_property_never_raises_and_values_are_clean(value: str) -> None:
    main, params, defects = parse_header_params(value)
    assert main == main.lower()
    assert all(name == name.lower() and "*" not in name for name in params)
    assert all(not CONTROLS.search(decoded.text) for decoded in params.values())
    assert all(isinstance(defect, str) for defect in defects)
