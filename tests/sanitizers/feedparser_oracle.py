"""The pipeline as it was before issue 13, kept as the oracle of the MIME splitter's tests.

The standard library's compat32 feedparser splits the message; its tree is handed to the same
classification and pipeline as :func:`sanitizers.mimesplit.split`'s, so any difference in the
output comes from the splitting alone. Only the raw limits are checked (the old pipeline
checked parts and depth on its walk, skipping what lay under a part it read as a leaf; the
oracle counts every node, as the splitter does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from unittest import mock

from sanitizers import mime
from sanitizers.errors import LimitExceeded
from sanitizers.mimesplit import Part, check_raw_limits, first_content_type
from sanitizers.policy import Limits
from sanitizers.vocabulary import Reason


def feedparser_split(untrusted_raw: bytes, limits: Limits, deadline: float) -> Part:
    """The stdlib parser's tree in the splitter's shape."""
    check_raw_limits(untrusted_raw, limits)
    try:
        message = BytesParser(policy=compat32).parsebytes(untrusted_raw)
    except RecursionError as exc:
        raise LimitExceeded(Reason.LIMIT_DEPTH, "nesting too deep to parse") from exc
    count = 0

    def part(message: Message, depth: int) -> Part:
        nonlocal count
        count += 1
        if count > limits.max_parts:
            raise LimitExceeded(Reason.LIMIT_PARTS, f"over {limits.max_parts} parts")
        if depth > limits.max_depth:
            raise LimitExceeded(Reason.LIMIT_DEPTH, f"over {limits.max_depth} levels")
        return _part(message, lambda child: part(child, depth + 1))

    return part(message, 0)


def _part(message: Message, convert: Callable[[Message], Part]) -> Part:
    content_type, params, notes = first_content_type(message)
    defects = [type(defect).__name__ for defect in message.defects]
    default_type = message.get_default_type()
    part = Part(
        message, content_type or default_type, params, defects, notes, message.get_content_type()
    )
    payload = vars(message).get("_payload")
    if part.split_as == "message/delivery-status":
        return part  # its header blocks, kept as parts by the stdlib, were never read
    if isinstance(payload, list):
        part.children = [convert(child) for child in payload if isinstance(child, Message)]
    elif isinstance(payload, str):
        part.body = memoryview(payload.encode("ascii", "surrogateescape"))
    return part


@contextmanager
def feedparser_pipeline() -> Iterator[None]:
    """Within: the pipeline splits with the stdlib feedparser."""
    with mock.patch.object(mime, "split", feedparser_split):
        yield
