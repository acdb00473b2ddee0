"""A small network with a tariff in force, and helpers to write CDR files."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from emobility.cdrs.jobs import cdr_import_create
from emobility.models import CdrImport, Customer, Evse
from tariffs.models import TariffAssignment
from tariffs.services import tariff_assign
from tests.factories import (
    EvseFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

CANONICAL = ["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"]


@dataclass
class Network:
    operator: object
    evse: Evse
    dc: Evse
    token: object
    blocked_token: object
    blocked_customer_token: object


@pytest.fixture
def net(db) -> Network:
    return build_network()


@pytest.fixture
def tnet(transactional_db) -> Network:
    """The network, committed (for tests with threads or other processes)."""
    return build_network()


def build_network() -> Network:
    operator = OperatorFactory(code="acme")
    evse = EvseFactory(station__location__operator=operator, evse_id="NL*ACM*E00001*1",
                       station__identity="CS-AMS-1", max_power_kw=Decimal("22"))
    dc = EvseFactory(station=evse.station, evse_id="NL*ACM*E00002*1", max_power_kw=Decimal("150"),
                     power_type=Evse.PowerType.DC)
    token = TokenFactory(customer__operator=operator, uid="04A1B2C3D4E5F6")
    blocked = TokenFactory(customer__operator=operator, uid="BLOCKED01", valid=False)
    blocked_customer = TokenFactory(customer__operator=operator, uid="BLOCKEDCUST",
                                    customer__status=Customer.Status.BLOCKED)
    tariff = TariffFactory(operator=operator)
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    return Network(operator, evse, dc, token, blocked, blocked_customer)


def csv_bytes(header, rows, delimiter=",", encoding="utf-8", bom=False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def row(cdr_id="CDR-1", start="2026-10-01T08:00:00Z", end="2026-10-01T10:00:00Z",
        evse="NL*ACM*E00001*1", energy="20.5", token="04A1B2C3D4E5F6"):
    return [cdr_id, start, end, evse, energy, token]


def make_job(operator, data: bytes, name="cdrs.csv", **kwargs) -> CdrImport:
    return cdr_import_create(operator=operator, upload=ContentFile(data, name=name),
                             door=CdrImport.Door.COMMAND, **kwargs)
