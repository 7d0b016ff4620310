"""OpenDocument (odt/ods/odp/odg and their templates): rebuilt without code or reach-outs.

Threat model: see :mod:`sanitizers.cdr.odf_package` (macros, scripts, event listeners, DDE,
linked sections/sheets/images, database and form submissions, remote templates, fetching
formulas, embedded objects), plus XML and zip attacks on the reader.

What is done: the package is **rebuilt**, never patched. Only ``content.xml``,
``styles.xml``, ``meta.xml`` and ``settings.xml`` are kept as XML, each parsed with lxml (no
DTD, no entities, no network; a DTD removes the file) and written anew; pictures
(``Pictures/``) and the thumbnail are kept only as checked media (raster images re-encoded
from their pixels by :mod:`sanitizers.cdr.ooxml_media`); every other part goes: macro
libraries, scripts and dialogs (``document_macro``), embedded objects and their previews
(``embedded_package``, ``ole_object`` for an OLE part), menu and toolbar customisation
(``custom_ui`` when it names a macro), signatures (they cannot survive a rebuild). In the XML,
the elements of :data:`~sanitizers.cdr.odf_package.ELEMENT_CODES` are removed (an embedded
object with the frame that shows it), the fields of ``UNWRAPPED`` are replaced by the text
they show, any attribute holding a macro URL is removed (``document_macro``), a hyperlink
whose target is not inside the document loses its target and keeps its text
(``hyperlink``), any other ``xlink:href`` that does not name a kept part removes its element
(``external_relationship``; in a form only the address goes), and a dangerous formula
(:func:`~sanitizers.cdr.odf_package.formula_danger`) is removed — from a cell its cached value
stays, a validation, conditional style or named expression goes whole. The manifest is
written from what was kept, ``mimetype`` first and stored, as the format requires.

Output is verified independently (:mod:`sanitizers.cdr.odf_verify`). An encrypted package is
removed (``encrypted``); a database, formula, chart or master document is not rebuilt
(``unsupported_type``).

Deliberately left alone: text, styles, tables, drawings, charts' cached pictures are not
(their objects go), annotations, tracked changes, document properties, form controls
without their events and submit addresses, formulas that neither fetch nor call.
"""

from __future__ import annotations

import io
import mimetypes
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, cast

from lxml import etree

from sanitizers.cdr import olescan
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.findings import rebuilt_outcome
from sanitizers.cdr.odf_package import (
    DRAW_NS,
    ELEMENT_CODES,
    FORM_NS,
    FORMULA_ATTRIBUTES,
    HREF,
    HYPERLINKS,
    MACRO_DIRECTORIES,
    MANIFEST,
    MANIFEST_NS,
    MEDIA_DIRECTORIES,
    MIMETYPE,
    OBJECT_DIRECTORIES,
    REBUILT_TYPES,
    TABLE_NS,
    TEXT_NS,
    UI_DIRECTORY,
    UNWRAPPED,
    XML_PARTS,
    Manifest,
    candidates,
    formula_danger,
    is_macro_url,
    name_of,
    part_of,
    read_manifest,
)
from sanitizers.cdr.odf_verify import find_dangerous
from sanitizers.cdr.ooxml_media import Media, rebuild_media
from sanitizers.cdr.ooxml_package import (
    FIXED_DATE,
    parse_xml,
    read_package,
    remove,
    serialize,
    unwrap,
)
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.filenames import delivered_name
from sanitizers.vocabulary import Reason, RemovedItem

# Cells keep their cached value when their formula goes; other holders of a formula go whole.
_FORMULA_KEEPS_ELEMENT = frozenset(
    {(TABLE_NS, "table-cell"), (TABLE_NS, "covered-table-cell")}
) | frozenset((TEXT_NS, local) for local in ("formula", "expression", "variable-set"))
FRAME = (DRAW_NS, "frame")
_MANIFEST_VERSIONS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4"})


@dataclass
class _Rebuild:
    """The state of one rebuild."""

    parts: dict[str, bytes]
    manifest: Manifest
    policy: CdrPolicy
    allowed_schemes: Collection[str]
    removed: list[RemovedItem] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)

    def note(self, code: RemovedItem | str) -> None:
        if code and code not in self.removed:
            self.removed.append(RemovedItem(code))


def _media_type(untrusted_data: dict[str, bytes], manifest: Manifest) -> str:
    mimetype = untrusted_data.get(MIMETYPE, b"").decode("ascii", "replace").strip()
    media_type = mimetype or manifest.media_type
    if media_type not in REBUILT_TYPES:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, f"OpenDocument type {media_type!r}"[:100])
    return media_type


def _sort_parts(state: _Rebuild) -> None:
    """Decide every part that is not kept XML: media checked and kept, the rest noted."""
    for name, content in state.parts.items():
        if name in (MIMETYPE, MANIFEST) or name in XML_PARTS:
            continue
        if name.startswith(MEDIA_DIRECTORIES) and name.count("/") == 1:
            # OpenOffice.org wrote pictures into the manifest with an empty media type.
            ctype = state.manifest.entries.get(name) or mimetypes.guess_type(name)[0] or ""
            verdict = rebuild_media(content, ctype, name, state.policy)
            if isinstance(verdict, Media):
                state.media[name] = verdict
                for code in verdict.removed:
                    state.note(code)
            else:
                state.note(verdict)
        elif olescan.is_ole(content):
            state.note(RemovedItem.OLE_OBJECT)
        elif name.startswith(MACRO_DIRECTORIES):
            state.note(RemovedItem.DOCUMENT_MACRO)
        elif name.startswith(OBJECT_DIRECTORIES):
            state.note(RemovedItem.EMBEDDED_PACKAGE)
        elif name.startswith(UI_DIRECTORY) and any(
            marker in content.lower() for marker in (b"macro:", b"vnd.sun.star.script")
        ):
            state.note(RemovedItem.CUSTOM_UI)


def _drop_attribute(elem: etree._Element, attribute: str) -> None:
    if attribute in elem.attrib:
        del elem.attrib[attribute]


def _href_action(
    elem: etree._Element, key: tuple[str, str], state: _Rebuild
) -> Callable[[], None] | None:
    """What to do about an element's ``xlink:href`` (``None``: keep it)."""
    untrusted_href = str(elem.get(HREF) or "")
    if is_macro_url(untrusted_href):
        state.note(RemovedItem.DOCUMENT_MACRO)
    elif key in HYPERLINKS:
        if untrusted_href.strip().startswith("#"):
            return None
        state.note(RemovedItem.HYPERLINK)
    else:
        part = part_of(untrusted_href)
        if part is not None and part in state.media:
            return None
        if part is None:
            state.note(RemovedItem.EXTERNAL_RELATIONSHIP)
    if key in HYPERLINKS:
        return partial(unwrap, elem)
    if key[0] == FORM_NS:
        return partial(_drop_attribute, elem, HREF)
    return partial(remove, elem)


def _attribute_actions(
    elem: etree._Element, key: tuple[str, str], state: _Rebuild
) -> list[Callable[[], None]]:
    actions: list[Callable[[], None]] = []
    for attr, value in elem.attrib.items():
        attr_name = str(attr)
        if attr_name == HREF:
            continue
        local = etree.QName(attr_name).localname
        if is_macro_url(str(value)):
            state.note(RemovedItem.DOCUMENT_MACRO)
            actions.append(partial(_drop_attribute, elem, attr_name))
        elif local in FORMULA_ATTRIBUTES:
            code = formula_danger(str(value), state.allowed_schemes)
            if code is None:
                continue
            state.note(code)
            if key in _FORMULA_KEEPS_ELEMENT:
                actions.append(partial(_drop_attribute, elem, attr_name))
            else:
                actions.append(partial(remove, elem))
    return actions


def _rebuild_xml(name: str, state: _Rebuild) -> bytes:
    root = parse_xml(state.parts[name], name)
    # Comments and processing instructions go; of the elements, only the candidates can need
    # anything (a large spreadsheet's cells are never walked one by one in Python).
    actions: list[Callable[[], None]] = [
        partial(remove, node)
        for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity)
    ]
    for elem in candidates(root):
        key = name_of(elem)
        code = ELEMENT_CODES.get(key)
        if code is not None:
            state.note(code)
            doomed = elem
            parent = elem.getparent()
            if key[1].startswith("object") and parent is not None and name_of(parent) == FRAME:
                doomed = parent  # the frame shows the object and its replacement picture
            actions.append(partial(remove, doomed))
            continue
        code = UNWRAPPED.get(key)
        if code is not None:
            state.note(code)
            actions.append(partial(unwrap, elem))
        if elem.get(HREF) is not None:
            action = _href_action(elem, key, state)
            if action is not None:
                actions.append(action)
        actions.extend(_attribute_actions(elem, key, state))
    # Children before parents are not needed: removing a detached element is harmless, and
    # unwrapping moves children that keep their own pending actions.
    for action in actions:
        action()
    return serialize(root)


def _manifest(state: _Rebuild, media_type: str, kept_xml: list[str]) -> bytes:
    nsmap = cast(Any, {"manifest": MANIFEST_NS})
    version = state.manifest.version if state.manifest.version in _MANIFEST_VERSIONS else ""
    root = etree.Element(f"{{{MANIFEST_NS}}}manifest", nsmap=nsmap)
    if version:
        root.set(f"{{{MANIFEST_NS}}}version", version)

    def entry(path: str, ctype: str) -> None:
        elem = etree.SubElement(root, f"{{{MANIFEST_NS}}}file-entry")
        elem.set(f"{{{MANIFEST_NS}}}full-path", path)
        elem.set(f"{{{MANIFEST_NS}}}media-type", ctype)
        if path == "/" and version:
            elem.set(f"{{{MANIFEST_NS}}}version", version)

    entry("/", media_type)
    for name in kept_xml:
        entry(name, "text/xml")
    for name, media in state.media.items():
        entry(name, media.ctype)
    return serialize(root)


@dataclass(frozen=True)
class Package:
    """A rebuilt OpenDocument package."""

    data: bytes
    media_type: str
    removed: tuple[RemovedItem, ...]


def rebuild_package(
    untrusted_data: bytes, policy: CdrPolicy, allowed_schemes: Collection[str]
) -> Package:
    parts = read_package(untrusted_data, policy)
    if MANIFEST not in parts or "content.xml" not in parts:
        raise SanitizeError(Reason.MALFORMED, "no manifest or content.xml")
    state = _Rebuild(parts, read_manifest(parts[MANIFEST]), policy, allowed_schemes)
    media_type = _media_type(parts, state.manifest)
    _sort_parts(state)
    kept_xml: list[str] = [name for name in XML_PARTS if name in parts]
    rebuilt = {name: _rebuild_xml(name, state) for name in kept_xml}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:

        def put(name: str, content: bytes, method: int = zipfile.ZIP_DEFLATED) -> None:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = method
            out.writestr(info, content)

        put(MIMETYPE, media_type.encode("ascii"), zipfile.ZIP_STORED)
        put(MANIFEST, _manifest(state, media_type, kept_xml))
        for name, content in rebuilt.items():
            put(name, content)
        for name, media in state.media.items():
            put(name, media.content)
    return Package(buffer.getvalue(), media_type, tuple(state.removed))


class OdfSanitizer(CdrSanitizer):
    """Rebuilds an OpenDocument package without active content; see the module docstring."""

    kind: ClassVar[str] = "odf"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        package = rebuild_package(untrusted_data, ctx.policy, ctx.allowed_schemes)
        return rebuilt_outcome(
            package.removed,
            rebuilt=package.data,
            filename=filename,
            rebuilt_name=delivered_name(filename, package.media_type),
            content_type=package.media_type,
            keep_if_clean=ctx.keep_if_clean,
        )

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        found = find_dangerous(data, ctx.policy, ctx.allowed_schemes)
        if found:
            raise SanitizeError(Reason.VERIFY_FAILED, ",".join(sorted(found))[:200])
