"""The one module that imports oletools, olefile and msoffcrypto-tool.

Detection only: these libraries tell us what an Office file contains (VBA projects, Excel 4
macro sheets, embedded OLE objects, DDE fields, encryption); they never write the output. The
OOXML, legacy-OLE and RTF sanitizers call these functions, both to decide and to verify.

Inputs are always wrapped in ``BytesIO`` before they reach olefile: ``OleFileIO(bytes)``
treats a short byte string as a *file name*, which an attacker could choose.

oletools 0.60.2 calls a deprecated pyparsing API when ``olevba`` is imported; that one
library warning is filtered around the import (and only there), so ``-W error`` still
catches our own deprecations.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import olefile

with warnings.catch_warnings():
    # oletools.olevba calls pyparsing's ParserElement.enablePackrat() at import time, which
    # pyparsing 3.3 deprecates; nothing of ours is hidden by this.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from oletools import msodde, oleobj, rtfobj
    from oletools.olevba import VBA_Parser

import msoffcrypto
from msoffcrypto import exceptions as msoffcrypto_exceptions

from sanitizers.vocabulary import RemovedItem

OLE_MAGIC: bytes = olefile.MAGIC

# Item codes reported by the functions below (the notice turns them into words).
VBA = RemovedItem.VBA
XLM = RemovedItem.XLM_MACRO
OLE_OBJECT = RemovedItem.OLE_OBJECT
ACTIVEX = RemovedItem.ACTIVEX
ATTACHMENT = RemovedItem.ATTACHMENT
DDE = RemovedItem.DDE


def is_ole(data: bytes) -> bool:
    return data[: len(OLE_MAGIC)] == OLE_MAGIC


def is_encrypted(data: bytes) -> bool:
    """True when msoffcrypto-tool (or the container's own streams) says the file needs a
    password: legacy RC4/XOR doc/xls/ppt, and OOXML wrapped in an ``EncryptedPackage``."""
    if is_ole(data):
        try:
            with olefile.OleFileIO(io.BytesIO(data)) as ole:
                if ole.exists("EncryptionInfo") or ole.exists("EncryptedPackage"):
                    return True
        except Exception:  # noqa: BLE001, S110 - not readable here: let msoffcrypto decide
            pass
    try:
        office: Any = msoffcrypto.OfficeFile(io.BytesIO(data))
        return bool(office.is_encrypted())
    except (msoffcrypto_exceptions.FileFormatError, NotImplementedError):
        return False


def decrypt(untrusted_data: bytes, password: str) -> bytes | None:
    """The plaintext of a password-protected Office file (OOXML in an ``EncryptedPackage``,
    legacy RC4 doc/xls/ppt) opened with ``password``; ``None`` when the password is wrong.
    Raises ``msoffcrypto`` errors for files it cannot read (the caller fails closed)."""
    office: Any = msoffcrypto.OfficeFile(io.BytesIO(untrusted_data))
    try:
        office.load_key(password=password, verify_password=True)
    except (msoffcrypto_exceptions.InvalidKeyError, msoffcrypto_exceptions.DecryptionError):
        return None
    out = io.BytesIO()
    try:
        office.decrypt(out)
    except (msoffcrypto_exceptions.InvalidKeyError, msoffcrypto_exceptions.DecryptionError):
        return None
    return out.getvalue()


def macros(data: bytes, filename: str, *, first_only: bool = False) -> set[RemovedItem]:
    """VBA projects anywhere in the file (OLE, OOXML, nested) and, in BIFF workbooks, Excel 4
    macro sheets. Raises on files olevba cannot open. ``first_only`` skips the (slow, BIFF
    record by record) XLM search when VBA was already found: enough to decide a removal."""
    found: set[RemovedItem] = set()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="oletools")
        parser: Any = VBA_Parser(filename or "file", data=data, relaxed=True)
        try:
            if parser.detect_vba_macros():
                found.add(VBA)
            if not (found and first_only) and parser.detect_xlm_macros():
                found.add(XLM)
        finally:
            parser.close()
    return found


def _storage_codes(path: list[str]) -> set[RemovedItem]:
    codes: set[RemovedItem] = set()
    first = path[0]
    if first == "ObjectPool" and len(path) > 1:
        codes.add(OLE_OBJECT)
    if first.startswith("MBD"):
        codes.add(OLE_OBJECT)
    if first == "Ctls":
        codes.add(ACTIVEX)
    if "\x01Ole10Native" in path or any(p.startswith("\x01Ole10ItemName") for p in path):
        codes.add(OLE_OBJECT)
    if first.startswith("__attach_version1.0_"):
        codes.add(ATTACHMENT)
    return codes


def embedded(data: bytes) -> set[RemovedItem]:
    """Embedded objects in a legacy OLE file: Word ObjectPool, Excel MBD storages and ActiveX
    controls, PowerPoint ExOleObjStg records, Outlook attachments, and DDE fields in Word."""
    found: set[RemovedItem] = set()
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        for path in ole.listdir(streams=True, storages=True):
            found |= _storage_codes(path)
        if ole.exists("WordDocument"):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning, module="oletools")
                if msodde.process_doc(ole).strip():
                    found.add(DDE)
    if OLE_OBJECT in found:
        return found
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        is_ppt = ole.exists("PowerPoint Document")
    if is_ppt:
        for sub in oleobj.find_ole_in_ppt(io.BytesIO(data)):
            found.add(OLE_OBJECT)
            if sub is not None:
                sub.close()
    return found


def rtf_objects(data: bytes) -> list[tuple[int, int]]:
    """(start, end) offsets of every embedded object rtfobj finds (``\\object``/``\\objdata``
    and OLE1 packages, also in ``\\*`` destinations and malformed groups)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="oletools")
        parser: Any = rtfobj.RtfObjParser(data)
        parser.parse()
        return [(int(obj.start), int(obj.end)) for obj in parser.objects]
