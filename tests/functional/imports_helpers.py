"""The portal's CDR upload tests: a network that can take CDRs (an EVSE, a token and a tariff in
force), canonical CSV files and a job made without the portal."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.core.files.base import ContentFile

from emobility.cdrs.jobs import cdr_import_create
from emobility.models import CdrImport, Evse, Operator, Token
from tariffs.models import TariffAssignment
from tariffs.services import tariff_assign
from tests.factories import (
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

CANONICAL = ["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"]


@dataclass
class ImportNet:
    operator: Operator
    evse: Evse
    token: Token
    manager: object
    viewer: object


def import_net(name: str, party: str) -> ImportNet:
    """Operator ``name`` with the EVSE ``NL*<party>*E00001*1`` (22 kW), the token
    ``<party>0000000001`` and a tariff of 0.40/kWh + VAT in force; a manager and a viewer."""
    operator = OperatorFactory(code=name.lower(), name=f"Operator {name}", ocpi_party_id=party)
    evse = EvseFactory(station__location__operator=operator,
                       station__location__name=f"{name} location",
                       evse_id=f"NL*{party}*E00001*1", station__identity=f"CS-{name}-1",
                       max_power_kw=Decimal("22"))
    token = TokenFactory(customer__operator=operator, customer__name=f"{name} driver",
                         uid=f"{party}0000000001")
    tariff = TariffFactory(operator=operator, code=f"T-{name}")
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    manager = MembershipFactory(operator=operator, role="manager").user
    viewer = MembershipFactory(operator=operator, role="viewer").user
    return ImportNet(operator, evse, token, manager, viewer)


def cdr_row(net: ImportNet, cdr_id: str, *, day: int = 1, energy: str = "20.5") -> list[str]:
    """A canonical row: a two-hour session on ``day`` October 2026 at the net's EVSE."""
    return [cdr_id, f"2026-10-{day:02d}T08:00:00Z", f"2026-10-{day:02d}T10:00:00Z",
            net.evse.evse_id, energy, net.token.uid]


def csv_bytes(rows, header=CANONICAL, delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def make_job(operator, data: bytes, name="cdrs.csv", **kwargs) -> CdrImport:
    """A queued job made through the service (as the command line does)."""
    return cdr_import_create(operator=operator, upload=ContentFile(data, name=name),
                             door=CdrImport.Door.COMMAND, **kwargs)
