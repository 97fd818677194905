"""Reading import files into records with their physical line numbers
(docs/import-export.md#file-formats).

Why not tablib (what django-import-export uses): it decodes UTF-8 only, refuses a whole file
when one row is short, and drops blank lines so line numbers shift. Here:

- CSV bytes are UTF-8 (BOM or not) or else GB18030; anything else is one file-level error.
- Every record keeps the physical line where it starts (header = line 1; a quoted field with
  newlines spans several lines); all-empty records are skipped; a record with the wrong number
  of fields is handed on, so the service reports it as a row error.
- XLSX is read with openpyxl's streaming parser over the rows present in the XML (cached values
  of formula cells), so the phantom blank rows Excel leaves up to row 1,048,576 cost nothing;
  numeric cells such as 13800138002.0 read as integers; line = the sheet row.

Limits (settings, README "Configuration"): an XLSX whose parts expand to more than
``TAGDESK_IMPORT_MAX_SHEET_MB`` is refused from the zip directory alone, before anything is
decompressed (``zipfile`` never yields more than a part's declared size, and a part that lies
about it fails its CRC check); any file with more than ``TAGDESK_IMPORT_MAX_ROWS`` data records,
or whose reading takes longer than ``TAGDESK_IMPORT_MAX_SECONDS`` (a "decompression bomb" of
empty rows within the size limit), stops with one clear file-level error. A damaged or truncated
workbook (bad zip, CRC mismatch, broken XML) is one file-level error too, never a crash.
Counting and validating big files happens on a worker (customers/tasks.py): the upload request
only looks at the sizes (:func:`expanded_size`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import io
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.utils.translation import gettext as _

XLSX_MAGIC = b"PK\x03\x04"
# Zero-width characters and the BOM survive copy-paste; they are never meaningful at the edges.
_EDGE_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
# A leading apostrophe before one of these is our own export's formula neutralisation.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A CSV field that neither starts nor ends with one of these is left as it is by clean_field
# (str.strip's whitespace, the invisible edge characters, the apostrophe), so read_csv keeps it
# without the call: most fields of a file are like that. Every whitespace code point is below
# U+3001.
_EDGES = frozenset(
    [chr(c) for c in range(0x3001) if chr(c).isspace()] + list(_EDGE_INVISIBLE) + ["'"]
)


class UnreadableFile(ValueError):
    """The file as a whole cannot be read; nothing is imported. ``code`` is machine-readable."""

    def __init__(self, message: str, code: str = "unreadable_file") -> None:
        super().__init__(message)
        self.code = code


# What a broken workbook raises from openpyxl, zipfile and the XML parsers (ET.ParseError and
# lxml's XMLSyntaxError are SyntaxErrors; defusedxml's refusals are ValueErrors).
_BROKEN = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    SyntaxError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ValueError,
    OSError,
)


@dataclass(slots=True)
class Record:
    line: int
    values: list[str]


def clean_field(value: object) -> str:
    """Trim Unicode whitespace (U+3000, U+00A0 ...) and zero-width characters; undo the
    apostrophe our exports put before formula-like cells."""
    if value.__class__ is str:  # the CSV case, per field: keep it cheap
        text = value.strip()
        if text and (text[0] in _EDGE_INVISIBLE or text[-1] in _EDGE_INVISIBLE):
            text = text.strip(_EDGE_INVISIBLE).strip()
        if text[:1] == "'" and text.lstrip("'").startswith(FORMULA_TRIGGERS):
            text = text[1:]
        return text
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, datetime.datetime | datetime.date | datetime.time):
        value = value.isoformat()
    text = str(value).strip().strip(_EDGE_INVISIBLE).strip()
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_TRIGGERS):
        text = text[1:]
    return text


_BLOCK = 1 << 20  # bytes per read of a streamed CSV


def csv_encoding(handle: IO[bytes]) -> str:
    """The codec of a CSV file (``utf-8-sig`` or ``gb18030``), judged by one streaming pass over
    the whole file (1 MB at a time, nothing kept), which then rewinds it; else
    :class:`UnreadableFile`. The same judgement as decoding the whole file at once: UTF-8 if all
    of it decodes as UTF-8, else GB18030 unless that yields characters no customer file holds;
    a NUL anywhere is refused once the encoding is known."""
    handle.seek(0)
    head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not head.startswith(
        codecs.BOM_UTF8
    ):
        raise UnreadableFile(_("The file is UTF-16; save it as CSV UTF-8 and import again."))
    encoding = "utf-8-sig"
    if not _decodes(handle, "utf-8-sig", check=False):
        encoding = "gb18030"
        if not _decodes(handle, "gb18030", check=True):
            raise UnreadableFile(
                _("The file is neither UTF-8 nor GB18030 (GBK) text; save it as CSV UTF-8.")
            )
    handle.seek(0)
    nul = False
    while block := handle.read(_BLOCK):
        # NUL is one byte 0x00 in both codecs, never part of another character.
        if b"\x00" in block:
            nul = True
            break
    handle.seek(0)
    if nul:
        raise UnreadableFile(_("The file contains NUL bytes; it is not a CSV text file."))
    return encoding


def _decodes(handle: IO[bytes], encoding: str, *, check: bool) -> bool:
    """Does the whole file decode as ``encoding``? With ``check``, GB18030's false friends are
    refused too: GB18030 maps almost any byte pair, so text from another code page shows up as
    private-use, unassigned or control characters, which no real customer file contains."""
    handle.seek(0)
    if handle.read(3) != codecs.BOM_UTF8:
        handle.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while True:
            block = handle.read(_BLOCK)
            text = decoder.decode(block, final=not block)
            if check and any(
                unicodedata.category(ch) in ("Co", "Cn", "Cc") and ch not in "\t\r\n"
                for ch in set(text)
            ):
                return False
            if not block:
                return True
    except UnicodeDecodeError:
        return False


class _Budget:
    """The row and time caps of one read; checked per record (and per sheet row).

    The time cap counts the reader's own time only: records are streamed to an importer that
    validates and writes between them (customers.importing), and that work is no reading."""

    def __init__(self) -> None:
        self.max_rows = settings.TAGDESK_IMPORT_MAX_ROWS
        self.max_seconds = settings.TAGDESK_IMPORT_MAX_SECONDS
        self.records = 0
        self.spent = 0.0
        self.since = time.monotonic()

    def pause(self) -> None:
        """Before handing a record on: the consumer's time is not the reader's."""
        self.spent += time.monotonic() - self.since

    def resume(self) -> None:
        self.since = time.monotonic()

    def tick(self) -> None:
        if self.spent + (time.monotonic() - self.since) > self.max_seconds:
            raise UnreadableFile(
                _(
                    "Reading the file took longer than %(s)d seconds; split it into smaller "
                    "files (TAGDESK_IMPORT_MAX_SECONDS)."
                )
                % {"s": settings.TAGDESK_IMPORT_MAX_SECONDS},
                code="file_too_large",
            )

    def record(self) -> None:
        self.records += 1
        # + 1: the header is a record too.
        if self.records > self.max_rows + 1:
            raise UnreadableFile(
                _(
                    "The file has more than %(n)s data rows; split it into smaller files "
                    "(TAGDESK_IMPORT_MAX_ROWS)."
                )
                % {"n": f"{self.max_rows:,}"},
                code="file_too_large",
            )
        if self.records % 1000 == 0:
            self.tick()


def read_csv(source: bytes | IO[bytes]) -> Iterator[Record]:
    """Header first (line 1), then the data records; blank records skipped. A file object is
    streamed (:func:`csv_encoding` reads it once ahead to judge its encoding), so memory does
    not grow with the file."""
    handle = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    encoding = csv_encoding(handle)
    if encoding == "gb18030" and handle.read(3) != codecs.BOM_UTF8:
        handle.seek(0)  # a UTF-8 BOM before GB18030 text is skipped, as utf-8-sig skips it
    text = io.TextIOWrapper(handle, encoding=encoding, newline="")
    reader = csv.reader(text, strict=False)
    budget = _Budget()
    start = 1
    try:
        for fields in reader:
            line = start
            start = reader.line_num + 1
            values = [
                v if not v or (v[0] not in _EDGES and v[-1] not in _EDGES) else clean_field(v)
                for v in fields
            ]
            if any(values):
                budget.record()
                budget.pause()
                yield Record(line, values)
                budget.resume()
    except csv.Error as exc:
        raise UnreadableFile(
            _("Line %(line)d cannot be read as CSV: %(error)s")
            % {"line": reader.line_num, "error": exc}
        ) from exc
    finally:
        # The caller's file stays open (a wrapper closes its file when collected); it may be
        # closed already when an abandoned reader is collected late.
        with contextlib.suppress(ValueError):
            text.detach()


def expanded_size(source: bytes | IO[bytes]) -> int:
    """Bytes the file expands to when read: an XLSX's declared part sizes (from the zip's
    central directory: nothing is decompressed), else the file's own size. Cheap on any file."""
    handle: IO[bytes]
    if isinstance(source, bytes | bytearray):
        head, size, handle = bytes(source[:4]), len(source), io.BytesIO(source)
    else:
        handle = source
        handle.seek(0)
        head = handle.read(4)
        size = handle.seek(0, io.SEEK_END)
        handle.seek(0)
    if head != XLSX_MAGIC:
        return size
    try:
        with zipfile.ZipFile(handle) as archive:
            return sum(info.file_size for info in archive.infolist())
    except _BROKEN:
        return size  # the reader reports it as damaged
    finally:
        if not isinstance(source, bytes | bytearray):
            handle.seek(0)


def _damaged(row: int | None) -> UnreadableFile:
    if row:
        return UnreadableFile(
            _(
                "The workbook is damaged or truncated after sheet row %(row)d; open it in Excel, "
                "save it again and re-upload."
            )
            % {"row": row}
        )
    return UnreadableFile(
        _(
            "The file is not a readable XLSX workbook (damaged or truncated?); open it in Excel, "
            "save it again and re-upload."
        )
    )


def read_xlsx(data: bytes | IO[bytes]) -> Iterator[Record]:
    """The first worksheet's rows that hold any value; line = sheet row."""
    from openpyxl import load_workbook
    from openpyxl.worksheet._reader import WorkSheetParser

    limit_mb = settings.TAGDESK_IMPORT_MAX_SHEET_MB
    expanded = expanded_size(data)
    if expanded > limit_mb * 2**20:
        raise UnreadableFile(
            _(
                "The workbook expands to %(size)s MB when opened; the limit is %(limit)s MB "
                "(TAGDESK_IMPORT_MAX_SHEET_MB). Split it into smaller files."
            )
            % {"size": f"{expanded / 2**20:,.0f}", "limit": f"{limit_mb:,}"},
            code="file_too_large",
        )
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except _BROKEN as exc:
        raise _damaged(None) from exc
    budget = _Budget()
    row_number = None
    try:
        sheet = workbook.worksheets[0]
        # The streaming parser yields only the rows present in the sheet XML: phantom rows
        # Excel keeps up to 1,048,576 are skipped without materialising the gap.
        with sheet._get_source() as xml:
            parser = WorkSheetParser(
                xml,
                sheet._shared_strings,
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            for seen, (row_number, cells) in enumerate(parser.parse()):
                if seen % 1000 == 0:
                    budget.tick()  # empty rows too: a sheet of a million <row/> is no record
                if not cells:
                    continue
                width = max(c["column"] for c in cells)
                values = [""] * width
                for cell in cells:
                    if cell["value"] is not None:
                        values[cell["column"] - 1] = clean_field(cell["value"])
                if any(values):
                    while values and not values[-1]:
                        values.pop()
                    budget.record()
                    budget.pause()
                    yield Record(row_number, values)
                    budget.resume()
    except UnreadableFile:
        raise
    except _BROKEN as exc:
        raise _damaged(row_number) from exc
    finally:
        workbook.close()


def read_records(data: bytes | IO[bytes], filename: str = "") -> tuple[str, Iterator[Record]]:
    """``("xlsx" | "csv", records)``. Dispatch on content (an XLSX is a zip), not the name.
    ``data`` is the file's bytes or a seekable binary file, which is streamed."""
    if not isinstance(data, bytes | bytearray):
        data.seek(0)
        head = data.read(4)
        data.seek(0)
    else:
        head = bytes(data[:4])
    if head.startswith(XLSX_MAGIC):
        return "xlsx", read_xlsx(data)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise UnreadableFile(_("The file is named .xlsx but is not an XLSX workbook."))
    if filename.lower().endswith(".xls"):
        raise UnreadableFile(_("Old .xls workbooks are not supported; save as .xlsx or CSV."))
    return "csv", read_csv(data)
