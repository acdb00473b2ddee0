"""The dashboard's figures for one operator and period, each from one aggregate query."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, F, FilteredRelation, Q, Sum
from django.db.models.functions import Coalesce, TruncDate

from emobility.models import ChargingSession

TOP_STATIONS = 10
TOP_LOCATIONS = 15
ZERO = Decimal("0")


@dataclass(frozen=True)
class Period:
    """Whole days, ``first`` to ``last`` inclusive, in UTC."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def last_month(today: date) -> Period:
    last = today.replace(day=1) - timedelta(days=1)
    return Period(last.replace(day=1), last)


def _sessions(operator_id: int, period: Period):
    """The operator's sessions that started in the period, each with its current price (at most
    one: a unique index) joined as ``price``."""
    return (ChargingSession.objects
            .filter(operator_id=operator_id, start__gte=period.start, start__lt=period.end)
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
    ``period``. Revenue is the sum of the sessions' current prices in the operator's currency;
    sessions priced in another currency are counted apart (``other_currency``). Four queries,
    however many sessions."""
    currency = str(operator.default_currency)
    sessions = _sessions(operator.pk, period)
    figures = _figures(currency)
    totals = _with_average(sessions.aggregate(
        **figures, unpriced=Count("id", filter=Q(price__id__isnull=True)),
        other_currency=Count("id", filter=Q(price__id__isnull=False)
                             & ~Q(price__total_incl_vat_currency=currency))))
    by_day = {row["day"]: row for row in
              sessions.annotate(day=TruncDate("start", tzinfo=UTC)).values("day")
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
