"""The world the API fuzz test (test_api_fuzz.py) runs against, and the fuzzing itself.

``fuzz_world()`` makes one operator ("fuzz") with rows behind every kind of address of the API:
a rated and settled session that earned a perk voucher, a customer with a card, a wallet with
credit and a pending top-up, an issued invoice with a paid and a scheduled payment, a payment
waiting for a bank transfer, a coupon code and a finished CDR import with an error report; and an
API key. ``known`` lists their ids, references and codes: the fuzzer puts them in some requests
instead of generated values, so it reaches the rows (and their writes), not only 404s.

``fuzz(schema, ...)`` runs every operation of a schemathesis schema with Hypothesis, records each
answer that fails a check (without stopping or shrinking: one run lists every failure) and
returns them. With ``FUZZ_DEBUG=1`` it prints the first requests and answers of each status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import requests
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from emobility.cdrs.jobs import cdr_import_create
from emobility.models import CdrImport, ChargingSession, Operator
from emobility.services import api_key_create
from emobility.tasks import import_cdrs
from invoicing.services import invoice_draft_for_customer, invoice_issue
from payments.models import Payment, Terminal
from payments.services import invoice_schedule_payments, payment_collect, payment_create
from promotions.models import Coupon, Perk, PerkVoucher
from promotions.services import (
    coupon_code_create,
    credit_grant,
    sessions_settle,
    top_up_request,
)
from tariffs.models import TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    OperatorFactory,
    TariffFactory,
    TariffGroupFactory,
    TariffVersionFactory,
    TokenFactory,
)
from tests.integration.invoicing.conftest import OCTOBER, settle_sessions
from tests.integration.payments.conftest import DUE_ON, ISSUED_ON, at, card, on_plan
from tests.integration.promotions.conftest import Shop

D = Decimal
REFERENCE = "F-0001"
EVSE_ID = "NL*FUZ*E00001*1"
COUPON_CODE = "FUZZ-FIVE"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: a CDR file with one good row and one of an unknown EVSE (which goes to the error report)
CDR_FILE = (b"cdr_id,start,end,evse_id,energy_kwh,token_uid\r\n"
            b"CSV-1,2026-10-02T08:00:00Z,2026-10-02T09:00:00Z,NL*FUZ*E00001*1,12.5,FUZ0001\r\n"
            b"CSV-2,2026-10-02T08:00:00Z,2026-10-02T09:00:00Z,NL*FUZ*E99999*1,12.5,FUZ0001\r\n")


@dataclass
class FuzzWorld:
    operator: Operator
    key: str
    #: path parameter, query parameter, body field or header name → values naming the
    #: operator's rows (or a dict of such lists by a part of the address, "*" for the others)
    known: dict[str, list | dict[str, list]] = field(default_factory=dict)


def fuzz_world() -> FuzzWorld:
    operator = OperatorFactory(code="fuzz", name="Fuzz Energy", ocpi_party_id="FUZ")
    evse = EvseFactory(station__location__operator=operator, evse_id=EVSE_ID)
    customer = CustomerFactory(operator=operator, reference=REFERENCE)
    token = TokenFactory(customer=customer, uid="FUZ0001")
    group = TariffGroupFactory(operator=operator, code="staff")
    tariff = TariffFactory(operator=operator, code="STD")
    TariffVersionFactory(tariff=tariff, energy_price=D("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    shop = Shop(operator, evse, customer, token)
    _, key = api_key_create(operator=operator, name="Fuzz", actor=None)

    # a settled session at a location with a perk: it earns a voucher
    location = evse.station.location
    Perk.objects.create(operator=operator, location=location, name="Free parking")
    session = ChargingSession.objects.create(
        operator=operator, evse=evse, token=token, customer=customer, external_id="CDR-FUZZ-1",
        start=datetime(2026, 10, 1, 8, tzinfo=UTC), end=datetime(2026, 10, 1, 9, tzinfo=UTC),
        energy_kwh=D("10"), charging_seconds=3600, source=ChargingSession.Source.API)
    sessions_rate(session_ids=[session.pk])
    assert sessions_settle(session_ids=[session.pk]).settled == 1
    voucher = PerkVoucher.objects.get(session=session)

    # money: an invoice paid by card, another scheduled, a bank transfer, a wallet and a top-up
    method = card(customer)
    on_plan(customer, "monthly_auto")
    payments, invoices = [], []
    for day in (3, 5):
        settle_sessions(shop, 2, day=day)
        draft = invoice_draft_for_customer(operator=operator, customer=customer,
                                           period_start=OCTOBER[0], period_end=OCTOBER[1])
        invoice = invoice_issue(invoice=draft, on=ISSUED_ON)
        invoices.append(invoice)
        payments += invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payments[0] = payment_collect(payment=payments[0], now=at(DUE_ON))
    payments.append(payment_create(customer=customer, purpose=Payment.Purpose.INVOICE,
                                   amount=D("10.00"), currency="EUR", due_on=DUE_ON,
                                   channel=Payment.Channel.BANK_TRANSFER))
    credit_grant(customer=customer, amount=D("20.00"), reason="Welcome")
    top_up = top_up_request(customer=customer, amount=D("25.00"), idempotency_key="fuzz-1")

    coupon = Coupon.objects.create(operator=operator, name="Five off", unit="money",
                                   amount=D("5.00"), valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    coupon_code_create(coupon=coupon, code=COUPON_CODE)

    Terminal.objects.create(operator=operator, location=location, evse=evse,
                            serial="FUZ-HW", integration="hardware")

    job = cdr_import_create(operator=operator, upload=ContentFile(CDR_FILE, name="cdrs.csv"),
                            door=CdrImport.Door.API)
    import_cdrs.delay(job.pk)

    known = {
        "reference": [REFERENCE],
        "customer": [REFERENCE],
        "currency": ["EUR"],
        "id": {"payments/{id}": [p.pk for p in payments], "top-ups/{id}": [top_up.pk],
               "cdr-imports/{id}": [job.pk],
               "*": [p.pk for p in payments] + [top_up.pk, job.pk]},
        "cdr_id": [session.external_id],
        "code": [COUPON_CODE, voucher.code, location.code, tariff.code],
        "ref": [invoices[0].number, invoices[1].pk],
        "number": [invoices[0].number],
        "location": [location.code],
        "identity": [evse.station.identity],
        "station": [evse.station.identity],
        "uid": [token.uid],
        "token": [token.uid],
        "evse_id": [EVSE_ID],
        "tariff_group": [group.code],
        "method": [method.pk],
        "operator": [operator.code],
        "terminal_serial": ["FUZ-HW"],
        "start": ["2026-10-15T14:00:00+02:00"],
        "authorized_at": ["2026-10-15T14:00:00Z"],
        "energy_kwh": ["20.5", 0],
        "charging_minutes": ["60"],
        "amount": ["25.00", "5", 0.01],
        "max_amount": ["30.00"],
        "idempotency_key": ["fuzz-1", "fuzz-2"],
        #: a header: sent with the requests of the known branch
        IDEMPOTENCY_HEADER: ["fuzz-1", "fuzz-2", "fuzz-3"],
    }
    return FuzzWorld(operator, key, known)


def terminal_net() -> FuzzWorld:
    """Just an operator with a hardware terminal "FUZ-HW" and an API key (for the regression
    tests of what the fuzzer found)."""
    operator = OperatorFactory(code="fuzz", name="Fuzz Energy", ocpi_party_id="FUZ")
    evse = EvseFactory(station__location__operator=operator, evse_id=EVSE_ID)
    Terminal.objects.create(operator=operator, location=evse.station.location, evse=evse,
                            serial="FUZ-HW", integration="hardware")
    _, key = api_key_create(operator=operator, name="Fuzz", actor=None)
    return FuzzWorld(operator, key)


# --- the fuzzing --------------------------------------------------------------------------------

@dataclass
class Finding:
    operation: str
    check: str
    status: int | None
    message: str
    curl: str

    def __str__(self) -> str:
        return (f"{self.operation}: {self.check} (status {self.status})\n  {self.message}\n"
                f"  {self.curl}")


def _with_known(case, known: dict):
    """A strategy of ``case`` with its path parameters, query parameters and body fields that
    can name a row replaced by values naming the world's rows."""
    def values(name: str) -> list:
        found = known[name]
        if isinstance(found, dict):  # by the address: {"payments/{id}": [...], "*": [...]}
            found = next((v for fragment, v in found.items() if fragment in case.path),
                         found["*"])
        return found

    choices = {}
    for where in ("path_parameters", "query"):
        for name in getattr(case, where) or {}:
            if name in known:
                choices[(where, name)] = st.sampled_from(values(name))
    if isinstance(case.body, dict):
        for name in case.body:
            if name in known:
                choices[("body", name)] = st.sampled_from(values(name))
    if case.method.upper() == "POST":
        choices[("headers", IDEMPOTENCY_HEADER)] = st.sampled_from(known[IDEMPOTENCY_HEADER])

    def apply(values: dict):
        for where in {where for where, _ in values}:
            container = dict(getattr(case, where) or {})
            container.update({name: value for (w, name), value in values.items()
                              if w == where})
            setattr(case, where, container)
        return case

    return st.fixed_dictionaries(choices).map(apply)


#: hostile text for any path segment, query parameter or body field
HOSTILE_TEXT = ["\x00", "A-\x00", "9" * 40, "-1", "0", "1e999", "NaN", "Infinity", "12,50",
                "ß😀\u202e", " ", "%00", "%2F..", "' OR 1=1 --", "x" * 5000]
#: hostile values of other JSON types, for body fields. (Not lone surrogates: schemathesis's
#: own checks cannot read them; test_api_fuzz.py sends them itself.)
HOSTILE_JSON = [10**40, -(10**40), 0, -1, 1.5, 1e-30, True, None, [], {}, ["x"], {"a": 1}]


def _with_hostile(case):
    """A strategy of ``case`` with one of its path parameters, query parameters or body fields
    replaced by a hostile value."""
    places = [(where, name) for where in ("path_parameters", "query")
              for name in getattr(case, where) or {}]
    body = list(case.body) if isinstance(case.body, dict) else []
    places += [("body", name) for name in body]
    # parameters every endpoint reads, described or not: a list's page, the operator's code
    places += [("query", name) for name in ("page", "operator") if ("query", name) not in places]

    def apply(choice):
        (where, name), value = choice
        container = dict(getattr(case, where) or {})
        container[name] = value
        setattr(case, where, container)
        return case

    return st.sampled_from(places).flatmap(lambda place: st.tuples(
        st.just(place),
        st.sampled_from(HOSTILE_TEXT + (HOSTILE_JSON if place[0] == "body" else [])),
    )).map(apply)


def _cases(operation, known: dict):
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    negative = operation.as_strategy(GenerationMode.NEGATIVE)
    with_known = positive.flatmap(lambda case: _with_known(case, known))
    return st.one_of(positive, with_known, with_known.flatmap(_with_hostile), negative)


def fuzz(schema, *, base_url: str, headers: dict, checks: list, known: dict,
         max_examples: int = 20, derandomize: bool = True):
    """Every operation of ``schema``, ``max_examples`` requests each (the same ones on every
    run unless ``derandomize`` is false), checked with ``checks``: the findings (one per
    operation, check and status) and, per operation, how many answers had each status."""
    findings: dict[tuple, Finding] = {}
    calls: dict[str, dict[int, int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    http = requests.Session()
    # A new connection for each request: the test server answers a kept-alive connection's
    # requests some 40 ms late each (delayed ACKs), 20 times slower than a new connection.
    http.headers["Connection"] = "close"

    for operation in operations:
        calls[operation.label] = {}
        _fuzz_operation(operation, base_url=base_url, headers=headers, checks=checks,
                        known=known, max_examples=max_examples, findings=findings,
                        calls=calls, http=http, derandomize=derandomize)
    return list(findings.values()), calls


def _fuzz_operation(operation, *, base_url, headers, checks, known, max_examples, findings,
                    calls, http, derandomize) -> None:
    label = operation.label

    @settings(max_examples=max_examples, derandomize=derandomize, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=_cases(operation, known))
    def run(case):
        response = case.call(base_url=base_url, headers=headers, session=http, timeout=60)
        calls[label][response.status_code] = calls[label].get(response.status_code, 0) + 1
        if os.environ.get("FUZZ_DEBUG") and calls[label][response.status_code] <= 2:
            print(label, response.status_code, repr(case.body)[:300], case.query,
                  response.text[:300])
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            failures = group.exceptions
        except AssertionError as exc:  # a single failure
            failures = [exc]
        else:
            return
        for failure in failures:
            check = getattr(failure, "title", type(failure).__name__)
            key = (label, check, response.status_code)
            if key not in findings:
                findings[key] = Finding(
                    label, check, response.status_code,
                    (getattr(failure, "message", "") or str(failure))[:600]
                    + f"\n  answer: {response.text[:300]!r}",
                    case.as_curl_command(headers=headers))

    run()
