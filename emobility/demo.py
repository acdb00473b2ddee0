"""The demo network: deterministic, idempotent, realistic enough to click through.

``seed_demo`` builds two operators (Netherlands and Belgium) with locations in two time zones,
AC and DC stations, a home charger owned by an employee, individual and fleet customers with
their tokens, and a month of charging sessions. Every random choice comes from one seeded
generator, and every row is found by its natural key before it is created, so running it again
leaves the same data. Later issues add tariffs, coupons, invoices and payments here.
"""

import calendar
import random
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from stdnum.eu import vat as eu_vat

from .models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Membership,
    Operator,
    Token,
)
from .services import membership_set

SEED = 20261124
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed for the demo users, never in production

FIRST_NAMES = ["Sanne", "Daan", "Emma", "Lucas", "Julia", "Noah", "Lotte", "Sem", "Eva", "Finn",
               "Anna", "Milan", "Sophie", "Levi", "Fleur", "Jesse", "Lisa", "Thijs", "Iris",
               "Ruben", "Marie", "Louis", "Camille", "Arthur", "Elise", "Victor", "Lina", "Jules"]
LAST_NAMES = ["de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "Mulder",
              "de Boer", "Bos", "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems",
              "Claes", "Goossens", "Wouters", "Dubois", "Lambert", "Dupont", "Hendrickx"]


@dataclass(frozen=True)
class LocationSpec:
    code: str
    name: str
    city: str
    region: str
    kind: str
    stations: tuple[tuple[str, int, str], ...]  # (power type, kW, vendor) per station


@dataclass(frozen=True)
class OperatorSpec:
    code: str
    name: str
    country: str
    party_id: str
    time_zone: str
    address: tuple[str, str, str]
    vat_base: str
    locations: tuple[LocationSpec, ...]
    individuals: int
    fleets: tuple[tuple[str, int], ...]  # (fleet name, number of tokens)
    sessions: int


AC11 = ("AC_3_PHASE", 11, "Alfen")
AC22 = ("AC_3_PHASE", 22, "Ecotap")
DC50 = ("DC", 50, "ABB")
DC150 = ("DC", 150, "Kempower")

OPERATORS = (
    OperatorSpec(
        code="voltnet-nl", name="VoltNet Nederland B.V.", country="NL", party_id="VNL",
        time_zone="Europe/Amsterdam", address=("Gustav Mahlerlaan 10", "1082 PP", "Amsterdam"),
        vat_base="NL8012345", individuals=95, fleets=(("Groen Transport B.V.", 30),),
        sessions=2000,
        locations=(
            LocationSpec("AMS-ZUIDAS", "Amsterdam Zuidas Garage", "Amsterdam", "Noord-Holland",
                         "public", (AC22, AC22, AC22, AC11, DC150, DC150)),
            LocationSpec("UTR-PAPENDORP", "Utrecht P+R Papendorp", "Utrecht", "Utrecht",
                         "public", (AC11, AC11, AC22, DC50, DC50)),
            LocationSpec("RTM-KOPVANZUID", "Rotterdam Kop van Zuid", "Rotterdam", "Zuid-Holland",
                         "semi_public", (AC11, AC22, AC22)),
            LocationSpec("SPL-LOGISTICS", "Schiphol Logistics Park (office)", "Schiphol",
                         "Noord-Holland", "office", (AC11, AC11)),
        ),
    ),
    OperatorSpec(
        code="ampere-be", name="AmpèreCharge BV", country="BE", party_id="ACB",
        time_zone="Europe/Brussels", address=("Rue de la Loi 42", "1000", "Brussels"),
        vat_base="BE04123", individuals=58, fleets=(("Logistique Wallonne SA", 20),),
        sessions=1300,
        locations=(
            LocationSpec("BRU-MIDI", "Brussels Gare du Midi", "Brussels", "Brussels-Capital",
                         "public", (AC22, AC22, DC50, DC150)),
            LocationSpec("ANR-LINKEROEVER", "Antwerp Linkeroever", "Antwerp", "Flanders",
                         "public", (AC11, AC22, AC22)),
            LocationSpec("GNT-HUB", "Gent Fast Hub", "Ghent", "Flanders", "public",
                         (DC50, DC150, DC150)),
        ),
    ),
)

HOME_LOCATION = LocationSpec("HOME-DEVRIES", "Home charger J. de Vries", "Haarlem",
                             "Noord-Holland", "private_home", (("AC_1_PHASE", 7, "Zaptec"),))


def last_complete_month(today: date) -> tuple[int, int]:
    first = today.replace(day=1)
    previous = first - timedelta(days=1)
    return previous.year, previous.month


def _valid_vat(base: str) -> str:
    """The first valid VAT number counting up from ``base`` (deterministic)."""
    country, digits = base[:2], base[2:]
    width = 9 if country == "NL" else 10
    number = int(digits.ljust(width, "0"))
    while True:
        candidate = f"{country}{number:0{width}d}" + ("B01" if country == "NL" else "")
        if eu_vat.is_valid(candidate):
            return candidate
        number += 1


def _upsert(model, lookup: dict, values: dict):
    obj, _ = model.objects.update_or_create(**lookup, defaults=values)
    return obj


def _users(operators: dict[str, Operator]) -> list[tuple[str, str, str]]:
    User = get_user_model()
    logins = []
    admin, created = User.objects.get_or_create(
        username="admin", defaults={"email": "admin@example.com"})
    admin.is_staff = admin.is_superuser = True
    admin.set_password(DEMO_PASSWORD)
    admin.save()
    logins.append(("admin", "platform superuser (every operator)", "/admin/"))
    for spec in OPERATORS:
        operator = operators[spec.code]
        suffix = spec.country.lower()
        for role, label in (("finance", "finance"), ("manager", "CPO manager")):
            user, _ = User.objects.get_or_create(
                username=f"{role}.{suffix}",
                defaults={"email": f"{role}@{spec.code}.example.com"})
            user.is_staff = True
            user.is_superuser = False
            user.first_name = label.capitalize()
            user.last_name = spec.name
            user.set_password(DEMO_PASSWORD)
            user.save()
            membership_set(user=user, operator=operator,
                           role=Membership.Role.FINANCE if role == "finance"
                           else Membership.Role.MANAGER)
            logins.append((user.username, f"{label} of {spec.name}", "/admin/"))
    return logins


def _network(rng: random.Random, spec: OperatorSpec, operator: Operator) -> list[Evse]:
    evses = []
    station_no = 0
    for loc_spec in spec.locations:
        location = _upsert(Location, {"operator": operator, "code": loc_spec.code}, {
            "name": loc_spec.name, "city": loc_spec.city, "region": loc_spec.region,
            "country": spec.country, "time_zone": spec.time_zone, "kind": loc_spec.kind,
            "address_line": f"{loc_spec.name.split()[-1]} {rng.randint(1, 200)}",
            "postal_code": f"{rng.randint(1000, 9999)}",
        })
        for power_type, kw, vendor in loc_spec.stations:
            station_no += 1
            station = _upsert(ChargingStation, {
                "operator": operator, "identity": f"{spec.party_id}-CS-{station_no:04d}"}, {
                "location": location, "vendor": vendor,
                "model": f"{'DC' if power_type == 'DC' else 'AC'} {kw} kW"})
            for connector in (1, 2):
                evses.append(_upsert(Evse, {
                    "operator": operator,
                    "evse_id": f"{spec.country}*{spec.party_id}*E{station_no:05d}*{connector}"}, {
                    "station": station, "power_type": power_type,
                    "max_power_kw": Decimal(kw)}))
    return evses


def _customers(rng: random.Random, spec: OperatorSpec,
               operator: Operator) -> list[tuple[Customer, Token]]:
    """Individuals with one token each, fleets with many; returns (customer, token) pairs."""
    pairs = []
    token_no = 0

    def token_for(customer: Customer, app: bool) -> Token:
        nonlocal token_no
        token_no += 1
        uid = f"{rng.getrandbits(56):014X}"
        return _upsert(Token, {"operator": operator,
                               "contract_id": f"{spec.country}-{spec.party_id}-C{token_no:08d}"}, {
            "customer": customer, "uid": uid,
            "type": Token.Type.APP_USER if app else Token.Type.RFID,
            "visual_number": f"{spec.party_id}-{token_no:06d}", "valid": True})

    for n in range(1, spec.individuals + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        customer = _upsert(Customer, {"operator": operator,
                                      "reference": f"C-{spec.country}-{n:05d}"}, {
            "kind": Customer.Kind.INDIVIDUAL, "name": name,
            "email": f"{name.lower().replace(' ', '.')}.{n}@example.com",
            "country": spec.country, "city": spec.address[2],
            "address_line": f"{rng.choice(LAST_NAMES).title()}straat {rng.randint(1, 180)}",
            "postal_code": f"{rng.randint(1000, 9999)}",
            "language": "nl" if rng.random() < 0.7 else "en",
            "currency": "EUR"})
        pairs.append((customer, token_for(customer, app=rng.random() < 0.3)))
    for fleet_no, (fleet_name, tokens) in enumerate(spec.fleets, start=1):
        fleet = _upsert(Customer, {"operator": operator,
                                   "reference": f"F-{spec.country}-{fleet_no:03d}"}, {
            "kind": Customer.Kind.BUSINESS, "name": fleet_name,
            "email": f"fleet{fleet_no}@{spec.code}.example.com",
            "vat_number": _valid_vat(f"{spec.country}00{fleet_no}7654"),
            "country": spec.country, "city": spec.address[2],
            "address_line": f"Industrieweg {fleet_no * 7}", "postal_code": "2000",
            "language": "nl", "currency": "EUR"})
        for _ in range(tokens):
            # Fleet drivers charge more often: each fleet token counts three times.
            token = token_for(fleet, app=False)
            pairs.extend([(fleet, token)] * 3)
    return pairs


def _session_times(rng: random.Random, evse: Evse, year: int, month: int,
                   tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime, int, int, Decimal]:
    """A realistic session: start hour by site type, DC short and fast, AC long with idle time."""
    days = calendar.monthrange(year, month)[1]
    day = rng.randint(1, days)
    is_dc = evse.power_type == Evse.PowerType.DC
    if is_dc:
        hour = rng.choice([7, 8, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21])
        charging_min = rng.randint(12, 55)
        parking_min = rng.choice([0, 0, 0, 2, 5, 10])
        power_kw = min(evse.max_power_kw, Decimal(rng.randint(35, 140)))
    else:
        hour = rng.choice([7, 8, 8, 9, 9, 10, 13, 17, 18, 18, 19, 20, 21, 22])
        charging_min = rng.randint(45, 420)
        parking_min = rng.choice([0, 15, 30, 60, 120, 240, 480])
        power_kw = min(evse.max_power_kw, Decimal(rng.choice([7, 11, 11, 16, 22])))
    local_start = datetime(year, month, day, hour, rng.randint(0, 59), rng.randint(0, 59),
                           tzinfo=tz)
    start = local_start.astimezone(UTC)
    end = start + timedelta(minutes=charging_min + parking_min)
    battery_wh = rng.randint(20_000, 75_000)
    delivered_wh = min(battery_wh, int(power_kw * 1000 * charging_min / 60 * Decimal("0.92")))
    energy = (Decimal(delivered_wh) / 1000).quantize(Decimal("0.0001"))
    return start, end, charging_min * 60, parking_min * 60, energy


def _sessions(rng: random.Random, spec: OperatorSpec, operator: Operator, evses: list[Evse],
              pairs: list[tuple[Customer, Token]], year: int, month: int) -> int:
    tz = zoneinfo.ZoneInfo(spec.time_zone)
    rows = []
    for n in range(1, spec.sessions + 1):
        evse = rng.choice(evses)
        customer, token = rng.choice(pairs)
        start, end, charging_s, parking_s, energy = _session_times(rng, evse, year, month, tz)
        external_id = f"DEMO-{spec.party_id}-{year}{month:02d}-{n:06d}"
        auth = rng.choice([ChargingSession.AuthMethod.WHITELIST,
                           ChargingSession.AuthMethod.AUTH_REQUEST,
                           ChargingSession.AuthMethod.COMMAND])
        rows.append(ChargingSession(
            operator=operator, external_id=external_id, evse=evse, token=token,
            customer=customer, start=start, end=end, energy_kwh=energy,
            charging_seconds=charging_s, parking_seconds=parking_s,
            max_power_kw=evse.max_power_kw, auth_method=auth,
            authorization_reference=f"AUTH{rng.getrandbits(40):010X}",
            source=ChargingSession.Source.DEMO,
            raw={"cdr_id": external_id, "evse_id": evse.evse_id, "token_uid": token.uid,
                 "start": start.isoformat(), "end": end.isoformat(), "energy_kwh": str(energy)}))
    ChargingSession.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    return len(rows)


def _home_charger(rng: random.Random, operator: Operator, year: int, month: int) -> int:
    """An employee's home charger: reimbursed later; the employee charges there most evenings."""
    owner = _upsert(Customer, {"operator": operator, "reference": "C-NL-HOME-001"}, {
        "kind": Customer.Kind.INDIVIDUAL, "name": "Jeroen de Vries",
        "email": "jeroen.devries@example.com", "country": "NL", "city": "Haarlem",
        "address_line": "Kleverparkweg 12", "postal_code": "2023 CA", "language": "nl"})
    token = _upsert(Token, {"operator": operator, "contract_id": "NL-VNL-C90000001"}, {
        "customer": owner, "uid": "04A1B2C3D4E5F6", "type": Token.Type.RFID,
        "visual_number": "VNL-HOME-001"})
    location = _upsert(Location, {"operator": operator, "code": HOME_LOCATION.code}, {
        "name": HOME_LOCATION.name, "city": HOME_LOCATION.city, "region": HOME_LOCATION.region,
        "country": "NL", "time_zone": "Europe/Amsterdam", "kind": HOME_LOCATION.kind,
        "address_line": "Kleverparkweg 12", "postal_code": "2023 CA"})
    station = _upsert(ChargingStation, {"operator": operator, "identity": "VNL-HOME-0001"}, {
        "location": location, "vendor": "Zaptec", "model": "Go 7 kW", "owner": owner})
    evse = _upsert(Evse, {"operator": operator, "evse_id": "NL*VNL*E90001*1"}, {
        "station": station, "power_type": Evse.PowerType.AC_1_PHASE,
        "max_power_kw": Decimal("7.4")})
    return _sessions(rng, OperatorSpec(
        code=operator.code, name=operator.name, country="NL", party_id="VNL-HOME",
        time_zone="Europe/Amsterdam", address=("", "", "Haarlem"), vat_base="", locations=(),
        individuals=0, fleets=(), sessions=24), operator, [evse], [(owner, token)], year, month)


@transaction.atomic
def seed_demo(*, today: date, log=print) -> list[tuple[str, str, str]]:
    """Build (or refresh) the demo data; returns the demo log-ins (username, who, where)."""
    rng = random.Random(SEED)
    year, month = last_complete_month(today)
    operators = {}
    for spec in OPERATORS:
        operators[spec.code] = _upsert(Operator, {"code": spec.code}, {
            "name": spec.name, "ocpi_country_code": spec.country, "ocpi_party_id": spec.party_id,
            "default_currency": "EUR", "vat_number": _valid_vat(spec.vat_base),
            "address_line": spec.address[0], "postal_code": spec.address[1],
            "city": spec.address[2], "country": spec.country,
        })
    for spec in OPERATORS:
        operator = operators[spec.code]
        evses = _network(rng, spec, operator)
        pairs = _customers(rng, spec, operator)
        count = _sessions(rng, spec, operator, evses, pairs, year, month)
        log(f"{operator.name}: {len(evses)} EVSEs, {len({c.pk for c, _ in pairs})} customers, "
            f"{count} sessions in {year}-{month:02d}")
    count = _home_charger(rng, operators["voltnet-nl"], year, month)
    log(f"Home charger of Jeroen de Vries: {count} sessions")
    return _users(operators)


DEMO_IMPORT_ROWS = 240


def demo_cdr_file(*, operator: Operator, today: date) -> tuple[str, bytes]:
    """A CDR export as a charging-station back end writes it (the ``cpo-portal`` profile:
    semicolons, Wh, local day-first times, a plug-type column), for the demo's import job: the
    last complete month's sessions at the operator's own public stations (not its partners'),
    with the kind of mistakes real files have (a few rows refused, a CDR sent twice, one sent
    again with other content)."""
    rng = random.Random(SEED + 1)
    year, month = last_complete_month(today)
    evses = list(Evse.objects.filter(operator=operator, station__location__cpo_party="").exclude(
        station__location__kind=Location.Kind.PRIVATE_HOME)
        .select_related("station__location").order_by("evse_id"))
    tokens = list(Token.objects.filter(operator=operator, valid=True,
                                       customer__status=Customer.Status.ACTIVE).order_by("uid"))
    lines = ["Charge ID;Station ID;EVSE-ID;Start time;Stop time;Energy (Wh);Plug type;"
             "Card number;Idle time (min)"]
    for n in range(1, DEMO_IMPORT_ROWS + 1):
        evse = rng.choice(evses)
        tz = zoneinfo.ZoneInfo(evse.station.location.time_zone)
        start, end, _charging, parking, energy = _session_times(rng, evse, year, month, tz)
        plug = "CCS" if evse.power_type == Evse.PowerType.DC else "Type 2"
        wh = format(energy * 1000, "f").replace(".", ",")
        lines.append(";".join([
            f"IMP-{year}{month:02d}-{n:05d}", evse.station.identity, evse.evse_id,
            start.astimezone(tz).strftime("%d-%m-%Y %H:%M:%S"),
            end.astimezone(tz).strftime("%d-%m-%Y %H:%M:%S"), wh, plug,
            rng.choice(tokens).uid, str(parking // 60)]))
    header, first, second = lines[0], lines[1], lines[2]
    bad = [
        first.replace(first.split(";")[2], "NL*XXX*E99999*1"),           # unknown EVSE
        second.replace(second.split(";")[5], "12,4,5"),                 # unreadable energy
        first.replace(first.split(";")[4], first.split(";")[3]),        # ends as it starts
    ]
    bad = [line.replace(line.split(";")[0], f"IMP-{year}{month:02d}-BAD{i}")
           for i, line in enumerate(bad)]
    resent = lines[10]
    changed = lines[11].replace(lines[11].split(";")[8], "45")
    return (f"cdr-export-{year}-{month:02d}.csv",
            ("\r\n".join([header, *lines[1:], *bad, resent, changed]) + "\r\n").encode())
