"""Reads of the portal's Sessions pages: the filter form, the filtered list with each session's
current price (one query a page, whatever the number of sessions), a session's rating breakdown
and what settling it did, and the rows of the CSV export.

Periods are whole local days of each session's location (its IANA time zone, as a person reads
the session): a coarse UTC window on the indexed start first, then the exact local day
(``tariffs.selectors.session_local_date``).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import F, FilteredRelation, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from emobility.models import CdrImport, ChargingSession, ChargingStation, Evse, Location
from promotions.selectors import settlement_of
from tariffs.models import SessionPrice
from tariffs.preview import DIMENSION_LABELS, UNITS
from tariffs.selectors import session_local_date

#: at most this many stations or EVSEs are offered in a filter's list (narrow by location)
CHOICES_MAX = 300
#: text filters are at most this long
TEXT_MAX = 64


class SessionFilterForm(forms.Form):
    """The sessions list's filters (GET). Rows are chosen among ``operator``'s only: another
    operator's id is an invalid choice."""

    first = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    last = forms.DateField(label=_("To"), required=False,
                           widget=forms.DateInput(attrs={"type": "date"}))
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.none(),
                                      required=False, empty_label=_("All locations"))
    station = forms.ModelChoiceField(label=_("Station"), queryset=ChargingStation.objects.none(),
                                     required=False, empty_label=_("All stations"))
    evse = forms.ModelChoiceField(label=_("EVSE"), queryset=Evse.objects.none(),
                                  required=False, empty_label=_("All EVSEs"))
    customer = forms.CharField(label=_("Customer"), required=False, max_length=TEXT_MAX,
                               help_text=_("Customer number, or part of the name."))
    token = forms.CharField(label=_("Token or contract id"), required=False,
                            max_length=TEXT_MAX,
                            help_text=_("The token's UID, or part of the contract id (eMAID)."))
    q = forms.CharField(label=_("CDR id"), required=False, max_length=TEXT_MAX,
                        help_text=_("Part of the CDR id."))
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("Any status")),
                                        *ChargingSession.Status.choices])
    priced = forms.ChoiceField(label=_("Price"), required=False,
                               choices=[("", _("Priced or not")), ("yes", _("Priced")),
                                        ("no", _("Not priced"))])
    cdr_import = forms.ModelChoiceField(
        label=_("Import job"), queryset=CdrImport.objects.none(), required=False,
        widget=forms.NumberInput(attrs={"min": 1}),
        help_text=_("The number of a CDR upload: the sessions it created."))

    def __init__(self, *args, operator, **kwargs):
        super().__init__(*args, **kwargs)
        self.operator = operator
        self.fields["location"].queryset = Location.objects.filter(operator=operator)
        self.fields["station"].queryset = ChargingStation.objects.filter(operator=operator)
        self.fields["evse"].queryset = Evse.objects.filter(operator=operator)
        self.fields["cdr_import"].queryset = CdrImport.objects.filter(operator=operator)
        self.fields["cdr_import"].error_messages["invalid_choice"] = _(
            "There is no import job with this number.")

    def clean(self):
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if first and last and last < first:
            self.add_error("last", _("The end date must not be before the start date."))
        location, station, evse = data.get("location"), data.get("station"), data.get("evse")
        if location and station and station.location_id != location.pk:
            self.add_error("station", _("This station is not at the chosen location."))
        if station and evse and evse.station_id != station.pk:
            self.add_error("evse", _("This EVSE is not at the chosen station."))
        return data

    def narrow_choices(self) -> None:
        """Offer the stations of the chosen location and the EVSEs of the chosen station (all
        of them when few), so a large network does not draw thousands of options."""
        data = getattr(self, "cleaned_data", {})
        location, station, evse = data.get("location"), data.get("station"), data.get("evse")
        stations = ChargingStation.objects.filter(operator=self.operator)
        if location:
            stations = stations.filter(location=location)
        elif station:
            stations = stations.filter(location_id=station.location_id)
        evses = Evse.objects.filter(operator=self.operator)
        if station:
            evses = evses.filter(station=station)
        elif evse:
            evses = evses.filter(station_id=evse.station_id)
        elif location:
            evses = evses.filter(station__location=location)
        self._narrow("station", stations.order_by("identity", "pk")
                     .values_list("pk", "identity"), station,
                     _("Choose a location to list its stations."))
        self._narrow("evse", evses.order_by("evse_id", "pk").values_list("pk", "evse_id"), evse,
                     _("Choose a station to list its EVSEs."))

    def _narrow(self, name, rows, chosen, hint) -> None:
        field = self.fields[name]
        rows = list(rows[:CHOICES_MAX + 1])
        if len(rows) > CHOICES_MAX:
            rows = [(chosen.pk, str(chosen))] if chosen else []
            field.help_text = hint
        field.widget.choices = [("", field.empty_label), *rows]


def _local_window(first: date | None, last: date | None) -> Q:
    """Sessions whose start is on local days ``first``..``last`` of any time zone (UTC−12 to
    UTC+14): a filter on the indexed start before the exact one."""
    window = Q()
    if first and first > date.min + timedelta(days=1):
        window &= Q(start__gte=datetime.combine(first - timedelta(days=1), time(), UTC))
    if last and last < date.max - timedelta(days=2):
        window &= Q(start__lt=datetime.combine(last + timedelta(days=2), time(), UTC))
    return window


def sessions(*, operator, filters: dict | None = None) -> QuerySet[ChargingSession]:
    """The operator's sessions, newest first, with their location, customer and token, and
    their current price as ``price_excl_vat``, ``price_vat``, ``price_incl_vat`` and
    ``price_currency`` (``None`` when not priced): one query a page. ``filters`` is a valid
    ``SessionFilterForm``'s cleaned data."""
    f = filters or {}
    queryset = (ChargingSession.objects.filter(operator=operator)
                .annotate(price=FilteredRelation("prices",
                                                 condition=Q(prices__is_current=True)))
                .annotate(price_excl_vat=F("price__total_excl_vat"),
                          price_vat=F("price__total_vat"),
                          price_incl_vat=F("price__total_incl_vat"),
                          price_currency=F("price__total_incl_vat_currency"))
                .select_related("evse__station__location", "customer", "token"))
    first, last = f.get("first"), f.get("last")
    if first or last:
        queryset = queryset.filter(_local_window(first, last)).annotate(
            local_day=session_local_date())
        if first:
            queryset = queryset.filter(local_day__gte=first)
        if last:
            queryset = queryset.filter(local_day__lte=last)
    if f.get("location"):
        queryset = queryset.filter(evse__station__location=f["location"])
    if f.get("station"):
        queryset = queryset.filter(evse__station=f["station"])
    if f.get("evse"):
        queryset = queryset.filter(evse=f["evse"])
    if f.get("customer"):
        text = f["customer"]
        queryset = queryset.filter(Q(customer__reference__iexact=text)
                                   | Q(customer__name__icontains=text))
    if f.get("token"):
        text = f["token"]
        queryset = queryset.filter(Q(token__uid__iexact=text) | Q(contract_id__icontains=text))
    if f.get("q"):
        queryset = queryset.filter(external_id__icontains=f["q"])
    if f.get("status"):
        queryset = queryset.filter(status=f["status"])
    if f.get("priced") == "yes":
        queryset = queryset.filter(price__id__isnull=False)
    elif f.get("priced") == "no":
        queryset = queryset.filter(price__id__isnull=True)
    if f.get("cdr_import"):
        queryset = queryset.filter(cdr_import=f["cdr_import"])
    return queryset.order_by("-start", "-pk")


def with_local_times(rows) -> list[ChargingSession]:
    """Each session with ``local_start``/``local_end`` in its location's time zone."""
    rows = list(rows)
    for row in rows:
        zone = ZoneInfo(row.evse.station.location.time_zone)
        row.local_start, row.local_end = row.start.astimezone(zone), row.end.astimezone(zone)
    return rows


# --- one session -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DimensionRow:
    """One dimension of a price (start fee, energy, charging time, parking time)."""

    label: str
    volume: str
    billed: str
    excl_vat: str
    vat: str
    incl_vat: str


@dataclass(frozen=True)
class LineRow:
    """One price component that priced the session (a line of the breakdown)."""

    label: str
    element: str
    quantity: str
    billed: str
    unit_price: str
    vat_rate: str
    excl_vat: str
    incl_vat: str


_DIMENSION_COSTS = (("FLAT", "total_fixed_cost"), ("ENERGY", "total_energy_cost"),
                    ("TIME", "total_time_cost"), ("PARKING_TIME", "total_parking_cost"))


def _vat(cost: dict) -> str:
    try:
        return format(Decimal(cost["incl_vat"]) - Decimal(cost["excl_vat"]), "f")
    except (KeyError, TypeError, ArithmeticError):
        return "—"


def _with_unit(quantity, unit: str) -> str:
    return f"{quantity} {unit}".rstrip() if quantity is not None else "—"


def price_dimensions(breakdown: dict) -> list[DimensionRow]:
    """The tariff price per dimension, as stored by rating (empty for a retail plan's price,
    whose lines say it all)."""
    if "retail" in breakdown or "dimensions" not in breakdown:
        return []
    rows = []
    lines = breakdown.get("lines", [])
    for dimension, key in _DIMENSION_COSTS:
        cost = breakdown.get(key) or {}
        if dimension == "FLAT":
            volume = billed = "1" if any(line.get("dimension") == "FLAT" for line in lines) \
                else "0"
        else:
            volumes = breakdown["dimensions"].get(dimension, {})
            volume = _with_unit(volumes.get("volume"), UNITS[dimension])
            billed = _with_unit(volumes.get("billed"), UNITS[dimension])
        rows.append(DimensionRow(str(DIMENSION_LABELS[dimension]), volume, billed,
                                 cost.get("excl_vat", "—"), _vat(cost),
                                 cost.get("incl_vat", "—")))
    return rows


def price_lines(breakdown: dict) -> list[LineRow]:
    """The price components that priced the session, with the tariff element (1-based) each
    comes from, as the admin shows them."""
    rows = []
    retail = "retail" in breakdown
    for line in breakdown.get("lines", []):
        cost = line.get("cost") or {}
        if retail:
            quantity = _with_unit(line.get("quantity"), line.get("unit", ""))
            rows.append(LineRow(line.get("label", ""), "—", quantity, "—", line.get("price", ""),
                                line.get("vat") or "—", cost.get("excl_vat", "—"),
                                cost.get("incl_vat", "—")))
            continue
        dimension = line.get("dimension", "")
        unit = UNITS.get(dimension, "")
        index = line.get("index")
        price = line.get("price", "")
        if index:
            price = f"{price} ({index.get('index')} {index.get('start')})"
        element = line.get("element_index")
        rows.append(LineRow(
            str(DIMENSION_LABELS.get(dimension, dimension)),
            "—" if element is None else str(element + 1),
            _with_unit(line.get("quantity"), unit), _with_unit(line.get("billed_quantity"), unit),
            price, line.get("vat") if line.get("vat") is not None else "—",
            cost.get("excl_vat", "—"), cost.get("incl_vat", "—")))
    return rows


def session_prices(*, operator, session) -> list[SessionPrice]:
    """Every price the session had, newest first, with the tariff version, assignment and plan
    that made it (the current one is ``is_current``)."""
    return list(SessionPrice.objects.filter(operator=operator, session=session)
                .select_related("tariff_version__tariff", "assignment__tariff_group",
                                "retail_plan", "rating_run")
                .order_by("-is_current", "-rated_at", "-pk"))


def session_settlement(*, operator, session):
    """What settling the session did (coupons' discount lines, prepaid credit, amount due), or
    ``None`` when it is not settled."""
    return settlement_of(operator_id=operator.pk, session_id=session.pk)


# --- the CSV export ------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "cdr_id", "start_local", "end_local", "time_zone", "start_utc", "end_utc", "location_code",
    "location", "station", "evse_id", "customer_reference", "customer_name", "token_uid",
    "contract_id", "energy_kwh", "charging_minutes", "parking_minutes", "status", "tariff",
    "tariff_version", "price_excl_vat", "vat", "price_incl_vat", "currency", "import_job",
)


def export_rows(queryset: QuerySet[ChargingSession]):
    """The sessions of a ``sessions()`` queryset as plain tuples (read in chunks from a
    server-side cursor: a big export is never held in memory)."""
    return (queryset.select_related(None)
            .values_list("external_id", "start", "end", "evse__station__location__time_zone",
                         "evse__station__location__code", "evse__station__location__name",
                         "evse__station__identity", "evse__evse_id", "customer__reference",
                         "customer__name", "token__uid", "contract_id", "energy_kwh",
                         "charging_seconds", "parking_seconds", "status",
                         "price__tariff_version__tariff__code", "price__tariff_version__number",
                         "price__retail_plan__code", "price_excl_vat", "price_vat",
                         "price_incl_vat", "price_currency", "cdr_import_id")
            .iterator(chunk_size=2000))
