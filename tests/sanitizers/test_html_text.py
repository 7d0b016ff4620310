"""Tests for sanitizers.html_text: readable text from hostile HTML, never raising."""

from __future__ import annotations

import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sanitizers.html_text import html_to_text
from sanitizers.policy import LinkMode
from sanitizers.safetext import BIDI

KEEP = LinkMode.KEEP


def text(html: str, links: LinkMode = KEEP) -> str:
    return html_to_text(html, links)


PREFORMATTED = re.compile("<(pre|xmp|listing|plaintext)", re.IGNORECASE)


def assert_well_formed(out: str, html: str = "") -> None:
    """The invariants every output of ``html`` keeps."""
    assert isinstance(out, str)
    assert out == "" or out.endswith("\n")
    assert not out.startswith("\n")
    assert "\r" not in out
    assert not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in out)
    assert not any(line.endswith(" ") for line in out.split("\n"))
    if not PREFORMATTED.search(html):  # (preformatted text keeps its own blank lines)
        assert "\n\n\n\n" not in out


# --- layout ------------------------------------------------------------------------------


def test_paragraphs_are_separated_by_a_blank_line() -> None:
    assert text("<p>one</p><p>two</p>") == "one\n\ntwo\n"


OUTLOOK = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<style>p.MsoNormal {margin:0mm; font-size:10.5pt;}</style></head><body lang=JA>
<div class=WordSection1>
<p class=MsoNormal><span lang=JA style='font-family:"ＭＳ 明朝",serif'>各位<o:p></o:p></span></p>
<p class=MsoNormal><span lang=JA><o:p>&nbsp;</o:p></span></p>
<p class=MsoNormal><span lang=JA>お世話になっております。<o:p></o:p></span></p>
<p class=MsoNormal><span lang=JA>標記の件について、ご連絡いたします。<o:p></o:p></span></p>
<p class=MsoNormal><o:p>&nbsp;</o:p></p>
<p class=MsoListParagraph style='margin-left:18pt'><![if !supportLists]>①<![endif]>日時</p>
<p class=MsoNormal>以上<o:p></o:p></p>
</div></body></html>"""


def test_outlook_paragraphs_are_lines_and_empty_ones_are_empty_lines() -> None:
    assert text(OUTLOOK) == (
        "各位\n\nお世話になっております。\n標記の件について、ご連絡いたします。\n\n①日時\n以上\n"
    )


def test_paragraphs_without_vertical_margins_are_lines() -> None:
    html = (
        '<p style="margin:0">a</p><p style="MARGIN: 0px 0 0 0">b</p>'
        '<p style="margin:0;margin-bottom:1em">c</p><p>d</p>'
    )
    assert text(html) == "a\nb\n\nc\n\nd\n"


def test_gmail_empty_div_line_is_an_empty_line() -> None:
    assert text("<div>line1</div><div><br></div><div>line2</div>") == "line1\n\nline2\n"


def test_block_elements_start_a_new_line_and_inline_ones_do_not() -> None:
    assert text("<div>a <b>bold</b> <i>it</i></div><div>b</div>") == "a bold it\nb\n"


def test_whitespace_collapses_like_a_browser() -> None:
    assert text("<p>  many \n\t spaces\n here  </p>") == "many spaces here\n"


def test_a_source_line_break_between_japanese_characters_disappears() -> None:
    assert text("<p>お知らせ\n    です。</p>") == "お知らせです。\n"
    assert text("<p>Hello\nworld</p>") == "Hello world\n"


def test_japanese_text_is_untouched() -> None:
    sample = "①㈱～ｱｲｳｴｵ ＡＢＣ　全角空白 髙﨑"
    assert text(f"<p>{sample}</p>") == sample + "\n"


def test_no_break_spaces_inside_text_stay_and_at_its_ends_collapse() -> None:
    assert text("<p>a&nbsp;&nbsp;b</p><p> &nbsp;&nbsp;</p><hr>") == "a  b\n\n" + "-" * 40 + "\n"


def test_br_breaks_lines_and_runs_are_capped() -> None:
    assert text("a<br>b") == "a\nb\n"
    assert text("a<br><br>b") == "a\n\nb\n"
    assert text("a" + "<br>" * 20 + "b") == "a\n\n\nb\n"


def test_headings_stand_apart() -> None:
    assert text("<h1>Title</h1>body<h2>Sub</h2>more") == "Title\n\nbody\n\nSub\n\nmore\n"


def test_unordered_list_uses_bullets_and_nests() -> None:
    html = "<ul><li>one</li><li>two<ul><li>inner</li></ul></li></ul>after"
    assert text(html) == "・one\n・two\n  ・inner\n\nafter\n"


def test_ordered_list_is_numbered_from_start_with_continuation_indent() -> None:
    html = '<ol start="3"><li>a</li><li>b<br>cont</li></ol>'
    assert text(html) == "3. a\n4. b\n   cont\n"


@pytest.mark.parametrize("start", ["x", "99999999999999999999", "", "1e3"])
def test_bad_ordered_list_start_counts_from_one(start: str) -> None:
    assert text(f'<ol start="{start}"><li>a</li></ol>') == "1. a\n"


def test_definition_list_indents_definitions() -> None:
    assert text("<dl><dt>term</dt><dd>meaning</dd></dl>") == "term\n  meaning\n"


def test_table_rows_become_lines_with_separated_cells() -> None:
    html = (
        "<table><tr><th>名前</th><th>値</th></tr>"
        "<tr><td>a</td><td>&nbsp;</td><td>1</td></tr></table>after"
    )
    assert text(html) == "名前 | 値\na | 1\n\nafter\n"


def test_layout_table_cells_with_blocks_stay_blocks() -> None:
    html = "<table><tr><td><p>para1</p><p>para2</p></td><td>side</td></tr></table>"
    assert text(html) == "para1\n\npara2\n\nside\n"


def test_nested_tables_stay_readable() -> None:
    inner = "<table><tr><td>x</td><td>y</td></tr></table>"
    html = f"<table><tr><td>{inner}</td><td>z</td></tr></table>"
    assert text(html) == "x | y\nz\n"  # the inner table is a block of its own


def test_pre_keeps_its_whitespace() -> None:
    assert text("<p>x</p><pre>\n  code\n\n    more</pre>y") == "x\n\n  code\n\n    more\n\ny\n"


def test_blockquote_lines_are_prefixed() -> None:
    html = "<blockquote><p>quoted</p><p>two</p></blockquote>after"
    assert text(html) == "> quoted\n>\n> two\n\nafter\n"


def test_list_item_with_a_quote_keeps_its_marker() -> None:
    assert text("<ol><li><blockquote>q</blockquote></li></ol>") == "1. > q\n"


def test_hr_is_a_line() -> None:
    assert text("a<hr>b") == "a\n" + "-" * 40 + "\nb\n"


def test_ruby_reading_follows_in_brackets() -> None:
    html = "<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>"
    assert text(html) == "漢字（かんじ）\n"


def test_images_become_their_alt_text() -> None:
    html = '<img src="a.png" alt="ロゴ"> <img src="b.png"> <img alt="px" width="0" height="1">'
    assert text(html) == "[ロゴ]\n"


def test_entities_are_decoded() -> None:
    assert text("&amp; &lt;b&gt; &#x3042; &copy; &#128;") == "& <b> あ © €\n"


def test_control_characters_never_reach_the_output() -> None:
    out = text("a&#1;b\x01c\x1bd&#x7f;e\x85f\x00g\u2028h")
    assert_well_formed(out)
    # NEL, like U+2028, is a line break (sanitizers.safetext): a space in flowing text.
    assert out.replace("\ufffd", "") == "abcde fg h\n"


def test_a_block_of_control_characters_leaves_no_blank_lines() -> None:
    assert text("お知らせ<p>\x1f&#x7f;</p>お知らせ") == "お知らせ\n\nお知らせ\n"


def test_empty_and_blank_inputs_give_empty_text() -> None:
    for html in (
        "",
        "   ",
        "<!-- only a comment -->",
        "<html><head><title>t</title></head></html>",
    ):
        assert text(html) == ""


def test_meta_charset_is_ignored_because_the_caller_decoded() -> None:
    assert text('<meta charset="shift_jis"><p>日本語</p>') == "日本語\n"


def test_lone_surrogates_do_not_break_anything() -> None:
    assert text("a\ud800b") == "a\ufffdb\n"


# --- dropped and hidden content -------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<script>SECRET()</script>",
        "<style>.x{content:'SECRET'}</style>",
        "<head><title>SECRET</title></head>",
        "<template><p>SECRET</p></template>",
        "<iframe>SECRET</iframe>",
        "<object>SECRET</object>",
        '<embed src="x.swf">',
        "<svg><text>SECRET</text></svg>",
        "<math><mi>SECRET</mi></math>",
        "<!-- SECRET -->",
        "<?pi SECRET ?>",
        "<![CDATA[SECRET]]>",
        "<video>SECRET</video>",
        "<p hidden>SECRET</p>",
        '<p hidden="until-found">SECRET</p>',
        "<dialog>SECRET</dialog>",
        '<div style="display:none">SECRET</div>',
        '<div style="DISPLAY : NONE !important">SECRET</div>',
        '<div style="color:red;display:none">SECRET</div>',
        '<div style="display:/*x*/none">SECRET</div>',
        '<div style="disp\\6c ay:none">SECRET</div>',
        '<div style="display:none !important; display:block">SECRET</div>',
        '<span style="visibility:hidden">SECRET</span>',
        '<span style="visibility: collapse">SECRET</span>',
        '<span style="font-size:0">SECRET</span>',
        '<span style="font-size: 0.0px">SECRET</span>',
        '<span style="font-size:0%">SECRET</span>',
        '<span style="opacity:0">SECRET</span>',
        '<span style="opacity:.0">SECRET</span>',
        '<span style="opacity:-1">SECRET</span>',
        '<span style="mso-hide:all">SECRET</span>',
        '<span style="color:transparent">SECRET</span>',
        '<div style="max-height:0;overflow:hidden">SECRET</div>',
        '<div style="width:0px; overflow-x: clip">SECRET</div>',
        '<div style="display:none"><p>deep <b>SECRET</b></p></div>',
    ],
)
def test_hidden_and_inactive_content_is_dropped(html: str) -> None:
    out = text(f"<p>before</p>{html}<p>after</p>")
    assert "SECRET" not in out
    assert out == "before\n\nafter\n"


@pytest.mark.parametrize(
    "html",
    [
        '<div style="display:none;display:block">SHOWN</div>',
        '<div style="display:block !important; display:none">SHOWN</div>',
        '<span aria-hidden="true">SHOWN</span>',
        "<noscript>SHOWN</noscript>",
        '<div style="font-size:14px;border:none;text-decoration:none">SHOWN</div>',
        '<div style="opacity:0.5">SHOWN</div>',
        '<div style="overflow:hidden;height:20px">SHOWN</div>',
        '<div style="max-height:0">SHOWN</div>',
        "<dialog open>SHOWN</dialog>",
    ],
)
def test_visible_content_is_kept(html: str) -> None:
    assert "SHOWN" in text(html)


# Inherited hiding (visibility, font size, colour) can be undone by a descendant; the rest
# (display:none, hidden, opacity, clipping, mso-hide) hides everything inside for good.
@pytest.mark.parametrize(
    ("outer", "inner", "shown"),
    [
        ('style="font-size:0"', 'style="font-size:14px"', True),
        ('style="font-size:0px"', 'style="font: bold 13px/1.5 Arial"', True),
        ('style="font-size:0px"', 'style="font: 700 10pt serif"', True),
        ('style="font-size:0"', 'style="font-size:small"', True),
        ('style="font-size:0"', 'style="font-size:1.2rem"', True),
        ('style="font-size:0"', 'style="font-size:1em"', False),
        ('style="font-size:0"', 'style="font-size:150%"', False),
        ('style="font-size:0"', 'style="font-size:larger"', False),
        ('style="font-size:0"', 'style="font: 0 Arial"', False),
        ('style="font-size:0"', 'style="color:red"', False),
        ('style="font:0/0 a"', 'style="font-size:12px"', True),
        ('style="visibility:hidden"', 'style="visibility:visible"', True),
        ('style="visibility:hidden"', 'style="visibility:inherit"', False),
        ('style="visibility:collapse"', 'style="font-size:14px"', False),
        ('style="color:transparent"', 'style="color:#333"', True),
        ('style="color:rgba(0,0,0,0)"', 'style="color:black"', True),
        ('style="color:rgb(0 0 0 / 0%)"', 'style="color:inherit"', False),
        ('style="color:transparent"', 'style="font-size:14px"', False),
        ('style="display:none"', 'style="display:block"', False),
        ('style="opacity:0"', 'style="opacity:1"', False),
        ('style="max-height:0;overflow:hidden"', 'style="max-height:none"', False),
        ('style="mso-hide:all"', 'style="mso-hide:none"', False),
        ("hidden", 'style="display:block"', False),
        ('style="font-size:0"', 'style="visibility:visible"', False),
        ('style="font-size:0;visibility:hidden"', 'style="font-size:9px"', False),
    ],
)
def test_a_descendant_shows_only_where_css_lets_it(outer: str, inner: str, shown: bool) -> None:
    out = text(f"<p>before</p><div {outer}>secret<p {inner}>市役所からのお知らせ</p></div>")
    assert "secret" not in out
    assert ("市役所からのお知らせ" in out) is shown


@pytest.mark.parametrize(
    "html",
    [
        '<div hidden style="display:block">SHOWN</div>',
        '<div hidden style="DISPLAY: Flex">SHOWN</div>',
        '<div style="font-size:0"><font size="3">SHOWN</font></div>',
    ],
)
def test_the_own_style_overrides_what_hidden_or_zero_size_imply(html: str) -> None:
    assert "SHOWN" in text(html)


def test_inherited_hiding_is_restored_after_a_visible_child() -> None:
    html = (
        '<div style="font-size:0">x<span style="font-size:12px">表示</span>y'
        '<span style="visibility:hidden">z</span></div>後'
    )
    assert text(html) == "表示\n後\n"


def test_images_show_under_a_zero_font_size_but_not_under_hidden_visibility() -> None:
    html = (
        '<div style="font-size:0"><img alt="市章" src="a"><a href="https://ex.jp/a">'
        '<img alt="詳細" src="b"></a><a href="https://ex.jp/hidden">x</a></div>'
        '<div style="visibility:hidden"><img alt="秘密" src="c"><a href="https://ex.jp/b">y</a></div>'
    )
    assert text(html) == "[市章][詳細] <https://ex.jp/a>\n"


@pytest.mark.parametrize("void", ["embed", "source", "track", "wbr", "keygen", "bgsound"])
def test_content_after_a_void_element_is_kept(void: str) -> None:
    # libxml2 parses these as containers; browsers show what follows them.
    assert text(f"<p>a<{void}>b</p>") == "ab\n"


def test_the_tail_of_a_hidden_element_is_kept() -> None:
    assert text('a<span style="display:none">x</span>b<script>y</script>c') == "abc\n"


# --- links -----------------------------------------------------------------------------------


def test_link_shows_text_and_url() -> None:
    assert text('<a href="https://ex.jp/a?b=1">詳細</a>') == "詳細 <https://ex.jp/a?b=1>\n"


@pytest.mark.parametrize(
    ("label", "href"),
    [
        ("https://ex.jp", "https://ex.jp/"),
        ("https://ex.jp/", "https://ex.jp/"),
        ("ex.jp/page", "http://ex.jp/page"),
        ("a@b.jp", "mailto:a@b.jp"),
        ("HTTPS://EX.JP", "https://ex.jp"),
    ],
)
def test_url_is_not_repeated_when_the_text_says_it(label: str, href: str) -> None:
    assert text(f'<a href="{href}">{label}</a>') == f"{label}\n"


def test_mismatched_url_text_shows_the_real_target() -> None:
    out = text('<a href="https://evil.example/">https://bank.example.jp/</a>')
    assert out == "https://bank.example.jp/ <https://evil.example/>\n"


def test_mailto_link_is_shown_as_mailto() -> None:
    assert text('<a href="mailto:info@ex.jp">問い合わせ</a>') == "問い合わせ <mailto:info@ex.jp>\n"


def test_adjacent_links_stay_apart() -> None:
    html = '<a href="https://a.jp/"><img alt="A"></a><a href="https://b.jp/">B</a>'
    assert text(html) == "[A] <https://a.jp/> B <https://b.jp/>\n"


def test_link_without_text_shows_only_the_url() -> None:
    assert text('<a href="https://ex.jp/x"><img src="x"></a>') == "<https://ex.jp/x>\n"


def test_image_link_shows_alt_and_url() -> None:
    assert text('<a href="https://ex.jp/"><img alt="ロゴ"></a>') == "[ロゴ] <https://ex.jp/>\n"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " \tjavascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "&#106;avascript:alert(1)",
        "&#x6A;avascript&colon;alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "/relative/path",
        "//protocol-relative.example/",
        "",
    ],
)
def test_other_schemes_are_never_shown(href: str) -> None:
    out = text(f'<a href="{href}">click</a>')
    assert out == "click\n"


@pytest.mark.parametrize("mode", list(LinkMode))
def test_script_urls_are_not_shown_in_any_mode(mode: LinkMode) -> None:
    assert "script" not in text('<a href="javascript:x()">go</a>', mode)


def test_characters_that_disguise_a_url_are_percent_encoded() -> None:
    out = text('<a href="https://ex.jp/a b\u202egpj.exe<x>">f</a>')
    assert out == "f <https://ex.jp/a%20b%E2%80%AEgpj.exe%3Cx%3E>\n"


def test_japanese_in_urls_stays_readable() -> None:
    assert text('<a href="https://ex.jp/お知らせ">x</a>') == "x <https://ex.jp/お知らせ>\n"


def test_defang_rewrites_shown_urls_and_urls_in_text() -> None:
    html = (
        "<p>see http://a.example.com/p and FTP://f.example/</p>"
        '<a href="https://evil.example/x?q=a.b">click</a> <a href="mailto:a@b.jp">mail</a>'
    )
    assert text(html, LinkMode.DEFANG) == (
        "see hxxp://a[.]example[.]com/p and fxp://f[.]example/\n\n"
        "click <hxxps://evil[.]example/x?q=a.b> mail <mailto:a@b.jp>\n"
    )


def test_defang_leaves_no_clickable_web_url() -> None:
    html = '<a href="HTTPS://a.b/">x</a> http://c.d <a href="ftp://e.f">ftp://e.f</a>xhttp://g.h'
    out = text(html, LinkMode.DEFANG)
    assert not re.search("(?i)(https?|ftp)://", out)


def test_drop_keeps_only_the_text() -> None:
    html = '<a href="https://ex.jp/">詳細</a> <a href="mailto:a@b.jp">連絡</a>'
    assert text(html, LinkMode.DROP) == "詳細 連絡\n"


# --- bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 100_000 + "deep" + "</div>" * 100_000,
        "<div>" * 100_000 + "deep",
        "<b>" * 100_000 + "deep",
        "<table><tr><td>" * 20_000 + "deep",
        "<ul><li>" * 50_000 + "deep",
        "<blockquote>" * 50_000 + "deep",
        "<a href='https://x.jp/'>" * 50_000 + "deep",
        "<pre>" * 50_000 + "deep",
    ],
)
def test_deep_nesting_keeps_everything(html: str) -> None:
    out = text("<p>start</p>" + html + "<p>after</p>")
    assert_well_formed(out, html)
    assert out.startswith("start\n")
    assert "deep" in out
    assert "after\n" in out


def test_deep_quotes_and_lists_indent_only_so_far() -> None:
    out = text("<blockquote>" * 1000 + "deep")
    assert out == "> " * 8 + "deep\n"


@pytest.mark.parametrize(
    "html",
    [
        "<p " + " ".join(f"a{i}=1" for i in range(50_000)) + ">many attributes</p>",
        '<p style="' + "/*" * 100_000 + '">comment starts</p>',
        "<pre>" + " " * 200_000 + "x \n</pre>many spaces",
        "<p>" + "&nbsp;" * 100_000 + "x </p>no-break spaces",
    ],
)
def test_hostile_shapes_convert_in_linear_time(html: str) -> None:
    # (No timing assertion: each of these took seconds to minutes before it was made linear.)
    assert_well_formed(text(html), html)


def test_large_input_converts_completely() -> None:
    html = "<p>段落です。<a href='https://ex.jp/'>リンク</a></p>" * 20_000
    out = text(html)
    assert out.count("段落です。リンク <https://ex.jp/>") == 20_000


def test_threads_can_convert_at_the_same_time() -> None:
    pages = [f"<p>page {i}</p>" * 200 for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: text(p), pages))
    assert results == [text(p) for p in pages]


# --- properties ------------------------------------------------------------------------------

TAGS = [
    "p", "div", "span", "b", "a", "table", "tr", "td", "th", "ul", "ol", "li", "pre",
    "blockquote", "br", "hr", "img", "script", "style", "h1", "dl", "dt", "dd", "ruby", "rt",
    "svg", "iframe", "noscript", "head", "body", "html", "font", "center",
]  # fmt: skip
ATTRS = [
    "", ' href="https://ex.jp/x"', ' href="javascript:§evil()"', ' href="mailto:a@b.jp"',
    ' style="display:none"', ' style="font-size:0"', " hidden", ' alt="画像"', ' start="x"',
    ' style="color:red"', ' href="data:text/html,§x"',
]  # fmt: skip
WORDS = ["お知らせ", "text", " ", "\n", "&amp;", "&nbsp;", "&#0;", "&#x202e;", "①", "<", "&", "\t"]


UNMARKED_TEXT = st.text(alphabet=st.characters(blacklist_characters="§"), max_size=8)
OPEN_TAGS = st.builds("<{}{}>".format, st.sampled_from(TAGS), st.sampled_from(ATTRS))
CLOSE_TAGS = st.builds("</{}>".format, st.sampled_from(TAGS))
SOUP = st.lists(
    st.one_of(OPEN_TAGS, CLOSE_TAGS, st.sampled_from(WORDS), UNMARKED_TEXT), max_size=60
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_converts(untrusted: str) -> None:
    for mode in LinkMode:
        assert_well_formed(html_to_text(untrusted, mode), untrusted)


@settings(max_examples=400, deadline=None)
@given(SOUP)
def test_any_tag_soup_converts(soup: str) -> None:
    for mode in LinkMode:
        out = html_to_text(soup, mode)
        assert_well_formed(out, soup)
        assert "§" not in out  # only the script and data URLs carry it


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<&", blacklist_categories=["Cs"])))
def test_plain_text_comes_back_collapsed(plain: str) -> None:
    out = text(plain)
    spaced = re.sub("[\r\f\v\x1c-\x1e\x85\u2028\u2029]", " ", plain.replace("\x00", "\ufffd"))
    # Controls and the bidi controls (safetext.BIDI) are never shown.
    visible = re.sub(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]", "", spaced)
    assert out.split() == visible.replace("\xa0", " ").split()


# --- hiding by <style> rules with simple selectors ------------------------------------------

SHOWN, SECRET = "見える本文です", "隠された指示文"
# Declarations that hide for good or for the text, as inline styles do.
HIDING_DECLARATIONS = [
    "display:none",
    "visibility:hidden",
    "font-size:0",
    "opacity:0",
    "mso-hide:all",
    "color:transparent",
    "max-height:0;overflow:hidden",
    "DISPLAY : NONE !important",
]


def styled(css: str, body: str) -> str:
    return f"<html><head><style>{css}</style></head><body><p>{SHOWN}</p>{body}</body></html>"


@pytest.mark.parametrize("declarations", HIDING_DECLARATIONS)
@pytest.mark.parametrize(
    ("selector", "element"),
    [
        (".x", '<p class="x">{}</p>'),
        (".x", '<div class="a x b"><span>{}</span></div>'),
        ("p.x", '<p class="x">{}</p>'),
        ("#y", '<td id="y">{}</td>'),
        ("div#y", '<div id="y">{}</div>'),
        (".q, .x", '<p class="x">{}</p>'),
        (".X", '<p class="x">{}</p>'),
        (".a .x", '<div class="a"><p class="x">{}</p></div>'),
        ("[class=x]", '<p class="x">{}</p>'),
    ],
)
def test_a_simple_style_sheet_rule_hides_like_an_inline_style(
    declarations: str, selector: str, element: str
) -> None:
    out = text(styled(f"{selector} {{ {declarations} }}", element.format(SECRET)))
    assert SHOWN in out
    assert SECRET not in out


@pytest.mark.parametrize(
    ("css", "element"),
    [
        (".x{display:none}", '<p class="x" style="display:block">{}</p>'),  # inline wins
        (".x{font-size:0}", '<div class="x"><span style="font-size:14px">{}</span></div>'),
        (".x{display:none}", '<p class="xx">{}</p>'),  # another class
        ("span.x{display:none}", '<p class="x">{}</p>'),  # another tag
        ("@media (max-width:480px){.x{display:none}}", '<p class="x">{}</p>'),  # mobile only
        (".b .x{display:none}", '<div class="a"><p class="x">{}</p></div>'),  # no .b above
        (".x:hover{display:none}", '<p class="x">{}</p>'),
        (".x{display:none} .x{display:block}", '<p class="x">{}</p>'),  # later rule wins
        ("#y{display:block} .x{display:none}", '<p class="x" id="y">{}</p>'),  # id wins
        (".x{color:transparent}.y{color:red}", '<p class="x"><b class="y">{}</b></p>'),
    ],
)
def test_what_the_cascade_shows_stays(css: str, element: str) -> None:
    out = text(styled(css, element.format(SHOWN + "2")))
    assert SHOWN + "2" in out


def test_important_in_a_rule_beats_an_inline_style() -> None:
    out = text(
        styled(".x{display:none!important}", f'<p class="x" style="display:block">{SECRET}</p>')
    )
    assert SECRET not in out


def test_a_style_in_the_body_hides_the_elements_before_and_after_it() -> None:
    html = (
        f'<body><p>{SHOWN}</p><p class="x">{SECRET}1</p><style>.x{{display:none}}</style>'
        f'<p class="x">{SECRET}2</p></body>'
    )
    out = text(html)
    assert SHOWN in out
    assert SECRET not in out


def test_style_sheets_beyond_their_limits_hide_nothing() -> None:
    many = "".join(f".c{i}{{display:none}}" for i in range(5000))
    out = text(styled(many, f'<p class="c10">{SECRET}</p><p style="display:none">{SECRET}2</p>'))
    assert SECRET in out  # fail-safe: shown, never hidden
    assert SECRET + "2" in out
    huge = "/*" + "x" * (300 * 1024) + "*/ .x{display:none}"
    assert SECRET in text(styled(huge, f'<p class="x">{SECRET}</p>'))


@given(st.text(alphabet="{}.#,;:@ax-/*", max_size=200))
@settings(max_examples=200)
def test_any_style_sheet_is_read_without_error(css: str) -> None:
    out = text(styled(css, f'<p class="a">{SHOWN}2</p>'))
    assert SHOWN in out
