"""Undo ``format=flowed`` (RFC 3676): soft line breaks joined, so text reads as written.

A flowed text/plain body ends each soft-broken line with a space; the reader's client joins
it to the next line (with ``DelSp=yes`` the space itself was added by the sender and is
removed, which is how Japanese text, written without spaces, is broken mid-sentence). Left
flowed, every soft break becomes a hard break in the rebuilt mail, often in the middle of a
word or a Japanese sentence.

Rules applied, in order, to each line: the quote depth is the number of leading ``>``; one
space after the quote marks (space-stuffing) is removed; the signature separator ``-- `` is
never flowed and never joined to a flowed line before it (it ends that paragraph); a line
ending in a space flows into the next line of the same quote depth (a change of depth ends
the paragraph). Quoted paragraphs are written back with ``>`` marks and a space. The output
keeps every character of the text but the stuffing and, with DelSp, the soft-break spaces.
Linear in the input; never raises.
"""

from __future__ import annotations

from typing import Final

__all__ = ["unflow"]

_SIGNATURE: Final = "-- "


def unflow(text: str, delsp: bool) -> str:
    """The text with its soft line breaks joined (lines end with ``\\n``)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    paragraph: list[str] = []
    paragraph_depth = 0
    for line in lines:
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        if paragraph and (depth != paragraph_depth or content == _SIGNATURE):
            out.append(_quoted(paragraph_depth, "".join(paragraph)))
            paragraph = []
        paragraph_depth = depth
        soft = content.endswith(" ") and content != _SIGNATURE
        if soft and delsp:
            content = content[:-1]
        paragraph.append(content)
        if not soft:
            out.append(_quoted(depth, "".join(paragraph)))
            paragraph = []
    if paragraph:
        out.append(_quoted(paragraph_depth, "".join(paragraph)))
    return "\n".join(out)


def _quoted(depth: int, content: str) -> str:
    if not depth:
        return content
    return ">" * depth + (" " + content if content else "")
