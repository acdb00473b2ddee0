"""The CDR intake API tests' fixtures (two operators' networks with a tariff in force and an API
key each; made available by conftest.py) and helpers to write OCPI CDRs and to call the API with
a key. Modelled on tests/integration/cdrs/conftest.py."""

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from emobility.exactjson import dumps as exact_dumps
from emobility.models import Customer, Evse, Operator, Token
from emobility.services import api_key_create
from tariffs.models import TariffAssignment
from tariffs.services import tariff_assign
from tests.factories import (
    EvseFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)


@dataclass
class CdrNet:
    operator: Operator
    evse: Evse
    dc: Evse
    token: Token
    blocked_token: Token
    key: str


def _network(code: str, party: str, *, evse_id: str, uid: str) -> CdrNet:
    operator = OperatorFactory(code=code, name=f"Operator {code}", ocpi_party_id=party)
    evse = EvseFactory(station__location__operator=operator, evse_id=evse_id,
                       station__identity=f"CS-{party}-1", max_power_kw=Decimal("22"))
    dc = EvseFactory(station=evse.station, evse_id=evse_id[:-1] + "2",
                     max_power_kw=Decimal("150"), power_type=Evse.PowerType.DC)
    token = TokenFactory(customer__operator=operator, uid=uid,
                         contract_id=f"NL-{party}-C00000001")
    blocked = TokenFactory(customer__operator=operator, uid=f"BLOCKED{party}", valid=False)
    TokenFactory(customer__operator=operator, uid=f"BLOCKEDCUST{party}",
                 customer__status=Customer.Status.BLOCKED)
    tariff = TariffFactory(operator=operator, code="STD")
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    _, key = api_key_create(operator=operator, name="CSMS", actor=None)
    return CdrNet(operator, evse, dc, token, blocked, key)


@pytest.fixture
def cdr_net(db) -> CdrNet:
    """Operator "acme": EVSE NL*ACM*E00001*1 (22 kW), token 04A1B2C3D4E5F6, 0.40/kWh + 21 %."""
    return _network("acme", "ACM", evse_id="NL*ACM*E00001*1", uid="04A1B2C3D4E5F6")


@pytest.fixture
def other_net(db) -> CdrNet:
    """Operator "bolt": EVSE NL*BLT*E00001*1, token B0B0B0B0B0B0B0."""
    return _network("bolt", "BLT", evse_id="NL*BLT*E00001*1", uid="B0B0B0B0B0B0B0")


OCPI_CDR = {
    "country_code": "NL",
    "party_id": "ACM",
    "id": "CDR-1",
    "start_date_time": "2026-10-01T08:00:00Z",
    "end_date_time": "2026-10-01T10:00:00Z",
    "session_id": "SESSION-1",
    "cdr_token": {"country_code": "NL", "party_id": "ACM", "uid": "04A1B2C3D4E5F6",
                  "type": "RFID", "contract_id": "NL-ACM-C00000001"},
    "auth_method": "WHITELIST",
    "authorization_reference": "AUTH-1",
    "cdr_location": {"id": "LOC1", "name": "Damrak", "address": "Damrak 1", "city": "Amsterdam",
                     "postal_code": "1012LG", "country": "NLD",
                     "coordinates": {"latitude": "52.376", "longitude": "4.897"},
                     "evse_uid": "3256", "evse_id": "NL*ACM*E00001*1", "connector_id": "1",
                     "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
                     "connector_power_type": "AC_3_PHASE"},
    "currency": "EUR",
    "tariffs": [{"country_code": "NL", "party_id": "ACM", "id": "STD", "currency": "EUR",
                 "elements": [{"price_components": [
                     {"type": "ENERGY", "price": Decimal("0.40"), "vat": Decimal("21.0"),
                      "step_size": 1}]}],
                 "last_updated": "2026-01-01T00:00:00Z"}],
    "charging_periods": [
        {"start_date_time": "2026-10-01T08:00:00Z",
         "dimensions": [{"type": "ENERGY", "volume": Decimal("20.5")},
                        {"type": "TIME", "volume": Decimal("1.5")}]},
        {"start_date_time": "2026-10-01T09:30:00Z",
         "dimensions": [{"type": "PARKING_TIME", "volume": Decimal("0.5")}]},
    ],
    "total_cost": {"excl_vat": Decimal("8.20"), "incl_vat": Decimal("9.92")},
    "total_energy": Decimal("20.5"),
    "total_time": 2,
    "total_parking_time": Decimal("0.5"),
    "last_updated": "2026-10-01T10:05:00Z",
}


def ocpi_cdr(cdr_id: str = "CDR-1", *, periods: bool = True, **changes) -> dict:
    """An OCPI 2.2.1 CDR of 20.5 kWh at the EVSE NL*ACM*E00001*1 on 1 October 2026, 08:00 to
    10:00 UTC (charging 1.5 h, parked 0.5 h). ``changes``: fields to replace (``None`` drops
    one); ``periods=False``: without charging periods."""
    cdr = copy.deepcopy(OCPI_CDR)
    cdr["id"] = cdr_id
    if not periods:
        del cdr["charging_periods"]
    for name, value in changes.items():
        if value is None:
            cdr.pop(name, None)
        else:
            cdr[name] = value
    return cdr


def post_json(client, url: str, data=None, key: str | None = None, *, raw=None, **headers):
    """POST ``data`` (encoded with exact decimals) or the ``raw`` body as JSON."""
    if key is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {key}")
    content = raw if raw is not None else exact_dumps(data)
    return client.post(url, data=content, content_type="application/json", **headers)


def get_json(client, url: str, key: str | None = None, **headers):
    """GET ``url`` with the API key (if any)."""
    if key is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {key}")
    return client.get(url, **headers)


def answer(response, status: int = 200) -> dict:
    """The JSON of a successful ``response`` (after checking its status), without a float."""
    assert response.status_code == status, response.content[:2000]
    data = response.json()
    assert floats_in(data) == []
    return data


def error(response, status: int, code: str) -> dict:
    """The error of ``response``, after checking its status and the one error body."""
    assert response.status_code == status, response.content[:2000]
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert "error" in data
    assert data["error"]["code"] == code, data
    assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    assert set(data["error"]) <= {"code", "message", "fields"}
    return data["error"]


def floats_in(value) -> list:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats_in(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats_in(v)]
    return []
