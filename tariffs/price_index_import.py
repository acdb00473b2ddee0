"""Import of price index values (e.g. day-ahead market prices) from CSV.

Format: a header row and one row per interval, with columns ``start`` (ISO-8601 with offset, or
naive = UTC) and ``price`` (per kWh by default, per MWh with ``unit="MWh"``); the header names
are matched case-insensitively (``timestamp``/``datetime``/``start_utc`` and ``price_eur_kwh``/
``price_eur_mwh`` work too); ``,`` ``;`` and tab delimiters, a UTF-8 BOM and decimal commas are
accepted. Every interval start must sit on the index's 15- or 60-minute grid.

The import is all or nothing: any bad row and nothing is written; the error lists each bad line.
Values for intervals that exist already are replaced (sessions rated earlier keep their price).
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction

from .models import PriceIndex, PriceIndexValue

START_NAMES = {"start", "timestamp", "datetime", "start_utc", "start_time", "interval_start"}
PRICE_NAMES = {"price", "price_eur_kwh", "price_eur_mwh", "price_kwh", "price_mwh", "value"}
MAX_ROWS = 500_000  # ~14 years of 15-minute prices; more is a mistake, not data
MAX_ERRORS_SHOWN = 20


class PriceIndexImportError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        super().__init__("; ".join(shown) + more)


@dataclass
class PriceIndexImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    first: datetime | None = None
    last: datetime | None = None
    errors: list[str] = field(default_factory=list)


def _parse_start(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_price(value: str) -> Decimal:
    text = value.strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    price = Decimal(text)
    if not price.is_finite():
        raise InvalidOperation
    return price


@transaction.atomic
def price_index_import_csv(*, index: PriceIndex, stream: io.TextIOBase,
                           unit: str = "kWh") -> PriceIndexImportReport:
    if unit not in {"kWh", "MWh"}:
        raise PriceIndexImportError([f"Unknown unit {unit!r}: use kWh or MWh."])
    text = stream.read()
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise PriceIndexImportError(["The file is empty."])
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [h.strip().lower().replace(" ", "_") for h in next(reader)]
    start_col = next((i for i, h in enumerate(header) if h in START_NAMES), None)
    price_col = next((i for i, h in enumerate(header) if h in PRICE_NAMES), None)
    if start_col is None or price_col is None:
        raise PriceIndexImportError([
            f"Header {header!r}: need a start column ({', '.join(sorted(START_NAMES))}) and a "
            f"price column ({', '.join(sorted(PRICE_NAMES))})."])
    if unit == "kWh" and any(h.endswith("mwh") for h in header):
        unit = "MWh"
    divisor = Decimal(1000) if unit == "MWh" else Decimal(1)
    report = PriceIndexImportReport()
    values: dict[datetime, Decimal] = {}
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise PriceIndexImportError([f"More than {MAX_ROWS} rows: split the file."])
        try:
            start = _parse_start(row[start_col])
        except (ValueError, IndexError):
            report.errors.append(f"line {line_no}: start {row[start_col:start_col + 1]} is not "
                                 "an ISO-8601 date-time")
            continue
        try:
            price = _parse_price(row[price_col]) / divisor
        except (InvalidOperation, IndexError):
            report.errors.append(f"line {line_no}: price {row[price_col:price_col + 1]} is not "
                                 "a number")
            continue
        if start.second or start.microsecond or start.minute % index.interval_minutes:
            report.errors.append(f"line {line_no}: {start.isoformat()} is not on the "
                                 f"{index.interval_minutes}-minute grid")
            continue
        if start in values:
            report.errors.append(f"line {line_no}: {start.isoformat()} appears twice")
            continue
        values[start] = price
    if report.errors:
        raise PriceIndexImportError(report.errors)
    if not values:
        raise PriceIndexImportError(["The file has a header but no prices."])
    existing = set(PriceIndexValue.objects.filter(index=index, start__in=list(values))
                   .values_list("start", flat=True))
    PriceIndexValue.objects.bulk_create(
        [PriceIndexValue(index=index, start=start, price=price)
         for start, price in values.items()],
        batch_size=5000, update_conflicts=True, unique_fields=["index", "start"],
        update_fields=["price"])
    report.updated = len(existing)
    report.created = len(values) - len(existing)
    report.first, report.last = min(values), max(values)
    return report
