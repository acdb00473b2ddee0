"""Two operators, "alpha" and "bravo", each with one of every kind of row the portal and the API
show: the world the isolation walker tries A's user and key against. Every name, code and
reference of an operator's rows contains its marker, so a page answered to A that contains
"bravo" has leaked B's data."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile

from emobility.cdrs.jobs import cdr_import_create
from emobility.models import CdrImport, ChargingSession, Customer
from emobility.services import api_key_create
from emobility.tasks import run_import_job
from invoicing.models import Invoice, NumberSeries, ReimbursementAgreement
from invoicing.services import invoice_draft_for_customer, invoice_issue
from invoicing.services.statements import reimbursement_documents
from invoicing.tasks import render_invoice
from payments.models import DunningCase
from payments.services import invoice_schedule_payments, method_add, plan_set
from promotions.models import Coupon
from promotions.services import coupon_code_create, sessions_settle
from promotions.services.wallets import wallet_for
from tariffs.models import SessionPrice, TariffAssignment, TariffGroup
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

D = Decimal
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


@dataclass
class Side:
    marker: str
    operator: object = None
    user: object = None
    viewer: object = None
    api_key: str = ""
    location: object = None
    station: object = None
    evse: object = None
    customer: object = None
    token: object = None
    tariff_group: object = None
    tariff: object = None
    tariff_version: object = None
    assignment: object = None
    session: object = None
    cdr_import: object = None
    invoice: object = None
    statement: object = None
    coupon: object = None
    coupon_code: str = ""
    wallet: object = None
    payment: object = None
    dunning_case: object = None
    number_series: object = None


@dataclass
class World:
    a: Side
    b: Side


def _csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"])
    writer.writerows(rows)
    return out.getvalue().encode()


def side(marker: str, party: str) -> Side:
    """One operator with a row of every kind, named with ``marker``."""
    s = Side(marker=marker)
    upper = marker.upper()
    s.operator = OperatorFactory(code=marker, name=f"Operator {marker}", ocpi_party_id=party)
    s.user = MembershipFactory(operator=s.operator, role="manager",
                               user__username=f"{marker}-manager").user
    s.viewer = MembershipFactory(operator=s.operator, role="viewer",
                                 user__username=f"{marker}-viewer").user
    _, s.api_key = api_key_create(operator=s.operator, name=f"{marker} key", actor=None)
    s.evse = EvseFactory(station__location__operator=s.operator,
                         station__location__name=f"{marker} location",
                         station__location__code=f"{upper}-LOC-1",
                         station__identity=f"{upper}-CS-1",
                         evse_id=f"NL*{party}*E{marker.upper()[:4]}1*1")
    s.station = s.evse.station
    s.location = s.station.location
    s.customer = CustomerFactory(operator=s.operator, name=f"{marker} customer",
                                 reference=f"{upper}-CUST-1", email=f"{marker}@example.com")
    s.token = TokenFactory(customer=s.customer, uid=f"{upper}TOKEN1",
                           contract_id=f"NL-{party}-C{upper[:4]}0001",
                           visual_number=f"{marker} card")
    s.tariff_group = TariffGroup.objects.create(operator=s.operator, code=f"{marker}-fleet",
                                                name=f"{marker} fleet")
    s.tariff = TariffFactory(operator=s.operator, code=f"{upper}-STD", name=f"{marker} standard")
    s.tariff_version = TariffVersionFactory(tariff=s.tariff, energy_price=D("0.40"))
    s.assignment = tariff_assign(tariff=s.tariff, level=TariffAssignment.Level.NETWORK,
                                 valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    # sessions: two settled for the invoice, one rated for the session pages
    made = []
    for n in range(3):
        start = datetime(2026, 10, 2 + n, 8, tzinfo=UTC)
        made.append(ChargingSession.objects.create(
            operator=s.operator, evse=s.evse, token=s.token, customer=s.customer,
            external_id=f"{upper}-CDR-{n + 1}", start=start, end=start + timedelta(hours=1),
            energy_kwh=D("10"), charging_seconds=3600, source=ChargingSession.Source.CSV))
    sessions_rate(session_ids=[x.pk for x in made])
    s.session = made[2]
    sessions_settle(session_ids=[x.pk for x in made[:2]])
    assert SessionPrice.objects.filter(session=s.session, is_current=True).exists()
    # an import job with one good row and one refused row (an error report)
    job = cdr_import_create(
        operator=s.operator, door=CdrImport.Door.API,
        upload=ContentFile(_csv([
            [f"{upper}-IMP-1", "2026-10-20T08:00:00Z", "2026-10-20T09:00:00Z", s.evse.evse_id,
             "5", s.token.uid],
            [f"{upper}-IMP-2", "not a date", "2026-10-20T09:00:00Z", s.evse.evse_id, "5",
             s.token.uid]]), name=f"{marker}.csv"))
    run_import_job(job.pk)
    s.cdr_import = CdrImport.objects.get(pk=job.pk)
    assert s.cdr_import.status == "done" and s.cdr_import.error_report, s.cdr_import.message
    # an issued invoice with its PDF, to be paid by card; an open dunning case on it
    method_add(customer=s.customer, kind="card", provider_token="sim_ok",
               label=f"{marker} card", gateway="simulated", make_default=True)
    plan_set(customer=s.customer, kind="monthly_auto", method=None, instalments=1)
    draft = invoice_draft_for_customer(operator=s.operator, customer=s.customer,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    s.invoice = invoice_issue(invoice=draft, on=date(2026, 11, 2), render=render_invoice)
    [s.payment] = invoice_schedule_payments(invoice=s.invoice,
                                            now=datetime(2026, 11, 2, 9, tzinfo=UTC))
    s.dunning_case = DunningCase.objects.create(
        operator=s.operator, invoice=s.invoice, customer=s.customer,
        opened_on=date(2026, 11, 20), level=1, level_name="friendly")
    s.number_series = NumberSeries.objects.filter(operator=s.operator).first()
    # a home-charger owner's reimbursement statement
    owner = CustomerFactory(operator=s.operator, name=f"{marker} owner",
                            reference=f"{upper}-OWNER")
    employer = CustomerFactory(operator=s.operator, kind=Customer.Kind.BUSINESS,
                               name=f"{marker} employer", reference=f"{upper}-EMPLOYER")
    home = EvseFactory(station__location__operator=s.operator,
                       station__location__name=f"{marker} home",
                       station__location__code=f"{upper}-HOME",
                       station__identity=f"{upper}-HOME-CS", station__owner=owner,
                       evse_id=f"NL*{party}*E{upper[:4]}2*1")
    deal = ReimbursementAgreement.objects.create(
        operator=s.operator, owner=owner, employer=employer, rate_per_kwh=D("0.2950"),
        valid_from=date(2026, 1, 1), payout_iban="NL91ABNA0417164300")
    deal.stations.add(home.station)
    home_session = ChargingSession.objects.create(
        operator=s.operator, evse=home, token=TokenFactory(customer=employer,
                                                           uid=f"{upper}TOKEN2"),
        customer=employer, external_id=f"{upper}-HOME-1",
        start=datetime(2026, 10, 9, 18, tzinfo=UTC), end=datetime(2026, 10, 9, 20, tzinfo=UTC),
        energy_kwh=D("8"), charging_seconds=7200, source=ChargingSession.Source.CSV)
    sessions_rate(session_ids=[home_session.pk])
    sessions_settle(session_ids=[home_session.pk])
    statement, _ = reimbursement_documents(agreement=deal, period_start=OCTOBER[0],
                                           period_end=OCTOBER[1])
    s.statement = invoice_issue(invoice=statement, on=date(2026, 11, 2), render=render_invoice)
    # promotions: a coupon with a code, a wallet
    s.coupon = Coupon.objects.create(operator=s.operator, name=f"{marker} welcome",
                                     unit="money", amount=D("5.00"),
                                     valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    s.coupon_code = f"{upper}5"
    coupon_code_create(coupon=s.coupon, code=s.coupon_code)
    s.wallet = wallet_for(customer=s.customer, currency="EUR")
    assert s.statement.kind == Invoice.Kind.STATEMENT
    return s


def build_world() -> World:
    return World(a=side("alpha", "ALP"), b=side("bravo", "BRV"))
