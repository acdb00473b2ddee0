"""Reading a CDR file as it comes: streaming, in constant memory (docs/cdr-csv.md, "Files").

``CsvSource`` looks at the first bytes to refuse what is not a CSV text file (empty, binary, a
spreadsheet or PDF, too large) with a message a person understands, picks the encoding (UTF-8
with or without a byte-order mark, else Windows-1252) and the delimiter (``,`` ``;`` or tab,
from the header line), then yields the data rows one at a time with their row number (the line
of the file where the row ends, as a spreadsheet numbers rows: the header is row 1) and how many
bytes of the file have been read, for the progress bar.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

#: one cell may hold at most this many characters (a longer one is refused, the row with it)
MAX_CELL_CHARS = 10_000
#: the first bytes looked at to recognise the file
SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")
#: how a delimiter is named to a person
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

_SIGNATURES = (
    (b"PK\x03\x04", "This is a ZIP archive or an Excel workbook (.xlsx), not a CSV file: save "
                    "the sheet as CSV (UTF-8) and upload that."),
    (b"\xd0\xcf\x11\xe0", "This is an old Excel (.xls) or Office file, not a CSV file: save the "
                          "sheet as CSV (UTF-8) and upload that."),
    (b"%PDF", "This is a PDF document, not a CSV file."),
    (b"\x1f\x8b", "This file is compressed (gzip): unpack it and upload the CSV inside."),
    (b"{", "This looks like JSON, not CSV: send OCPI CDR JSON to the API (POST /api/v1/cdrs)."),
    (b"[", "This looks like JSON, not CSV: send OCPI CDR JSON to the API (POST /api/v1/cdrs)."),
)

csv.field_size_limit(MAX_CELL_CHARS)


class ImportFileError(ValueError):
    """The file as a whole cannot be read: nothing of it is imported; the message says why."""


@dataclass(frozen=True)
class Row:
    number: int            # the file's line where the row ends: the header is line 1
    cells: list[str] | None  # None: the row could not be read (``problem`` says why)
    problem: str = ""


class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it."""

    def __init__(self, raw: BinaryIO, prefix: bytes = b"") -> None:
        self._raw = raw
        self._prefix = prefix
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            data = self._raw.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n


def _encoding(sample: bytes, complete: bool) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=complete)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _delimiter(header_line: str) -> str:
    counts = {d: 0 for d in DELIMITERS}
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvSource:
    """A CSV file opened for import. ``header`` is the first row; ``rows()`` yields the rest."""

    def __init__(self, stream: BinaryIO, *, size: int | None = None,
                 max_bytes: int | None = None) -> None:
        if size is not None and max_bytes is not None and size > max_bytes:
            raise ImportFileError(
                f"The file is {_size(size)}; the largest file accepted is {_size(max_bytes)}. "
                f"Split it into smaller files.")
        sample = stream.read(SNIFF_BYTES)
        if not sample.strip():
            raise ImportFileError("The file is empty." if not sample else
                                  "The file holds only blank space.")
        for magic, message in _SIGNATURES:
            if sample.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(magic):
                raise ImportFileError(message)
        if b"\x00" in sample:
            raise ImportFileError(
                "This is a binary file, not a CSV text file (it holds NUL bytes). If it is "
                "CSV saved as UTF-16, save it again as CSV (UTF-8).")
        self.size = size
        self.encoding = _encoding(sample, complete=len(sample) < SNIFF_BYTES)
        self._counter = _CountingReader(stream, prefix=sample)
        text = io.TextIOWrapper(io.BufferedReader(self._counter, buffer_size=256 * 1024),
                                encoding=self.encoding, errors="replace", newline="")
        first_line = text.readline()
        self.delimiter = _delimiter(first_line)
        self._reader = csv.reader(_chain_first(first_line, text), delimiter=self.delimiter,
                                  quotechar='"', doublequote=True, skipinitialspace=False,
                                  strict=False)
        try:
            header = next(self._reader)
        except csv.Error as exc:
            raise ImportFileError(f"The header row cannot be read: {exc}.") from exc
        header = [cell.strip() for cell in header]
        if not any(header):
            raise ImportFileError("The first row must be the header (column names); it is "
                                  "empty.")
        self.header = header

    @property
    def bytes_read(self) -> int:
        return self._counter.count

    def rows(self) -> Iterator[Row]:
        """Every data row (blank lines skipped). A row that cannot be read is yielded with
        ``cells=None`` and the reason, and reading goes on with the next one."""
        reader = self._reader
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problem = str(exc)
                if "field larger than field limit" in problem:
                    problem = (f"a cell is longer than {MAX_CELL_CHARS:,} characters; the row "
                               f"cannot be a CDR")
                yield Row(reader.line_num, None, problem)
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            yield Row(reader.line_num, cells)


def _chain_first(first: str, rest: io.TextIOBase) -> Iterator[str]:
    yield first
    yield from rest


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    value = n / 1024
    for unit in ("KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError
