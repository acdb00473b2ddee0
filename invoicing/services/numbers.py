"""Document numbers: unique and gapless per series (docs/invoicing.md, "Numbers").

A number is given only when a document is issued, inside the issuing transaction: the series'
counter row for the year is locked (``SELECT ... FOR UPDATE``), incremented and used. Two
documents issued at once wait for each other on that row; a transaction that fails after taking
a number rolls the counter back with it, so no number is lost. The series row is locked first
(then the counter), so a prefix change waits for the numbers being taken and they for it.
"""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction

from emobility.models import Operator

from ..models import NumberSeries, SeriesCounter

DEFAULT_PREFIXES = {NumberSeries.Kind.INVOICE: "INV-", NumberSeries.Kind.CREDIT_NOTE: "CN-",
                    NumberSeries.Kind.STATEMENT: "RS-"}


def series_for(*, operator: Operator, kind: str) -> NumberSeries:
    """The operator's series for ``kind``, created with a default prefix the first time."""
    series = NumberSeries.objects.filter(operator=operator, kind=kind).first()
    if series is not None:
        return series
    prefix = f"{operator.ocpi_party_id}-{DEFAULT_PREFIXES[kind]}"
    try:
        with transaction.atomic():
            return NumberSeries.objects.create(operator=operator, kind=kind, prefix=prefix)
    except IntegrityError:
        return NumberSeries.objects.get(operator=operator, kind=kind)


def format_number(series: NumberSeries, *, year: int, seq: int) -> str:
    return series.format.format(prefix=series.prefix, year=year, seq=seq)


def number_take(*, series: NumberSeries, on: date) -> str:
    """The next number of ``series`` for documents issued ``on`` that day. Call it inside the
    transaction that issues the document."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Take a number inside the transaction that issues the document.")
    # The series is read again under its lock: a prefix or format changed meanwhile (portal
    # settings, which lock the series, then its counters) is the one the number gets.
    series = NumberSeries.objects.select_for_update().get(pk=series.pk)
    yearly = "{year" in series.format
    year = on.year if yearly else 0
    if not SeriesCounter.objects.filter(series=series, year=year).exists():
        try:
            with transaction.atomic():
                SeriesCounter.objects.create(series=series, year=year)
        except IntegrityError:
            pass  # created by someone else meanwhile
    counter = SeriesCounter.objects.select_for_update().get(series=series, year=year)
    counter.last += 1
    SeriesCounter.objects.filter(pk=counter.pk).update(last=counter.last)
    return format_number(series, year=on.year, seq=counter.last)
