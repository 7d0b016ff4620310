"""OOXML (docx/xlsx/pptx and the macro-enabled m-variants, templates, slide shows, add-ins).

Threat model: a package built to run code or reach out when opened — VBA projects, Excel 4
macro sheets, ActiveX controls, embedded OLE objects and packages (which carry their own
macros or executables), remote template injection (``attachedTemplate``), external
workbook links and data connections, frames and sub-documents, DDE/DDEAUTO and other
link-pulling fields (``LINK``, ``INCLUDETEXT``, ``INCLUDEPICTURE``, ``IMPORT``), DDE
formulas in cells (``=cmd|'/c calc'!A0``), PowerPoint "run program / macro" actions, the
ribbon customisation (``customUI``, whose callbacks call macros), Office web add-ins,
``altChunk`` (an imported RTF/HTML/MHT document), and XML attacks on the reader (DTDs,
external entities, entity expansion, deep nesting). Also zip bombs and confusing names.

Strict (ISO/IEC 29500 Strict namespaces) and Transitional packages are one format here: every
name is recognised through :mod:`sanitizers.cdr.ooxml_package`. The work is split by section:
the package layer (:mod:`~sanitizers.cdr.ooxml_package`), Word fields and mail merge
(:mod:`~sanitizers.cdr.ooxml_word`, with the field table of :mod:`~sanitizers.cdr.fields`),
spreadsheet formulas (:mod:`~sanitizers.cdr.ooxml_sheet`), binary parts
(:mod:`~sanitizers.cdr.ooxml_media`) and the independent verification
(:mod:`~sanitizers.cdr.ooxml_verify`); this module walks and rebuilds.

What it does: the package is **rebuilt**, never patched. Parts are reached only by walking
relationships from the package root; each kept XML part is parsed with lxml (no DTD, no
entities, no network, no huge trees; a DTD anywhere removes the file) and serialised anew
from the tree; media (images, audio, video, fonts) are copied as bytes; anything else is
dropped — except an embedded macro-free OOXML package (a chart's data workbook, an embedded
document), which is rebuilt by the same rules up to two levels deep, with what was removed
inside it reported for the outer file. ``[Content_Types].xml`` and every ``.rels`` are
written from scratch, macro-enabled content types become macro-free and the file is renamed
(``.docm`` → ``.docx``, ``.xlsm`` → ``.xlsx``, ``.pptm`` → ``.pptx``, ``.dotm`` → ``.dotx``,
``.xltm`` → ``.xltx``, ``.potm`` → ``.potx``, ``.ppsm`` → ``.ppsx``, add-ins
``.xlam``/``.ppam`` → ``.xlsx``/``.pptx``).
Every element that referred to a dropped relationship is removed too (Office calls a
dangling ``r:id`` "unreadable content"); an external hyperlink's text is kept, only the link
goes. Output is verified independently (:mod:`~sanitizers.cdr.ooxml_verify`): oletools finds
no VBA, no part is an OLE file, no relationship is external, no content type is
macro-enabled, no dangerous field or formula remains, every binary part is media of its type
(or, in an ``.xlsb``, a well-formed record stream), and every XML part parses.

Removed-item codes (``CdrOutcome.removed``):

``vba`` VBA project, its signature, key-map customisations and attached toolbars;
``xlm_macro`` Excel 4 macro sheets and dialog sheets (and ``Auto_Open``-style names);
``activex`` ActiveX controls; ``ole_object`` embedded OLE objects; ``embedded_package``
embedded OOXML/other packages; ``alt_chunk`` imported alternative-format chunks;
``custom_ui`` ribbon customisation; ``web_extension`` Office web add-ins;
``external_relationship`` remote templates, frames, sub-documents and other external
targets; ``external_link`` links to other workbooks; ``data_connection`` external data
connections and query tables; ``hyperlink`` external hyperlinks (text kept);
``dde`` DDE/DDEAUTO fields and DDE formulas; ``data_connection`` also covers Word
mail-merge settings (data source, connection string, query); the codes of the field table
(``linked_field``, ``computed_field``, ``unsafe_link``…; the last shown result is kept);
``formula_function`` formulas that fetch or call (WEBSERVICE, RTD, CALL…); ``program_action``
PowerPoint run-program/macro/OLE actions; ``svg_image`` SVG parts; ``unknown_part`` a binary
part that is not media of its declared type.

Deliberately left alone: text, formatting, styles, themes, charts, SmartArt, comments,
tracked changes, the content of metafiles, audio, video and fonts, document properties
(including custom properties, which are plain text), internal hyperlinks and bookmarks,
ordinary fields (PAGE, TOC, REF, HYPERLINK to a bookmark or an allowed URL…), formulas that
neither fetch nor call, and cached values of anything whose formula or link was removed.
Binary workbooks (``.xlsb``) are kind ``xlsb`` (:mod:`sanitizers.cdr.xlsb`): the same
rebuild, with their record parts checked by :mod:`sanitizers.cdr.biff12`. Visio and XPS
packages are not rebuilt: ``unsupported_type``.
An OLE compound file posing as OOXML is encrypted OOXML (``encrypted``) or not OOXML
(``malformed``).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from lxml import etree

from sanitizers.cdr import biff12, olescan
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.findings import rebuilt_outcome
from sanitizers.cdr.ooxml_media import Media, rebuild_media
from sanitizers.cdr.ooxml_package import (
    A_NS,
    CONTENT_TYPES,
    DANGEROUS_CT,
    FIXED_DATE,
    MAIN_TYPES,
    NESTED_MAX,
    NESTED_TYPES,
    O_NS,
    OUTPUT_CONTENT_TYPES,
    R_NS,
    R_STRICT_NS,
    REL_CODES,
    S_NS,
    SILENT_REL_TYPES,
    VML_TYPE,
    W_NS,
    ContentTypes,
    Rel,
    ancestor,
    canonical,
    is_media_type,
    is_xml_type,
    parse_rels,
    parse_xml,
    read_package,
    rels_name,
    remove,
    resolve,
    serialize,
    tags,
    unwrap,
    write_content_types,
    write_rels,
)
from sanitizers.cdr.ooxml_sheet import (
    disarm_defined_names,
    disarm_formulas,
    may_hold_dangerous_formula,
)
from sanitizers.cdr.ooxml_verify import find_dangerous
from sanitizers.cdr.ooxml_word import disarm_fields, disarm_mail_merge
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES
from sanitizers.vocabulary import Reason, RemovedItem

# Elements removed as a whole when they refer to a dropped relationship; others lose only the
# attribute. A Word hyperlink is unwrapped (its text stays).
REMOVE_ELEMENT = frozenset(
    {
        "OLEObject",
        "control",
        "oleObject",
        "oleObj",
        "externalReference",
        "attachedTemplate",
        "altChunk",
        "subDoc",
        "hlinkClick",
        "hlinkHover",
        "hlinkMouseOver",
        "sheet",
        "hyperlink",
        "webExtension",
        "taskpane",
        "customXmlPr",
        "externalData",
        "sourceFileName",
        "dataSource",
        "headerSource",
        "svgBlip",
        "embedRegular",
        "embedBold",
        "embedItalic",
        "embedBoldItalic",
        "regular",
        "bold",
        "italic",
        "boldItalic",
    }
)
EMPTY_CONTAINERS = frozenset(
    {
        "oleObjects",
        "controls",
        "externalReferences",
        "hyperlinks",
        "definedNames",
        "AlternateContent",
        "Choice",
        "Fallback",
    }
)
# zlib level of the rebuilt package: 1 compresses about 3x faster than the default 6, and a
# package's XML grows by only about a tenth.
ZIP_LEVEL = 1
PROGRAM_ACTIONS = ("ppaction://program", "ppaction://macro", "ppaction://ole")


@dataclass
class Rebuild:
    """The state of one rebuild."""

    parts: dict[str, bytes]
    types: ContentTypes
    removed: list[RemovedItem] = field(default_factory=list)
    kept_rels: dict[str, list[Rel]] = field(default_factory=dict)
    dropped_ids: dict[str, set[str]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)  # part -> content type
    removed_sheets: set[str] = field(default_factory=set)
    policy: CdrPolicy = field(default_factory=CdrPolicy)
    level: int = 0
    nested: dict[str, bytes] = field(default_factory=dict)  # rebuilt embedded packages
    media: dict[str, Media] = field(default_factory=dict)  # checked binary parts
    allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES

    def note(self, code: RemovedItem) -> None:
        if code not in self.removed:
            self.removed.append(code)


def classify(rel: Rel, target: str | None, ctype: str) -> RemovedItem | Literal[""] | None:
    """The code a relationship is dropped with, "" to drop silently, None to keep."""
    short = rel.short_type
    if rel.external:
        return (
            RemovedItem.HYPERLINK
            if short == "hyperlink"
            else REL_CODES.get(short, RemovedItem.EXTERNAL_RELATIONSHIP)
        )
    if short in REL_CODES:
        return REL_CODES[short]
    if short == "officeDocument" and target is not None:
        return None  # the main part: its macro-enabled type is converted, not dropped
    if short in SILENT_REL_TYPES:
        return ""
    low = ctype.lower()
    if low in DANGEROUS_CT:
        return DANGEROUS_CT[low]
    if "macroenabled" in low or "vbaproject" in low:
        return RemovedItem.VBA
    if target is None:
        return ""
    if target.lower().startswith(("customui/",)):
        return RemovedItem.CUSTOM_UI
    return None


def walk(state: Rebuild) -> str:
    """Walk relationships from the root; fill ``kept``/``kept_rels``; return the main part."""
    main: str | None = None
    queue = [""]
    visited = {""}
    while queue:
        source = queue.pop(0)
        name = "_rels/.rels" if source == "" else rels_name(source)
        data = state.parts.get(name)
        if data is None:
            continue
        kept: list[Rel] = []
        dropped: set[str] = set()
        for rel in parse_rels(data, name):
            target = None if rel.external else resolve(source, rel.target)
            if target is not None and target not in state.parts:
                target = None
            ctype = state.types.of(target) if target else ""
            is_main = source == "" and rel.short_type == "officeDocument" and target is not None
            code = None if is_main else classify(rel, target, ctype)
            if (
                code is None
                and target is not None
                and (not is_main or ctype.lower() in biff12.PART_TYPES)
                and _is_binary(ctype)
            ):
                code = _media_verdict(state, target, ctype)
                if code is None:
                    ctype = state.media[target].ctype
            if code is None and target is None:
                code = ""
            if code is None and target is not None and ctype.lower() == VML_TYPE:
                code = _vml_verdict(state.parts[target], target)
            if code == RemovedItem.EMBEDDED_PACKAGE and target is not None:
                code = _nested_verdict(state, target, ctype)
            if code is not None:
                dropped.add(rel.rid)
                if code:
                    state.note(code)
                continue
            assert target is not None
            kept.append(Rel(rel.rid, rel.rtype, target, False))
            if source == "" and rel.short_type == "officeDocument" and main is None:
                main = target
            if target not in visited:
                visited.add(target)
                state.kept[target] = ctype
                queue.append(target)
        state.kept_rels[source] = kept
        state.dropped_ids[source] = dropped
    if main is None:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, "no officeDocument relationship")
    return main


def _nested_verdict(state: Rebuild, target: str, ctype: str) -> RemovedItem | Literal[""] | None:
    """An embedded macro-free OOXML package (a chart's data workbook, an embedded document)
    is rebuilt by the same rules, up to ``NESTED_MAX`` levels deep; what is removed inside
    it is reported for the outer file. Anything else, or a nested package that cannot be
    rebuilt, is dropped (``embedded_package``)."""
    if ctype.lower() not in NESTED_TYPES or state.level >= NESTED_MAX:
        return RemovedItem.EMBEDDED_PACKAGE
    try:
        package = rebuild_package(
            state.parts[target], state.policy, state.level + 1, state.allowed_schemes
        )
    except SanitizeError:
        return RemovedItem.EMBEDDED_PACKAGE
    state.nested[target] = package.data
    for code in package.removed:
        state.note(code)
    return None


def _is_binary(ctype: str) -> bool:
    """A part that is not rebuilt as XML (SVG is XML, but an image: never kept as XML)."""
    return not is_xml_type(ctype) or ctype.lower() == "image/svg+xml"


def _media_verdict(state: Rebuild, target: str, ctype: str) -> RemovedItem | Literal[""] | None:
    """A binary part is kept only as checked media (:mod:`sanitizers.cdr.ooxml_media`, the
    result in ``state.media``); else the code it is dropped with."""
    if target in state.media:
        return None
    if ctype.lower() in biff12.PART_TYPES:  # a binary workbook's records
        problem = biff12.problem(state.parts[target])
        if problem is not None:
            return problem
        state.media[target] = Media(state.parts[target], ctype)
        return None
    if not is_media_type(ctype) and ctype.lower() != "image/svg+xml":
        return RemovedItem.UNKNOWN_PART
    verdict = rebuild_media(state.parts[target], ctype, target, state.policy)
    if isinstance(verdict, str):
        return verdict
    state.media[target] = verdict
    for code in verdict.removed:
        state.note(code)
    return None


def _vml_verdict(untrusted_xml: bytes, name: str) -> RemovedItem | Literal[""] | None:
    """VML (legacy drawings: comment boxes, form controls, OLE previews) is rebuilt like
    any XML part when it parses; Office often writes VML that is not well-formed, and such
    a part is dropped (with its references), not the whole file."""
    try:
        parse_xml(untrusted_xml, name)
    except SanitizeError:
        return ""
    return None


_REF_ATTRIBUTES = etree.XPath(
    "//@*[namespace-uri()=$r or namespace-uri()=$rs"
    " or (namespace-uri()=$o and local-name()='relid')]"
)


def drop_references(root: etree._Element, dropped: set[str], state: Rebuild) -> None:
    """Remove what refers to a dropped relationship id (see ``REMOVE_ELEMENT``)."""
    if not dropped:
        return
    doomed: list[tuple[etree._Element, str]] = []
    # Relationship references: any attribute in the r: namespace (transitional or strict),
    # and VML's o:relid. XPath finds them in C; each result knows its element and name.
    found: Any = _REF_ATTRIBUTES(root, r=R_NS, rs=R_STRICT_NS, o=O_NS)
    for value in found:
        if str(value) not in dropped:
            continue
        elem = value.getparent()
        local = etree.QName(elem).localname
        if local in REMOVE_ELEMENT:
            doomed.append((elem, local))
        elif value.attrname in elem.attrib:
            del elem.attrib[value.attrname]
    for elem, local in doomed:
        if local == "hyperlink" and etree.QName(elem).namespace == W_NS:
            unwrap(elem)
            continue
        if local == "sheet" and elem.get("name"):
            state.removed_sheets.add(str(elem.get("name")))
        if local == "oleObj":
            frame = ancestor(elem, "graphicFrame")
            if frame is not None and frame.getparent() is not None:
                remove(frame)
                continue
        if elem.getparent() is not None:
            remove(elem)


_CONTAINER_TAGS = tuple(f"{{*}}{name}" for name in sorted(EMPTY_CONTAINERS))


def drop_empty_containers(root: etree._Element) -> None:
    # Innermost first, so a container emptied by removing an empty child goes too.
    for elem in reversed(list(root.iter(*_CONTAINER_TAGS))):
        if len(elem) == 0 and elem.getparent() is not None:
            remove(elem)


def disarm_actions(root: etree._Element, state: Rebuild) -> None:
    for local in ("hlinkClick", "hlinkHover", "hlinkMouseOver"):
        for link in list(root.iter(*tags(A_NS, local))):
            action = (link.get("action") or "").strip().lower()
            if action.startswith(PROGRAM_ACTIONS):
                state.note(RemovedItem.PROGRAM_ACTION)
                remove(link)


def rebuild_part(part: str, state: Rebuild) -> bytes:
    raw = state.parts[part]
    root = parse_xml(raw, part)
    dropped = state.dropped_ids.get(part, set())
    # Only walk the tree when a dropped id can occur at all (often only printer settings,
    # referenced from one attribute, were dropped).
    if any(rid.encode() in raw or rid.encode("utf-16-le") in raw for rid in dropped):
        drop_references(root, dropped, state)
    # Fields are looked for in every part (a part with another root may still hold them);
    # the other rules by the part's vocabulary, Strict or Transitional.
    disarm_fields(root, state.note, state.allowed_schemes)
    namespace = canonical(etree.QName(root).namespace)
    if namespace == W_NS:
        disarm_mail_merge(root, state.note)
    elif namespace == S_NS:
        if may_hold_dangerous_formula(raw):
            disarm_formulas(root, state.note, state.allowed_schemes)
        disarm_defined_names(root, state.note, state.allowed_schemes, state.removed_sheets)
    disarm_actions(root, state)
    drop_empty_containers(root)
    return serialize(root)


def output_name(filename: str, extension: str) -> str:
    stem, _ext = posixpath.splitext(filename.replace("\\", "/").rsplit("/", 1)[-1])
    return (stem or "document") + extension


@dataclass(frozen=True)
class Package:
    """A rebuilt package."""

    data: bytes
    extension: str
    removed: tuple[RemovedItem, ...]


def rebuild_package(
    untrusted_data: bytes,
    policy: CdrPolicy,
    level: int = 0,
    allowed_schemes: Collection[str] = DEFAULT_ALLOWED_SCHEMES,
) -> Package:
    """Rebuild one package (``level`` > 0: a package embedded in another one)."""
    parts = read_package(untrusted_data, policy)
    if CONTENT_TYPES not in parts:
        raise SanitizeError(Reason.MALFORMED, "no [Content_Types].xml")
    state = Rebuild(
        parts=parts,
        types=ContentTypes(parts[CONTENT_TYPES]),
        policy=policy,
        level=level,
        allowed_schemes=allowed_schemes,
    )
    main = walk(state)
    main_ctype = state.kept.get(main, "")
    if main_ctype not in MAIN_TYPES:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, f"main part {main_ctype or '?'}"[:100])
    new_main_type, extension = MAIN_TYPES[main_ctype]
    # Orphans (parts no kept relationship reaches) are not copied; dangerous ones count.
    reached = set(state.kept) | {CONTENT_TYPES}
    for name in parts:
        if name in reached or name.endswith(".rels"):
            continue
        code = DANGEROUS_CT.get(state.types.of(name).lower())
        if code is None and "vbaproject" in name.lower():
            code = RemovedItem.VBA
        if code:
            state.note(code)
    out_parts: dict[str, bytes] = {}
    for part in state.kept:
        if part in state.nested:
            out_parts[part] = state.nested[part]
        elif part in state.media:
            out_parts[part] = state.media[part].content
        else:
            out_parts[part] = rebuild_part(part, state)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:

        def put(name: str, content: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, content, compresslevel=ZIP_LEVEL)

        put(CONTENT_TYPES, write_content_types(state.kept, main, new_main_type))
        put("_rels/.rels", write_rels(state.kept_rels.get("", []), ""))
        for part in parts:
            if part in out_parts:
                put(part, out_parts[part])
                rels = state.kept_rels.get(part)
                if rels:
                    put(rels_name(part), write_rels(rels, part))
    return Package(buffer.getvalue(), extension, tuple(state.removed))


class OoxmlSanitizer(CdrSanitizer):
    """Rebuilds an OOXML package without active content; see the module docstring."""

    kind: ClassVar[str] = "ooxml"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        package = rebuild_package(untrusted_data, ctx.policy, 0, ctx.allowed_schemes)
        if (package.extension == ".xlsb") != (self.kind == "xlsb"):
            # Each kind has its own policy: an .xlsb is decided as kind xlsb, never as ooxml.
            raise SanitizeError(Reason.UNSUPPORTED_TYPE, f"{package.extension} as {self.kind}")
        return rebuilt_outcome(
            package.removed,
            rebuilt=package.data,
            filename=filename,
            rebuilt_name=output_name(filename, package.extension),
            content_type=OUTPUT_CONTENT_TYPES[package.extension],
            keep_if_clean=ctx.keep_if_clean,
        )

    def decrypt(self, untrusted_data: bytes, password: str, ctx: CdrContext) -> bytes | None:
        """A password-protected document (an OLE ``EncryptedPackage``) opened with msoffcrypto."""
        return olescan.decrypt(untrusted_data, password)

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        found = find_dangerous(data, ctx.policy, 0, ctx.allowed_schemes)
        if found:
            raise SanitizeError(Reason.VERIFY_FAILED, ",".join(sorted(found)))
