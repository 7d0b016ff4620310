"""Limits and choices for content disarm (CDR); part of :class:`sanitizers.policy.Policy`."""

from __future__ import annotations

from pydantic import Field

from sanitizers.section import Section


class CdrPolicy(Section):
    """Per-file limits for sanitizers. Hitting one removes the part with a ``limit_*`` reason."""

    seconds: float = Field(default=20.0, gt=0)
    """Wall-clock seconds one file may take in a sanitizer process before it is killed; below
    policy.limits.seconds."""
    memory_mb: int = Field(default=1024, ge=64)
    """Address-space limit of a sanitizer process (MiB)."""
    tasks_per_process: int = Field(default=200, ge=1)
    """A sanitizer process is replaced after this many files."""
    max_file_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    """Largest file a sanitizer accepts, and largest output it may produce."""

    # --- PDF (sanitizers.cdr.pdf) ---
    pdf_max_pages: int = Field(default=5000, gt=0)
    """More pages than this: removed (``limit_entries``)."""
    pdf_max_objects: int = Field(default=500_000, gt=0)
    """More indirect objects than this: removed (``limit_entries``)."""
    pdf_max_page_tree_depth: int = Field(default=64, gt=0)
    """Deepest page tree (nested /Pages nodes) walked before giving up (``limit_depth``)."""
    pdf_max_stream_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest decoded size of one stream (``limit_size``): stops Flate "zip bombs" inside a
    PDF before qpdf decodes them while rewriting."""
    pdf_max_decoded_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    """Largest decoded size of all streams of one PDF together (``limit_size``)."""

    # --- Images (sanitizers.cdr.images) ---
    image_max_pixels: int = Field(default=50_000_000, gt=0)
    """Largest width x height decoded; more is a decompression bomb (``limit_pixels``)."""
    image_max_frames: int = Field(default=200, gt=0)
    """Largest number of frames kept from an animated GIF/WebP/TIFF (more:
    ``limit_entries``)."""

    # --- SVG (sanitizers.cdr.svg, sanitizers.cdr.svg_raster) ---
    svg_rasterize: bool = False
    """Deliver an SVG drawing as a PNG picture instead: it is sanitized as usual, then the
    sanitized drawing is rendered by CairoSVG (needs Debian's libcairo2) in the same isolated
    process, at most image_max_pixels pixels (limit_pixels). Off: the sanitized SVG is
    delivered."""
    svg_max_drawn_elements: int = Field(default=100_000, gt=0)
    """Most elements rasterising one drawing may visit, each reference to another element
    (``<use>``, a pattern) counting that element again: nested references ("billion laughs"
    of ``<use>``) remove the file before anything is drawn (``limit_entries``)."""

    # --- Archives (sanitizers.cdr.archive): ZIP, and 7z, RAR, LZH, tar, gzip/bzip2/xz alike ---
    zip_max_entries: int = Field(default=1000, gt=0)
    """Most entries (files and directories) in one archive of any kind: ZIP, 7z, RAR, LZH,
    tar (``limit_entries``). Every zip_* limit applies to every archive kind."""
    zip_max_total_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    """Most uncompressed bytes of all entries together, declared and actually read
    (``limit_size``)."""
    zip_max_ratio: int = Field(default=200, gt=0)
    """Highest uncompressed/compressed ratio of one entry (``limit_ratio``); entries smaller
    than ``zip_ratio_min_bytes`` uncompressed are not held to it (tiny text files compress
    well)."""
    zip_ratio_min_bytes: int = Field(default=1024 * 1024, ge=0)
    """Entries smaller than this uncompressed are not held to zip_max_ratio."""
    zip_max_depth: int = Field(default=3, ge=0)
    """Deepest nesting of archives inside archives (``limit_depth``); 0 = an archive may hold
    files but no archive inside it is opened."""

    # --- Password-protected files (sanitizers.cdr.registry, unlocking) ---
    max_passwords: int = Field(default=5, ge=1, le=100)
    """Most password candidates tried on one encrypted file (ZIP, Office, PDF) when it is
    unlocked; the rest are ignored. Each try costs a key derivation, bounded by ``seconds``
    like the rest of the file's work: measured about 1.2 s per candidate for Office (100,000
    SHA-512 rounds) on a loaded 2-core host, 30 ms for PDF, 2 ms for AES ZIP."""

    # --- RTF (sanitizers.cdr.rtf) ---
    rtf_max_depth: int = Field(default=512, gt=0, le=10_000)
    """Deepest group nesting read before the file is removed (``limit_depth``)."""

    # --- Outlook containers (sanitizers.cdr.tnef, sanitizers.cdr.outlook_msg) ---
    tnef_max_attributes: int = Field(default=1000, gt=0)
    """Most attributes in one winmail.dat (``limit_entries``). Outlook writes about 15 for the
    message and 7 per attachment; the TNEF reader copies the rest of the file for each one,
    so this bounds its work to this many times the file's size."""

    # --- Text-like files (sanitizers.cdr.text) ---
    text_csv_bom: bool = True
    """Write a UTF-8 byte-order mark on rebuilt .csv files, so Excel on Windows opens
    Japanese text as UTF-8 instead of guessing CP932 (文字化け otherwise). Plain .txt gets no
    BOM."""
    text_csv_neutralize_formulas: bool = True
    """Cells of .csv/.tsv files that a spreadsheet would run as a formula (=, +, -, @ at the
    start, e.g. DDE ``=cmd|' /C calc'!A0``) get a leading apostrophe, which makes them text.
    Numbers and telephone numbers such as -5, +1.5 or +81-3-1234-5678 are left alone."""
