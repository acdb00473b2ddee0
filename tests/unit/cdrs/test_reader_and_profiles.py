"""Reading CDR files: what is refused as a whole, delimiters, encodings, headers and profiles."""

import io

import pytest

from emobility.cdrs.profiles import (
    PROFILES,
    HeaderError,
    detect_profile,
    normalise_header,
    read_header,
)
from emobility.cdrs.reader import MAX_CELL_CHARS, CsvSource, ImportFileError

CANONICAL = "cdr_id,start,end,evse_id,energy_kwh,token_uid\r\n"
ROW = "C1,2026-10-01T08:00:00Z,2026-10-01T10:00:00Z,NL*ACM*E00001*1,20.5,TOK1\r\n"


def source(data: bytes, **kwargs) -> CsvSource:
    return CsvSource(io.BytesIO(data), size=len(data), **kwargs)


@pytest.mark.parametrize("data, message", [
    (b"", "The file is empty."),
    (b"  \r\n\n ", "only blank space"),
    (b"PK\x03\x04\x14\x00\x06\x00rest-of-an-xlsx", "Excel workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old-xls", "old Excel"),
    (b"%PDF-1.7\n...", "PDF"),
    (b"\x1f\x8b\x08\x00gzip", "compressed"),
    (b'{"id": "CDR-1"}', "JSON"),
    (b"cdr_id,start\x00\x01\x02binary", "binary file"),
    (b"\xff\xfec\x00d\x00r\x00", "binary file"),  # UTF-16: NUL bytes
    (b",,,\r\n" + ROW.encode(), "header"),
])
def test_files_that_are_not_csv_are_refused_whole_with_a_clear_message(data, message):
    with pytest.raises(ImportFileError, match=message):
        source(data)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read():
    class Unreadable(io.RawIOBase):
        def read(self, *_):
            raise AssertionError("must not be read")

    with pytest.raises(ImportFileError, match=r"2\.0 GB.*largest file accepted is 1\.0 GB"):
        CsvSource(Unreadable(), size=2 * 1024**3, max_bytes=1024**3)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_taken_from_the_header_line(delimiter):
    data = (CANONICAL + ROW).replace(",", delimiter).encode()
    read = source(data)
    assert read.delimiter == delimiter
    rows = list(read.rows())
    assert rows[0].cells[4] == "20.5" and rows[0].number == 2


def test_a_quoted_delimiter_in_the_header_does_not_fool_the_detection():
    data = b'"a;b",c,d,e\r\n1,2,3,4\r\n'
    assert source(data).delimiter == ","


def test_a_utf8_byte_order_mark_is_dropped_and_windows_1252_is_read():
    with_bom = source(b"\xef\xbb\xbf" + (CANONICAL + ROW).encode())
    assert with_bom.header[0] == "cdr_id" and with_bom.encoding == "utf-8-sig"
    latin = source("cdr_id,naam\r\n1,Café Zoë\r\n".encode("cp1252"))
    assert latin.encoding == "cp1252"
    assert next(latin.rows()).cells[1] == "Café Zoë"


def test_blank_lines_are_skipped_and_rows_keep_their_line_numbers():
    data = (CANONICAL + ROW + "\r\n\r\n" + ROW.replace("C1", "C2")).encode()
    rows = list(source(data).rows())
    assert [(r.number, r.cells[0]) for r in rows] == [(2, "C1"), (5, "C2")]


def test_an_oversized_cell_refuses_its_row_and_reading_goes_on():
    data = (CANONICAL + "C1," + "x" * (MAX_CELL_CHARS + 10) + ",e,f,g,h\r\n" + ROW).encode()
    rows = list(source(data).rows())
    assert rows[0].cells is None and "longer than" in rows[0].problem
    assert rows[1].cells[0] == "C1" and rows[1].number == 3


def test_bytes_read_grow_to_the_whole_file():
    data = (CANONICAL + ROW * 2000).encode()
    read = source(data)
    assert sum(1 for _ in read.rows()) == 2000
    assert read.bytes_read == len(data)


@pytest.mark.parametrize("header, profile", [
    (["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"], "canonical"),
    (["CDR ID", " Start ", "END", "Evse Id", "Energy kWh", "Token_UID"], "canonical"),
    (["CDR ID", "Session Id", "Start (UTC)", "End (UTC)", "EVSE ID", "Consumption kWh",
      "Token UID", "Contract ID", "Authorization reference", "Tariff ID", "Currency"], "ocpi"),
    (["Charge ID", "Station ID", "EVSE-ID", "Start time", "Stop time", "Energy (Wh)",
      "Plug type", "Card number"], "cpo-portal"),
])
def test_the_profile_is_detected_from_the_header(header, profile):
    assert detect_profile(header).profile.name == profile


def test_a_header_no_profile_reads_says_what_is_missing():
    with pytest.raises(HeaderError, match="No import profile recognises") as caught:
        detect_profile(["id", "begin", "stop", "kwh"])
    assert "'token_uid'" in str(caught.value)


def test_a_chosen_profile_reports_its_own_missing_columns():
    with pytest.raises(HeaderError, match="'Energy \\(Wh\\)'"):
        read_header(["Charge ID", "EVSE-ID", "Start time", "Stop time", "Card number"],
                    PROFILES["cpo-portal"])


def test_two_columns_for_one_field_are_refused():
    with pytest.raises(HeaderError, match="both hold cdr_id"):
        read_header(["cdr_id", "CDR id", "start", "end", "evse_id", "energy_kwh", "token_uid"],
                    PROFILES["canonical"])


def test_unknown_columns_are_kept_and_listed():
    mapped = read_header(["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid",
                          "Plug type"], PROFILES["canonical"])
    assert mapped.ignored == ["Plug type"]


def test_headers_compare_without_case_spacing_or_punctuation():
    assert normalise_header("\ufeff Energy (kWh) ") == normalise_header("energy_kwh")
