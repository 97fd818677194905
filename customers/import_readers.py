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
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _

XLSX_MAGIC = b"PK\x03\x04"
# Zero-width characters and the BOM survive copy-paste; they are never meaningful at the edges.
_EDGE_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
# A leading apostrophe before one of these is our own export's formula neutralisation.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class UnreadableFile(ValueError):
    """The file as a whole cannot be read; nothing is imported. ``code`` is machine-readable."""

    def __init__(self, message: str, code: str = "unreadable_file") -> None:
        super().__init__(message)
        self.code = code


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


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030; else :class:`UnreadableFile`. Never guesses
    further: a Latin-1 or UTF-16 file is refused rather than stored as mojibake."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(_("The file is UTF-16; save it as CSV UTF-8 and import again."))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise UnreadableFile(
            _("The file is neither UTF-8 nor GB18030 (GBK) text; save it as CSV UTF-8.")
        ) from None
    # GB18030 maps almost any byte pair; text from another code page shows up as private-use,
    # unassigned or control characters, which no real customer file contains.
    if any(
        unicodedata.category(ch) in ("Co", "Cn", "Cc") and ch not in "\t\r\n" for ch in set(text)
    ):
        raise UnreadableFile(
            _("The file is neither UTF-8 nor GB18030 (GBK) text; save it as CSV UTF-8.")
        )
    return text


def read_csv(data: bytes) -> Iterator[Record]:
    """Header first (line 1), then the data records; blank records skipped."""
    text = decode_csv(data)
    if "\x00" in text:
        raise UnreadableFile(_("The file contains NUL bytes; it is not a CSV text file."))
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    start = 1
    try:
        for fields in reader:
            line = start
            start = reader.line_num + 1
            values = [clean_field(v) for v in fields]
            if any(values):
                yield Record(line, values)
    except csv.Error as exc:
        raise UnreadableFile(
            _("Line %(line)d cannot be read as CSV: %(error)s")
            % {"line": reader.line_num, "error": exc}
        ) from exc


def read_xlsx(data: bytes | io.IOBase) -> Iterator[Record]:
    """The first worksheet's rows that hold any value; line = sheet row."""
    from openpyxl import load_workbook
    from openpyxl.worksheet._reader import WorkSheetParser

    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UnreadableFile(_("The file is not a readable XLSX workbook.")) from exc
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
            for row_number, cells in parser.parse():
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
                    yield Record(row_number, values)
    finally:
        workbook.close()


def read_records(data: bytes, filename: str = "") -> tuple[str, Iterator[Record]]:
    """``("xlsx" | "csv", records)``. Dispatch on content (an XLSX is a zip), not the name."""
    if data.startswith(XLSX_MAGIC):
        return "xlsx", read_xlsx(data)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise UnreadableFile(_("The file is named .xlsx but is not an XLSX workbook."))
    if filename.lower().endswith(".xls"):
        raise UnreadableFile(_("Old .xls workbooks are not supported; save as .xlsx or CSV."))
    return "csv", read_csv(data)
