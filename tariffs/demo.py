"""Demo tariffs on top of the demo network (``emobility.demo``), and every demo session rated.

Per operator: tariff groups (individuals, fleets); a network default for every customer (with a
price change in the middle of the demo month, so sessions of one month are priced by two
versions) and one for fleets; a region tariff in Flanders; peak/off-peak prices on every DC
station (built from a weekly schedule); a first-hour-of-parking-free tariff at the P+R; a
dynamic tariff that follows a day-ahead price index (a year of hourly sample prices) at the
Rotterdam site; the home charger priced at its owner's reimbursement rate at EVSE level.

Deterministic and idempotent like the rest of the demo: rows are found by their natural keys,
and a tariff that exists is left as it is.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from emobility.demo import OPERATORS, last_complete_month
from emobility.models import ChargingStation, Customer, Evse, Location, Operator

from .models import (
    PriceComponent,
    PriceIndex,
    PriceIndexValue,
    Tariff,
    TariffAssignment,
    TariffGroup,
)
from .pricing.schedule import peak_offpeak_elements
from .services import tariff_assign, tariff_group_set, tariff_import_ocpi

SEED = 20261125
VAT = {"NL": Decimal(21), "BE": Decimal(21)}
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def _c(kind: str, price: str, vat: Decimal, step: int = 1) -> dict[str, Any]:
    return {"type": kind, "price": Decimal(price), "vat": vat, "step_size": step}


def _texts(en: str, nl: str) -> list[dict[str, str]]:
    return [{"language": "en", "text": en}, {"language": "nl", "text": nl}]


def _ocpi(operator: Operator, code: str, elements: list[dict], en: str, nl: str,
          **extra) -> dict[str, Any]:
    return {"country_code": operator.ocpi_country_code, "party_id": operator.ocpi_party_id,
            "id": code, "currency": "EUR", "type": "REGULAR", "tariff_alt_text": _texts(en, nl),
            "elements": elements, **extra}


def _import(operator: Operator, name: str, versions: list[tuple[datetime, dict]]) -> Tariff:
    """The tariff with these versions (each from its start), unless it exists already."""
    code = versions[0][1]["id"]
    existing = Tariff.objects.filter(operator=operator, code=code).first()
    if existing is not None:
        return existing
    for start, data in versions:
        tariff_import_ocpi(operator=operator, name=name,
                           data={**data, "start_date_time": start.isoformat()})
    return Tariff.objects.get(operator=operator, code=code)


def _assign(tariff: Tariff, level: str, since: datetime, group: TariffGroup | None = None,
            **target) -> None:
    lookup = {"operator": tariff.operator, "tariff": tariff, "level": level,
              "tariff_group": group, **target}
    if not TariffAssignment.objects.filter(**lookup).exists():
        tariff_assign(tariff=tariff, level=level, valid_from=since, tariff_group=group,
                      region=target.get("region", ""), evse=target.get("evse"),
                      station=target.get("station"), location=target.get("location"))


def _groups(operator: Operator) -> dict[str, TariffGroup]:
    groups = {}
    for code, name, kind in (("individuals", "Individuals", TariffGroup.Kind.INDIVIDUALS),
                             ("fleets", "Fleets", TariffGroup.Kind.FLEETS)):
        groups[code], _ = TariffGroup.objects.update_or_create(
            operator=operator, code=code, defaults={"name": name, "kind": kind})
    for customer in Customer.objects.filter(operator=operator):
        group = groups["fleets"] if customer.kind == Customer.Kind.BUSINESS \
            else groups["individuals"]
        tariff_group_set(customer=customer, group=group)
    return groups


def _index_prices(operator: Operator, first: date, days: int) -> PriceIndex:
    """A day-ahead index with hourly sample prices (EUR/kWh): a daily curve (cheap at night and
    mid-day sun, dear at the evening peak), a winter/summer swing, seeded noise, and a few hours
    below zero on sunny spring afternoons, as real markets have."""
    index, _ = PriceIndex.objects.update_or_create(
        operator=operator, code=f"{operator.ocpi_country_code.lower()}-day-ahead",
        defaults={"name": f"{operator.ocpi_country_code} day-ahead (sample prices)",
                  "market_zone": operator.ocpi_country_code, "currency": "EUR",
                  "interval_minutes": 60})
    rng = random.Random(SEED)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    rows = []
    for hour in range(days * 24):
        at = start + timedelta(hours=hour)
        day_of_year = at.timetuple().tm_yday
        local_hour = (at.hour + 1) % 24
        season = 0.025 * math.cos(2 * math.pi * (day_of_year - 15) / 365)
        daily = (0.035 * math.exp(-((local_hour - 19) ** 2) / 6)
                 + 0.02 * math.exp(-((local_hour - 8) ** 2) / 4)
                 - 0.03 * math.exp(-((local_hour - 13) ** 2) / 5)
                 * max(0.0, math.sin(2 * math.pi * (day_of_year - 80) / 365)))
        value = 0.085 + season + daily + rng.gauss(0, 0.012)
        rows.append(PriceIndexValue(index=index, start=at,
                                    price=Decimal(str(round(value, 5)))))
    PriceIndexValue.objects.bulk_create(rows, batch_size=2000, update_conflicts=True,
                                        unique_fields=["index", "start"],
                                        update_fields=["price"])
    return index


def seed_tariffs(*, today: date, log=print) -> None:
    """Tariffs, groups, assignments and index prices of the demo operators."""
    year, month = last_complete_month(today)
    month_start = datetime(year, month, 1, tzinfo=UTC)
    since = month_start - timedelta(days=365)  # every version and assignment starts a year ago
    mid_month = month_start + timedelta(days=14)
    for spec in OPERATORS:
        operator = Operator.objects.get(code=spec.code)
        vat = VAT[spec.country]
        party = spec.party_id
        groups = _groups(operator)

        standard = [
            {"price_components": [_c("FLAT", "0.35", vat)]},
            {"price_components": [_c("ENERGY", "0.39", vat), _c("PARKING_TIME", "0", vat)],
             "restrictions": {"max_duration": 3 * 3600}},
            {"price_components": [_c("ENERGY", "0.39", vat),
                                  _c("PARKING_TIME", "1.80", vat, step=900)]},
        ]
        raised = [dict(e) for e in standard]
        raised[1] = {"price_components": [_c("ENERGY", "0.42", vat),
                                          _c("PARKING_TIME", "0", vat)],
                     "restrictions": {"max_duration": 3 * 3600}}
        raised[2] = {"price_components": [_c("ENERGY", "0.42", vat),
                                          _c("PARKING_TIME", "1.80", vat, step=900)]}
        ac = _import(operator, "AC standard", [
            (since, _ocpi(operator, f"{party}-AC-STANDARD", standard,
                          "0.35 start fee, 0.39/kWh; parking free for 3 hours, then 1.80/h",
                          "0,35 starttarief, 0,39/kWh; 3 uur gratis parkeren, daarna 1,80/u")),
            (mid_month, _ocpi(operator, f"{party}-AC-STANDARD", raised,
                              "0.35 start fee, 0.42/kWh; parking free for 3 hours, then 1.80/h",
                              "0,35 starttarief, 0,42/kWh; 3 uur gratis parkeren, daarna "
                              "1,80/u")),
        ])
        _assign(ac, TariffAssignment.Level.NETWORK, since)

        fleet = _import(operator, "Fleet contract", [(since, _ocpi(
            operator, f"{party}-FLEET",
            [{"price_components": [_c("ENERGY", "0.33", vat)]}],
            "Fleet contract: 0.33/kWh, no start fee, parking included",
            "Wagenparkcontract: 0,33/kWh, geen starttarief, parkeren inbegrepen"))])
        _assign(fleet, TariffAssignment.Level.NETWORK, since, groups["fleets"])

        dc_elements = peak_offpeak_elements(
            {day: [("07:00", "11:00"), ("17:00", "21:00")] for day in WEEKDAYS},
            peak=[_c("ENERGY", "0.69", vat), _c("PARKING_TIME", "12.00", vat, step=60)],
            offpeak=[_c("ENERGY", "0.55", vat), _c("PARKING_TIME", "12.00", vat, step=60)],
            flat=_c("FLAT", "0.50", vat))
        dc = _import(operator, "DC fast, peak/off-peak", [(since, _ocpi(
            operator, f"{party}-DC-PEAK", dc_elements,
            "DC: 0.50 start fee; 0.69/kWh on weekdays 07-11 and 17-21, else 0.55/kWh; "
            "0.20 per idle minute",
            "DC: 0,50 starttarief; 0,69/kWh op werkdagen 07-11 en 17-21 uur, anders 0,55/kWh; "
            "0,20 per minuut stilstaan"))])
        for station in ChargingStation.objects.filter(  # own stations: not the partners'
                operator=operator, evses__power_type=Evse.PowerType.DC,
                location__cpo_party="").distinct():
            _assign(dc, TariffAssignment.Level.STATION, since, station=station)

        if spec.country == "NL":
            pr = _import(operator, "P+R: first hour of parking free", [(since, _ocpi(
                operator, f"{party}-PR-PARKING",
                [{"price_components": [_c("ENERGY", "0.36", vat),
                                       _c("PARKING_TIME", "0", vat)],
                  "restrictions": {"max_duration": 3600}},
                 {"price_components": [_c("ENERGY", "0.36", vat),
                                       _c("PARKING_TIME", "2.50", vat, step=900)]}],
                "0.36/kWh; the first hour of parking is free, then 2.50/h per quarter",
                "0,36/kWh; het eerste uur parkeren is gratis, daarna 2,50/u per kwartier"))])
            _assign(pr, TariffAssignment.Level.LOCATION, since,
                    location=Location.objects.get(operator=operator, code="UTR-PAPENDORP"))

            index = _index_prices(operator, since.date(), days=(month_start - since).days + 45)
            dynamic = _import(operator, "Dynamic (day-ahead + 0.15)", [(since, _ocpi(
                operator, f"{party}-DYNAMIC",
                [{"price_components": [_c("ENERGY", "0.30", vat)]}],
                "Dynamic: the hour's day-ahead price + 10 % + 0.15/kWh, at least 0.20, at "
                "most 0.75/kWh",
                "Dynamisch: de uurprijs van de day-aheadmarkt + 10 % + 0,15/kWh, minstens 0,20 "
                "en hoogstens 0,75/kWh"))])
            PriceComponent.objects.filter(
                element__version__tariff=dynamic, type="ENERGY", price_index__isnull=True
            ).update(price_index=index, index_markup_abs=Decimal("0.15"),
                     index_markup_pct=Decimal(10), index_floor=Decimal("0.20"),
                     index_cap=Decimal("0.75"))
            _assign(dynamic, TariffAssignment.Level.LOCATION, since,
                    location=Location.objects.get(operator=operator, code="RTM-KOPVANZUID"))

            home = _import(operator, "Home charger reimbursement rate", [(since, _ocpi(
                operator, f"{party}-HOME",
                [{"price_components": [_c("ENERGY", "0.28", Decimal(0))]}],
                "Home charging at the owner's electricity rate: 0.28/kWh",
                "Thuisladen tegen het stroomtarief van de eigenaar: 0,28/kWh"))])
            _assign(home, TariffAssignment.Level.EVSE, since,
                    evse=Evse.objects.get(operator=operator, evse_id="NL*VNL*E90001*1"))
        else:
            flanders = _import(operator, "Flanders", [(since, _ocpi(
                operator, f"{party}-FLANDERS",
                [{"price_components": [_c("FLAT", "0.25", vat)]},
                 {"price_components": [_c("ENERGY", "0.41", vat)]}],
                "Flanders: 0.25 start fee, 0.41/kWh",
                "Vlaanderen: 0,25 starttarief, 0,41/kWh"))])
            _assign(flanders, TariffAssignment.Level.REGION, since, region="Flanders")
        log(f"{operator.name}: {Tariff.objects.filter(operator=operator).count()} tariffs, "
            f"{TariffAssignment.objects.filter(operator=operator).count()} assignments")
