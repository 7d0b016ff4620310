"""Legacy Office compound files (OLE2/CFB): Word ``.doc``/``.dot``, Excel ``.xls``/``.xlt``,
PowerPoint ``.ppt``/``.pps``/``.pot``.

Threat model: VBA macros (``Macros``/``_VBA_PROJECT_CUR`` storages), Excel 4 (XLM) macro
sheets in BIFF workbooks, embedded OLE objects and OLE1 packages (Word ``ObjectPool``, Excel
``MBD…`` storages, PowerPoint ``ExOleObjStg`` records), ActiveX controls (``Ctls``), DDE
fields in Word documents, and files encrypted so no scanner can see inside (RC4/XOR legacy
encryption, or an OOXML document wrapped in an ``EncryptedPackage``).

What it does: it only **decides**. Rebuilding a compound file (rewriting the FIB, the BIFF
record stream or the PowerPoint record tree without the dangerous parts) is out of scope, so
nothing here is ever ``sanitized``:

* encrypted → ``held`` (``encrypted``; msoffcrypto-tool decides), awaiting a password
  (:meth:`OleSanitizer.decrypt`);
* anything found → ``removed`` with the gravest reason (``macro``, ``active_content``,
  ``embedded_object``) and the items in ``removed``;
* nothing found → ``kept`` (``clean``) with the original bytes — under ``keep_if_clean``
  and also under ``sanitize``, which for this type cannot do more than check. The shipped
  policy removes legacy OLE files outright; an operator opts in per kind.

Only compound files whose root holds a Word, Excel or PowerPoint main stream are considered;
anything else that is a compound file (MSI installers, Outlook ``.msg``, Visio, thumbnails…)
is ``unsupported_type``, never kept.

Removed-item codes: ``vba``, ``xlm_macro``, ``ole_object``, ``activex``, ``dde``,
``attachment`` (see :mod:`sanitizers.cdr.findings`). Once VBA is found the slow XLM search
(every BIFF record, in Python) is skipped: the file is removed for its macros either way, so
``xlm_macro`` is listed only for workbooks without VBA. Deliberately left alone: document
properties, hyperlinks and ordinary fields (a legacy file is kept unchanged or not at all).
"""

from __future__ import annotations

import io
from typing import ClassVar

import olefile

from sanitizers.cdr import olescan
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.findings import gravest
from sanitizers.errors import Locked, SanitizeError
from sanitizers.vocabulary import Action, Reason, RemovedItem

MAIN_STREAMS = ("WordDocument", "Workbook", "Book", "PowerPoint Document")


def inspect(untrusted_data: bytes, filename: str) -> set[RemovedItem]:
    """Findings in a legacy Office file; raises ``SanitizeError`` for encrypted, unsupported
    or unreadable files."""
    if not olescan.is_ole(untrusted_data):
        raise SanitizeError(Reason.MALFORMED, "not a compound file")
    try:
        with olefile.OleFileIO(io.BytesIO(untrusted_data)) as ole:
            mains = [name for name in MAIN_STREAMS if ole.exists(name)]
            package = ole.exists("EncryptionInfo") or ole.exists("EncryptedPackage")
    except Exception as exc:
        raise SanitizeError(Reason.MALFORMED, f"olefile: {type(exc).__name__}") from exc
    if package:
        raise Locked(Reason.ENCRYPTED, "encrypted OOXML package")
    if not mains:
        raise SanitizeError(Reason.UNSUPPORTED_TYPE, "compound file without an Office stream")
    try:
        encrypted = olescan.is_encrypted(untrusted_data)
    except Exception as exc:
        raise SanitizeError(Reason.MALFORMED, f"msoffcrypto: {type(exc).__name__}") from exc
    if encrypted:
        raise Locked(Reason.ENCRYPTED, "password-protected Office file")
    try:
        found = olescan.macros(untrusted_data, filename, first_only=True)
        found |= olescan.embedded(untrusted_data)
    except SanitizeError:
        raise
    except Exception as exc:
        raise SanitizeError(Reason.MALFORMED, f"scan: {type(exc).__name__}") from exc
    return found


class OleSanitizer(CdrSanitizer):
    """Keeps a legacy Office file only when nothing dangerous is in it; see the module
    docstring."""

    kind: ClassVar[str] = "ole"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        found = inspect(untrusted_data, filename)
        if found:
            codes = tuple(sorted(found))
            return CdrOutcome(
                action=Action.REMOVED,
                reason=gravest(codes),
                removed=codes,
                detail=",".join(codes),
            )
        return CdrOutcome(
            action=Action.KEPT, reason=Reason.CLEAN, data=untrusted_data, filename=filename
        )

    def decrypt(self, untrusted_data: bytes, password: str, ctx: CdrContext) -> bytes | None:
        """A password-protected legacy file (RC4) opened with msoffcrypto."""
        return olescan.decrypt(untrusted_data, password)

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        try:
            found = inspect(data, "verify")
        except SanitizeError as exc:
            raise SanitizeError(Reason.VERIFY_FAILED, exc.reason.value) from exc
        if found:
            raise SanitizeError(Reason.VERIFY_FAILED, ",".join(sorted(found)))
