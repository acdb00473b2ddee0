"""The dashboard's figures for one operator and period, each from one aggregate query.

A session counts on the local day of its start in its location's time zone (IANA,
``Location.time_zone``), as the sessions list and invoices read it. The period filter first
takes a UTC window on the indexed start, widened by 14 hours on each side (every time zone is
within UTC−12 to UTC+14), then the exact local day; the per-day rows group by that local day.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, F, FilteredRelation, Q, Sum
from django.db.models.functions import Coalesce

from emobility.models import ChargingSession
from tariffs.selectors import LocalDate

TOP_STATIONS = 10
TOP_LOCATIONS = 15
ZERO = Decimal("0")
#: every local day lies within [its UTC midnight − 14 h, the next UTC midnight + 12 h): 14 h on
#: both sides is a safe margin for the prefilter on the indexed start
ZONE_MARGIN = timedelta(hours=14)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """Whole local days, ``first`` to ``last`` inclusive, each session's day being the day of
    its start in its location's time zone."""

    first: date
    last: date

    def utc_window(self) -> tuple[datetime, datetime]:
        """UTC instants [from, to) that hold every start whose local day is in the period in
        any time zone: the prefilter on the indexed start (clamped to what datetime holds)."""
        try:
            start = datetime.combine(self.first, time.min, tzinfo=UTC) - ZONE_MARGIN
        except OverflowError:
            start = _EARLIEST
        try:
            end = datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC) \
                + ZONE_MARGIN
        except OverflowError:
            end = _LATEST
        return start, end

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def last_month(today: date) -> Period:
    last = today.replace(day=1) - timedelta(days=1)
    return Period(last.replace(day=1), last)


def _sqlite_local_date(zone_of_storage):
    """SQLite's local day of a stored instant (text in the connection's time zone, UTC by
    default) in the time zone named by ``zone``: what PostgreSQL's ``timezone()`` does."""

    def local_date(instant, zone):
        if instant is None or zone is None:
            return None
        moment = datetime.fromisoformat(instant).replace(tzinfo=zone_of_storage)
        try:
            return moment.astimezone(ZoneInfo(zone)).date().isoformat()
        except (OverflowError, ValueError, KeyError):  # year 1 or 9999, or a name not a zone
            return moment.date().isoformat()

    return local_date


class SessionLocalDay(LocalDate):
    """The local day of a session's start in its location's time zone, per row. PostgreSQL:
    ``timezone(location.time_zone, start)::date`` (``tariffs.selectors.LocalDate``). SQLite (the
    demo): a Python function registered on the connection, exact too (``LocalDate`` alone
    would give the UTC day there)."""

    sqlite_function = "portal_session_local_date"

    def __init__(self):
        super().__init__(F("evse__station__location__time_zone"), F("start"))

    def as_sqlite(self, compiler, connection, **extra_context):
        connection.ensure_connection()
        connection.connection.create_function(
            self.sqlite_function, 2, _sqlite_local_date(connection.timezone),
            deterministic=True)
        zone_sql, zone_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        return (f"{self.sqlite_function}({start_sql}, {zone_sql})",
                (*start_params, *zone_params))


def _sessions(operator_id: int, period: Period):
    """The operator's sessions that started on the period's local days, each with its current
    price (at most one: a unique index) joined as ``price``."""
    window_start, window_end = period.utc_window()
    return (ChargingSession.objects
            .filter(operator_id=operator_id, start__gte=window_start, start__lt=window_end)
            .alias(local_day=SessionLocalDay())
            .filter(local_day__gte=period.first, local_day__lte=period.last)
            .annotate(price=FilteredRelation("prices", condition=Q(prices__is_current=True))))


def _money(field: str, currency: str):
    return Coalesce(Sum(F(f"price__{field}"), filter=Q(**{"price__total_incl_vat_currency":
                                                          currency})),
                    ZERO, output_field=DecimalField(max_digits=18, decimal_places=2))


def _figures(currency: str) -> dict:
    return {
        "sessions": Count("id"),
        "kwh": Coalesce(Sum("energy_kwh"), ZERO,
                        output_field=DecimalField(max_digits=18, decimal_places=4)),
        "priced_kwh": Coalesce(
            Sum("energy_kwh", filter=Q(price__total_incl_vat_currency=currency)), ZERO,
            output_field=DecimalField(max_digits=18, decimal_places=4)),
        "revenue_incl_vat": _money("total_incl_vat", currency),
        "revenue_excl_vat": _money("total_excl_vat", currency),
    }


def _with_average(row: dict) -> dict:
    """The average price per kWh (incl. VAT) of the priced sessions, to four decimals;
    ``None`` without priced energy."""
    kwh = row["priced_kwh"]
    row["price_per_kwh"] = (row["revenue_incl_vat"] / kwh).quantize(Decimal("0.0001")) \
        if kwh else None
    return row


def dashboard(*, operator, period: Period) -> dict:
    """Totals, a row per day, per location and the top stations of ``operator``'s sessions in
    ``period`` (local days of each session's location). Revenue is the sum of the sessions'
    current prices in the operator's currency; sessions priced in another currency are counted
    apart (``other_currency``). Four queries, however many sessions and time zones."""
    currency = str(operator.default_currency)
    sessions = _sessions(operator.pk, period)
    figures = _figures(currency)
    totals = _with_average(sessions.aggregate(
        **figures, unpriced=Count("id", filter=Q(price__id__isnull=True)),
        other_currency=Count("id", filter=Q(price__id__isnull=False)
                             & ~Q(price__total_incl_vat_currency=currency))))
    by_day = {row["day"]: row for row in
              sessions.values(day=F("local_day"))
              .annotate(**figures).order_by("day")}
    empty = {name: ZERO for name in figures} | {"sessions": 0}
    days = [_with_average({"day": day, **by_day.get(day, empty)}) for day in period.days()]
    locations = [_with_average(row) for row in
                 sessions.values(location_id=F("evse__station__location_id"),
                                 location=F("evse__station__location__name"))
                 .annotate(**figures).order_by("-revenue_incl_vat", "-kwh", "location")
                 [:TOP_LOCATIONS]]
    stations = [_with_average(row) for row in
                sessions.values(station_id=F("evse__station_id"),
                                station=F("evse__station__identity"),
                                location=F("evse__station__location__name"))
                .annotate(**figures).order_by("-revenue_incl_vat", "-kwh", "station")
                [:TOP_STATIONS]]
    return {"currency": currency, "totals": totals, "days": days, "locations": locations,
            "stations": stations}
