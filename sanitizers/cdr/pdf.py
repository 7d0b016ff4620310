"""PDF sanitizer: rebuild a PDF with pikepdf (qpdf) without its active and embedded content.

Threat model: the PDF is hostile. It may run JavaScript when opened or when a page, annotation
or form field is touched (``/OpenAction``, ``/AA``, the ``/Names/JavaScript`` tree, ``/JS``);
start programs or open files (``/Launch``, remote ``/GoToR``/``/GoToE``); send form data or
pull data in (``/SubmitForm``, ``/ImportData``); carry files (``/EmbeddedFiles``, ``/EF``,
``/AF``, FileAttachment annotations, portfolios); carry Flash/3D/video (``/RichMedia``,
Screen/Movie/Sound annotations, Rendition actions) or an XFA form (``/XFA``). It may also be
built to exhaust the reader: millions of objects or pages, a page tree nested thousands deep,
reference cycles, or a Flate stream that inflates to gigabytes.

What is done:

* every indirect object, and every direct object inside it, is visited exactly once
  (iteratively, with an explicit stack; indirect references are never followed, so cycles
  cannot loop) and every dangerous key is deleted and every dangerous dictionary emptied
  in place, so no remaining reference to it can still act. Names are compared after qpdf
  has decoded ``#xx`` escapes, so ``/J#61vaScript`` is ``/JavaScript``;
* URI actions stay only when their scheme is in ``policy.links.allowed_schemes``
  (:mod:`sanitizers.links`; ``javascript:``, ``file:``, ``ms-msdt:``… are ``unsafe_link``);
  a relative URI has no scheme and is removed too, and so is the catalog's ``/URI /Base``
  that relative links would be resolved against when its scheme is not allowed;
* annotations are judged by their ``/Subtype`` and content, never by the optional ``/Type``
  (a 3D, Movie, RichMedia, Screen or Sound annotation without ``/Type /Annot`` is removed
  too, and so is a 3D stream's ``/OnInstantiate`` script); a ``/Thread`` action to another
  file (``/F``) is ``remote_goto``;
* a fully new file is written (no incremental update, object streams regenerated, not
  linearized, unencrypted, deterministic ``/ID``); only objects reachable from the new
  trailer survive, so orphaned payloads (an old revision's JavaScript) are dropped;
* ``verify`` re-opens the written bytes with a fresh parser and walks every object again;
  any finding is ``verify_failed``.

Decisions: a PDF that needs a user password is held (``encrypted``), awaiting a password
(:meth:`PdfSanitizer.decrypt`). A PDF with only an
owner password (empty user password, "permissions") opens without a password, so it is
sanitized and written unencrypted: the restrictions are advisory and not a security boundary,
and the recipient must be able to read what they receive. ``/OpenAction`` is removed even when
it only names a page to open at. A chain of actions (``/Next``) that contains a dangerous
action loses that action and what follows it.

Deliberately left alone: page content streams, fonts and images (passed through, not
re-encoded: a font or image exploit in a viewer is not addressed here), XMP and Info
metadata, outlines, in-document GoTo/Named/Hide actions, annotations other than those above,
AcroForm fields (minus their actions and XFA), digital signatures (which the rewrite
invalidates), optional content.
"""

from __future__ import annotations

import io
import threading
import warnings
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import ClassVar

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded, Locked, SanitizeError
from sanitizers.links import UNSAFE_LINK, is_allowed
from sanitizers.vocabulary import Action, Reason, RemovedItem

# Action subtypes (/S) -> code.
_ACTIONS: dict[str, RemovedItem] = {
    "/JavaScript": RemovedItem.JAVASCRIPT,
    "/ECMAScript": RemovedItem.JAVASCRIPT,
    "/Launch": RemovedItem.LAUNCH,
    "/SubmitForm": RemovedItem.SUBMIT_FORM,
    "/ImportData": RemovedItem.IMPORT_DATA,
    "/GoToR": RemovedItem.REMOTE_GOTO,
    "/GoToE": RemovedItem.REMOTE_GOTO,
    "/RichMediaExecute": RemovedItem.RICH_MEDIA,
    "/Rendition": RemovedItem.RICH_MEDIA,
    "/Movie": RemovedItem.RICH_MEDIA,
    "/Sound": RemovedItem.RICH_MEDIA,
}
# Annotation subtypes (/Subtype) -> code.
_ANNOTATIONS: dict[str, RemovedItem] = {
    "/FileAttachment": RemovedItem.FILE_ATTACHMENT,
    "/RichMedia": RemovedItem.RICH_MEDIA,
    "/Screen": RemovedItem.RICH_MEDIA,
    "/Movie": RemovedItem.RICH_MEDIA,
    "/Sound": RemovedItem.RICH_MEDIA,
    "/3D": RemovedItem.RICH_MEDIA,
}
# Object types (/Type) -> code.
_TYPES: dict[str, RemovedItem] = {
    "/EmbeddedFile": RemovedItem.EMBEDDED_FILE,
    "/3D": RemovedItem.RICH_MEDIA,
    "/RichMediaContent": RemovedItem.RICH_MEDIA,
    "/RichMediaSettings": RemovedItem.RICH_MEDIA,
}
# Keys deleted wherever they appear -> code.
_KEYS: dict[str, RemovedItem] = {
    "/JS": RemovedItem.JAVASCRIPT,
    "/JavaScript": RemovedItem.JAVASCRIPT,  # the /Names/JavaScript tree
    "/OpenAction": RemovedItem.OPEN_ACTION,
    "/AA": RemovedItem.ADDITIONAL_ACTIONS,
    "/EmbeddedFiles": RemovedItem.EMBEDDED_FILE,  # the /Names/EmbeddedFiles tree
    "/EF": RemovedItem.EMBEDDED_FILE,  # a file specification's embedded stream
    "/AF": RemovedItem.EMBEDDED_FILE,  # PDF 2.0 associated files
    "/Collection": RemovedItem.EMBEDDED_FILE,  # portfolio view
    "/RichMediaContent": RemovedItem.RICH_MEDIA,
    "/RichMediaSettings": RemovedItem.RICH_MEDIA,
    "/3DD": RemovedItem.RICH_MEDIA,  # a 3D annotation's stream (its scripts run when it is shown)
    "/OnInstantiate": RemovedItem.JAVASCRIPT,  # the script of a 3D stream
    "/XFA": RemovedItem.XFA,
    "/NeedsRendering": RemovedItem.XFA,
}
# Filters qpdf decodes when rewriting (the others, image codecs, pass through encoded).
_FLATE = frozenset({"/FlateDecode", "/Fl"})
_GENERALIZED = frozenset(
    {"/FlateDecode", "/Fl", "/LZWDecode", "/LZW", "/RunLengthDecode", "/RL"}
    | {"/ASCIIHexDecode", "/AHx", "/ASCII85Decode", "/A85"}
)

_limits_lock = threading.RLock()  # qpdf's limits are process-wide

_REASON_ORDER: tuple[tuple[Reason, frozenset[RemovedItem]], ...] = (
    (
        Reason.ACTIVE_CONTENT,
        frozenset(
            {
                RemovedItem.JAVASCRIPT,
                RemovedItem.OPEN_ACTION,
                RemovedItem.ADDITIONAL_ACTIONS,
                RemovedItem.LAUNCH,
                RemovedItem.SUBMIT_FORM,
                RemovedItem.IMPORT_DATA,
            }
            | {RemovedItem.RICH_MEDIA, RemovedItem.XFA}
        ),
    ),
    (Reason.EMBEDDED_OBJECT, frozenset({RemovedItem.EMBEDDED_FILE, RemovedItem.FILE_ATTACHMENT})),
    (Reason.EXTERNAL_REFERENCE, frozenset({RemovedItem.REMOTE_GOTO, UNSAFE_LINK})),
)


def reason_for(removed: tuple[RemovedItem, ...]) -> Reason:
    """The outcome's reason: the gravest kind of thing that was removed, or ``clean``."""
    for reason, codes in _REASON_ORDER:
        if codes.intersection(removed):
            return reason
    return Reason.CLEAN


def _name(value: object) -> str | None:
    return str(value) if isinstance(value, Name) else None


_S = Name("/S")
_SUBTYPE = Name("/Subtype")
_TYPE = Name("/Type")
_URI = Name("/URI")
_BASE = Name("/Base")


def _text(value: object) -> str:
    """A PDF string as text (bytes that are not text read as Latin-1), else ``""``."""
    if isinstance(value, pikepdf.String):
        try:
            return str(value)
        except UnicodeDecodeError:
            return bytes(value).decode("latin-1")
    return ""


def _danger(obj: pikepdf.Object, allowed: Collection[str]) -> RemovedItem | None:
    """The code of a dictionary (or stream) that must not survive, else ``None``.
    Annotations are judged by ``/Subtype`` alone: ``/Type /Annot`` is optional."""
    if not isinstance(obj, (Dictionary, Stream)):
        return None
    keys = obj.keys()
    if "/S" in keys:
        action = _name(obj.get(_S))
        if action in _ACTIONS:
            return _ACTIONS[action]
        if action == "/URI" and not is_allowed(_text(obj.get(_URI)), allowed):
            return UNSAFE_LINK
        if action == "/Thread" and "/F" in keys:
            return RemovedItem.REMOTE_GOTO
    if "/Base" in keys and not is_allowed(_text(obj.get(_BASE)), allowed):
        return UNSAFE_LINK  # a URI dictionary's base (``file://host/``) for relative links
    if "/Subtype" in keys:
        subtype = _name(obj.get(_SUBTYPE))
        if subtype in _ANNOTATIONS:
            return _ANNOTATIONS[subtype]
    kind = _name(obj.get(_TYPE)) if "/Type" in keys else None
    if kind in _TYPES:
        return _TYPES[kind]
    return None


def _children(obj: pikepdf.Object) -> Iterator[tuple[str | int, pikepdf.Object]]:
    if isinstance(obj, (Dictionary, Stream)):
        for key in list(obj.keys()):
            yield key, obj[key]
    elif isinstance(obj, Array):
        for index in range(len(obj)):
            yield index, obj[index]


def _containers(root: pikepdf.Object) -> Iterator[pikepdf.Object]:
    """``root`` and every direct container inside it; indirect references are not followed
    (each indirect object is visited on its own), so reference cycles cannot loop."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        for _key, child in _children(node):
            if isinstance(child, (Dictionary, Stream, Array)) and not child.is_indirect:
                stack.append(child)


def _empty(obj: pikepdf.Object) -> None:
    """Neutralize a dangerous dictionary in place: every key removed, stream data erased."""
    if isinstance(obj, Stream):
        obj.write(b"")
    for key in list(obj.keys()):
        if key != "/Length":  # qpdf owns a stream's /Length
            del obj[key]


def _inner_codes(value: pikepdf.Object, allowed: Collection[str]) -> set[RemovedItem]:
    """Codes of what a direct value about to be deleted holds (``/AA`` → ``launch``…), so the
    notice names it; indirect objects inside are visited, and emptied, on their own."""
    if not isinstance(value, (Dictionary, Stream, Array)) or value.is_indirect:
        return set()
    codes: set[RemovedItem] = set()
    for node in _containers(value):
        code = _danger(node, allowed)
        if code is not None:
            codes.add(code)
    return codes


def _disarm_objects(pdf: pikepdf.Pdf, allowed: Collection[str]) -> set[RemovedItem]:
    removed: set[RemovedItem] = set()
    objects = [o for o in pdf.objects if isinstance(o, (Dictionary, Stream, Array))]
    # Dangerous indirect objects, found first so a reference to one is recognised cheaply.
    bad: dict[tuple[int, int], RemovedItem] = {}
    for top in objects:
        code = _danger(top, allowed)
        if code is not None:
            bad[top.objgen] = code

    def code_of(child: pikepdf.Object) -> RemovedItem | None:
        if not isinstance(child, (Dictionary, Stream)):
            return None
        if child.is_indirect:
            return bad.get(child.objgen)
        return _danger(child, allowed)

    for top in objects:
        if top.objgen in bad:
            removed.add(bad[top.objgen])
            _empty(top)
            continue
        # Direct children are judged by their parent, which drops the reference to them.
        for node in _containers(top):
            if isinstance(node, Array):
                for index in reversed(range(len(node))):
                    code = code_of(node[index])
                    if code is not None:
                        removed.add(code)
                        removed.update(_inner_codes(node[index], allowed))
                        del node[index]
                continue
            for key in list(node.keys()):
                child = node[key]
                code = _KEYS.get(key) or code_of(child)
                if code is not None:
                    removed.add(code)
                    removed.update(_inner_codes(child, allowed))
                    del node[key]
    return removed


def findings(pdf: pikepdf.Pdf, allowed: Collection[str]) -> list[str]:
    """Everything dangerous still in ``pdf``, as ``code@objgen`` strings (read only)."""
    found: list[str] = []
    for top in pdf.objects:
        if not isinstance(top, (Dictionary, Stream, Array)):
            continue
        where = "{}/{}".format(*top.objgen)
        for node in _containers(top):
            code = _danger(node, allowed)
            if code is not None:
                found.append(f"{code}@{where}")
            if isinstance(node, (Dictionary, Stream)):
                keys = [str(k) for k in node.keys()]  # noqa: SIM118 - a Stream is not iterable
                found.extend(f"{_KEYS[k]}@{where}" for k in keys if k in _KEYS)
    return found


def _filters(stream: Stream) -> list[str]:
    value = stream.get(Name.Filter)
    if isinstance(value, Name):
        return [str(value)]
    if isinstance(value, Array):
        return [str(item) for item in value if isinstance(item, Name)]
    return []


def _decoded_size(stream: Stream, limit: int) -> int:
    """The size qpdf will decode ``stream`` to when rewriting, never inflating past ``limit``."""
    filters = _filters(stream)
    raw = stream.read_raw_bytes()
    if not filters or not _GENERALIZED.intersection(filters):
        return len(raw)
    if filters[0] in _FLATE:
        inflater = zlib.decompressobj()
        try:
            first = inflater.decompress(raw, limit + 1)
        except zlib.error:
            return len(raw)  # undecodable: qpdf warns and copies it encoded
        if len(first) > limit:
            raise LimitExceeded(Reason.LIMIT_SIZE, f"stream {stream.objgen} inflates past {limit}")
        if len(filters) == 1 or not _GENERALIZED.intersection(filters[1:]):
            return len(first)
    # Rare chains (LZW, RunLength, Flate after ASCII85…): let qpdf decode, bounded by its own
    # per-filter memory limits (set in _qpdf_limits) and by the process's memory limit.
    try:
        return len(stream.read_bytes(decode_level=pikepdf.StreamDecodeLevel.generalized))
    except pikepdf.PdfError:  # includes DataDecodingError
        return len(raw)  # not decodable at this level: qpdf copies it encoded


@contextmanager
def _qpdf_limits(policy: CdrPolicy) -> Iterator[None]:
    """qpdf's decoder memory limits for the duration of one file (they are process-wide)."""
    cap = policy.pdf_max_stream_bytes
    with _limits_lock:
        yield from _with_limits(cap)


def _with_limits(cap: int) -> Iterator[None]:
    previous = pikepdf.settings.set_qpdf_limits(
        flate_max_memory=cap, run_length_max_memory=cap, png_max_memory=cap, tiff_max_memory=cap
    )
    try:
        yield
    finally:
        pikepdf.settings.set_qpdf_limits(
            flate_max_memory=int(previous["flate_max_memory"]),
            run_length_max_memory=int(previous["run_length_max_memory"]),
            png_max_memory=int(previous["png_max_memory"]),
            tiff_max_memory=int(previous["tiff_max_memory"]),
        )


def _check_page_tree(pdf: pikepdf.Pdf, policy: CdrPolicy) -> None:
    """Walk /Pages iteratively before qpdf flattens it: bounded depth and count, no loops."""
    root = pdf.Root.get(Name.Pages)
    if not isinstance(root, Dictionary):
        raise SanitizeError(Reason.MALFORMED, "no page tree")
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[pikepdf.Object, int]] = [(root, 0)]
    leaves = 0
    while stack:
        node, depth = stack.pop()
        if node.is_indirect:
            if node.objgen in seen:
                continue  # a cycle or a shared node: qpdf repairs or rejects it
            seen.add(node.objgen)
        if depth > policy.pdf_max_page_tree_depth:
            raise LimitExceeded(Reason.LIMIT_DEPTH, f"page tree deeper than {depth - 1}")
        kids = node.get(Name.Kids)
        if isinstance(kids, Array):
            stack.extend((kid, depth + 1) for kid in kids if isinstance(kid, Dictionary))
        else:
            leaves += 1
            if leaves > policy.pdf_max_pages:
                raise LimitExceeded(Reason.LIMIT_ENTRIES, f"more than {policy.pdf_max_pages} pages")


def _open(data: bytes) -> pikepdf.Pdf:
    try:
        return pikepdf.open(io.BytesIO(data), conversion_mode="explicit")
    except pikepdf.PasswordError as exc:
        raise Locked(Reason.ENCRYPTED, "needs a password") from exc
    except pikepdf.PdfError as exc:
        raise SanitizeError(Reason.MALFORMED, str(exc)[:200]) from exc


class PdfSanitizer(CdrSanitizer):
    """Rebuilds PDFs without scripts, actions that leave the document, embedded files,
    rich media and XFA."""

    kind: ClassVar[str] = "pdf"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        policy = ctx.policy
        with _qpdf_limits(policy), _open(untrusted_data) as pdf:
            objects = len(pdf.objects)
            if objects > policy.pdf_max_objects:
                raise LimitExceeded(
                    Reason.LIMIT_ENTRIES, f"{objects} objects > {policy.pdf_max_objects}"
                )
            _check_page_tree(pdf, policy)
            pages = len(pdf.pages)
            if pages == 0:
                raise SanitizeError(Reason.MALFORMED, "no pages")
            if pages > policy.pdf_max_pages:
                raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{pages} pages > {policy.pdf_max_pages}")
            removed = _disarm_objects(pdf, ctx.allowed_schemes)
            # Bound what qpdf will inflate while writing (only reachable streams are written,
            # but an unreachable bomb is cheap to measure: its inflation stops at the limit).
            total = 0
            for obj in pdf.objects:
                if isinstance(obj, Stream):
                    total += _decoded_size(obj, policy.pdf_max_stream_bytes)
                    if total > policy.pdf_max_decoded_bytes:
                        raise LimitExceeded(
                            Reason.LIMIT_SIZE, f"streams decode past {policy.pdf_max_decoded_bytes}"
                        )
            codes = tuple(sorted(removed))
            if ctx.keep_if_clean and codes:
                return CdrOutcome.drop(reason_for(codes), ", ".join(codes))
            # Clean under keep_if_clean too: the rewritten file is delivered, never the
            # sender's bytes (data after %%EOF, unreferenced objects are read by nobody).
            out = io.BytesIO()
            with warnings.catch_warnings():
                # Widgets not reachable from /AcroForm: a display matter for Acrobat only.
                warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
                pdf.save(
                    out,
                    linearize=False,
                    object_stream_mode=pikepdf.ObjectStreamMode.generate,
                    compress_streams=True,
                    stream_decode_level=pikepdf.StreamDecodeLevel.generalized,
                    encryption=False,
                    fix_metadata_version=False,
                    deterministic_id=True,
                )
        return CdrOutcome(
            action=Action.SANITIZED,
            reason=reason_for(codes),
            data=out.getvalue(),
            filename=filename,
            content_type="application/pdf",
            removed=codes,
        )

    def decrypt(self, untrusted_data: bytes, password: str, ctx: CdrContext) -> bytes | None:
        """A PDF that needs a user password, opened with ``password`` and written without
        encryption (nothing else changed: :meth:`rebuild` then disarms it)."""
        try:
            pdf = pikepdf.open(io.BytesIO(untrusted_data), password=password)
        except pikepdf.PasswordError:
            return None
        except pikepdf.PdfError as exc:
            raise SanitizeError(Reason.MALFORMED, str(exc)[:200]) from exc
        out = io.BytesIO()
        with _qpdf_limits(ctx.policy), pdf:
            pdf.save(out, encryption=False)
        return out.getvalue()

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        policy = ctx.policy
        with _qpdf_limits(policy), _open(data) as pdf:
            if pdf.is_encrypted:
                raise SanitizeError(Reason.VERIFY_FAILED, "output is encrypted")
            if len(pdf.objects) > policy.pdf_max_objects:
                raise SanitizeError(Reason.VERIFY_FAILED, "too many objects")
            _check_page_tree(pdf, policy)
            if len(pdf.pages) == 0:
                raise SanitizeError(Reason.VERIFY_FAILED, "no pages")
            found = findings(pdf, ctx.allowed_schemes)
            if found:
                raise SanitizeError(Reason.VERIFY_FAILED, ", ".join(sorted(set(found))[:10]))
