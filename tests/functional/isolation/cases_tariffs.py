"""The Tariffs pages and the price simulator (portal/pages/tariffs.py,
portal/pages/simulator.py)."""

from . import LIST, Case


def _prices(w) -> dict:
    return {"energy": "0.40", "peak_energy": "0.60", "offpeak_energy": "0.30", "vat": "21",
            "time_step": "60", "peak_0_17": "on", "peak_1_17": "on"}


def _b_tariff(w) -> dict:
    return {"pk": w.b.tariff.pk}


PORTAL = {
    # A's tariffs only, each with its version in force now
    "tariffs": Case(LIST),
    # creating names no other row (a tariff id is unique per operator): the form is read; the
    # refusals of bad input are in test_portal_tariffs.py
    "tariff_create": Case(LIST),
    "tariff": Case(kwargs=_b_tariff),
    # a new version, the builder and an assignment of B's tariff: 404 before anything is read
    "tariff_version_new": Case(kwargs=_b_tariff, methods=("GET", "POST"), body=_prices),
    "tariff_builder": Case(kwargs=_b_tariff, methods=("GET", "POST"), body=_prices),
    "tariff_assign": Case(kwargs=_b_tariff, methods=("GET", "POST"),
                          body=lambda w: {"level": "station", "station": w.b.station.pk,
                                          "tariff_group": w.b.tariff_group.pk}),
    # pricing at B's EVSE, for B's group or customer: invalid choices, 400 with the errors
    "simulator": Case(LIST, methods=("GET", "POST"), body=lambda w: {
        "evse": w.b.evse.pk, "tariff_group": w.b.tariff_group.pk,
        "start": "2026-10-15T18:00", "energy_kwh": "10", "charging_minutes": "60",
        "parking_minutes": "0"}),
}
