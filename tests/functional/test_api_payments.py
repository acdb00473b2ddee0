"""The payments API (payments/api/payments.py): the payments list and its filters, one payment
with its attempts and history, refunds, retries and cancellations, paying a top-up once, a
customer's payment methods; malformed, hostile and oversized input, another operator's rows, and
who may write."""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest

from emobility.models import Customer, Operator
from emobility.services import api_key_create
from invoicing.models import Invoice
from payments.models import Payment, PaymentAttempt, PaymentEvent, PaymentMethod, SimulatedCharge
from payments.services import (
    invoice_schedule_payments,
    method_add,
    method_revoke,
    payment_collect,
    payment_create,
    payment_mark_paid,
)
from promotions.models import LedgerEntry, TopUp
from promotions.services import credit_grant, top_up_request, wallet_for
from tariffs.models import TariffAssignment
from tariffs.services import tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
    UserFactory,
)
from tests.integration.payments.conftest import DUE_ON, ISSUED_ON, at, card, issued_invoice, on_plan
from tests.integration.promotions.conftest import Shop

from .cdr_helpers import answer, error, floats_in
from .cdr_helpers import get_json as get
from .cdr_helpers import post_json as post

pytestmark = pytest.mark.django_db
D = Decimal
PAYMENTS = "/api/v1/payments"


@dataclass
class Net:
    """An operator's rated network (10 kWh = 4.84 incl. VAT), its API key and a customer."""

    shop: Shop
    key: str

    @property
    def operator(self) -> Operator:
        return self.shop.operator

    @property
    def customer(self) -> Customer:
        return self.shop.customer

    def paid(self, token="sim_ok", sessions=3) -> Payment:
        """An invoice of ``sessions`` sessions (4.84 each) collected from the customer's card
        (3 sessions: EUR 14.52)."""
        payment = self.scheduled(token=token, sessions=sessions)
        return payment_collect(payment=payment, now=at(DUE_ON))

    def scheduled(self, token="sim_ok", sessions=3) -> Payment:
        invoice = issued_invoice(self.shop, sessions=sessions)
        if not PaymentMethod.objects.filter(customer=self.customer).exists():
            card(self.customer, token=token)
        on_plan(self.customer, "monthly_auto")
        [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
        return payment

    def transfer(self, amount="10.00") -> Payment:
        """A payment waiting for a bank transfer."""
        return payment_create(customer=self.customer, purpose=Payment.Purpose.INVOICE,
                              amount=D(amount), currency="EUR", due_on=DUE_ON,
                              channel=Payment.Channel.BANK_TRANSFER)

    def top_up(self, amount="25.00", key="k-1") -> TopUp:
        return top_up_request(customer=self.customer, amount=D(amount), idempotency_key=key)


def network(code: str, party: str, reference: str) -> Net:
    operator = OperatorFactory(code=code, name=f"Operator {code}", ocpi_party_id=party)
    evse = EvseFactory(station__location__operator=operator, evse_id=f"NL*{party}*E00001*1")
    customer = CustomerFactory(operator=operator, reference=reference)
    token = TokenFactory(customer=customer)
    tariff = TariffFactory(operator=operator, code="STD")
    TariffVersionFactory(tariff=tariff, energy_price=D("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    _, key = api_key_create(operator=operator, name="App", actor=None)
    return Net(Shop(operator, evse, customer, token), key)


@pytest.fixture
def a() -> Net:
    """Operator "acme", customer A-0001."""
    return network("acme", "ACM", "A-0001")


@pytest.fixture
def b() -> Net:
    """Operator "bolt", customer B-0001."""
    return network("bolt", "BLT", "B-0001")


def url_of(payment, action: str = "") -> str:
    pk = payment if isinstance(payment, int | str) else payment.pk
    return f"{PAYMENTS}/{pk}" + (f"/{action}" if action else "")


def customer_url(reference: str, rest: str) -> str:
    return f"/api/v1/customers/{quote(reference, safe='')}/{rest}"


def pay_url(top_up, reference="A-0001", currency="EUR") -> str:
    pk = top_up if isinstance(top_up, int | str) else top_up.pk
    return customer_url(reference, f"wallets/{currency}/top-ups/{pk}/pay")


def iso(instant) -> str:
    return instant.isoformat().replace("+00:00", "Z")


# --- the list ----------------------------------------------------------------------------------

def test_the_list_is_newest_first_with_amounts_as_exact_strings(client, a):
    paid = a.paid()
    transfer = a.transfer("7.10")
    data = answer(get(client, PAYMENTS, a.key))
    assert (data["count"], data["next"], data["previous"]) == (2, None, None)
    assert [p["id"] for p in data["results"]] == [transfer.pk, paid.pk]
    shown = data["results"][1]
    paid.refresh_from_db()
    method = paid.method
    assert shown == {
        "id": paid.pk, "purpose": "invoice", "channel": "gateway", "status": "succeeded",
        "currency": "EUR", "amount": "14.52", "amount_refunded": "0.00",
        "customer": "A-0001", "invoice": paid.invoice.number, "instalment": 1,
        "instalments": 1, "session": None, "cdr_id": None, "top_up": None,
        "method": {"id": method.pk, "kind": "card", "label": "Visa •••• 4242"},
        "due_on": DUE_ON.isoformat(), "reference": None,
        "provider_reference": paid.provider_reference, "retry_count": 0,
        "next_retry_at": None, "failure_code": None, "failure_message": None,
        "hard_decline": False, "paid_at": iso(at(DUE_ON)), "paid_reference": None,
        "created_at": iso(paid.created_at), "updated_at": iso(paid.updated_at)}
    assert paid.provider_reference.startswith("sim_")
    assert (data["results"][0]["amount"], data["results"][0]["channel"],
            data["results"][0]["method"]) == ("7.10", "bank_transfer", None)


def test_yen_amounts_have_no_decimals(client, a):
    customer = CustomerFactory(operator=a.operator, reference="JP-1", currency="JPY")
    payment_create(customer=customer, purpose=Payment.Purpose.INVOICE, amount=D("500"),
                   currency="JPY", due_on=DUE_ON, channel=Payment.Channel.BANK_TRANSFER)
    [shown] = answer(get(client, PAYMENTS, a.key))["results"]
    assert (shown["currency"], shown["amount"], shown["amount_refunded"]) == ("JPY", "500", "0")


def test_the_list_filters_by_status_purpose_channel_customer_and_invoice(client, a):
    paid = a.paid()
    transfer = a.transfer()
    other = CustomerFactory(operator=a.operator, reference="A-0002")
    theirs = payment_create(customer=other, purpose=Payment.Purpose.TOP_UP, amount=D("5.00"),
                            currency="EUR", due_on=DUE_ON, channel=Payment.Channel.BANK_TRANSFER)

    def ids(query: str) -> list[int]:
        return [p["id"] for p in answer(get(client, f"{PAYMENTS}?{query}", a.key))["results"]]

    assert ids("status=succeeded") == [paid.pk]
    assert ids("status=scheduled") == [theirs.pk, transfer.pk]
    assert ids("status=failed") == []
    assert ids("purpose=top_up") == [theirs.pk]
    assert ids("channel=gateway") == [paid.pk]
    assert ids("customer=A-0001") == [transfer.pk, paid.pk]
    assert ids("customer=A-0002") == [theirs.pk]
    assert ids("customer=NOBODY") == []
    assert ids(f"invoice={quote(paid.invoice.number)}") == [paid.pk]
    assert ids("invoice=NO-SUCH-INVOICE") == []
    assert ids("status=scheduled&customer=A-0001&channel=bank_transfer") == [transfer.pk]
    # an empty value is no filter (as in a form sent with the field left empty)
    assert ids("status=&customer=&invoice=") == [theirs.pk, transfer.pk, paid.pk]


@pytest.mark.parametrize(("query", "field"), [
    ("status=paid", "status"), ("status=Succeeded", "status"), ("purpose=refund", "purpose"),
    ("channel=cash", "channel"), ("customer=" + "A" * 41, "customer"),
    ("customer=A%00", "customer"), ("invoice=" + "9" * 41, "invoice"),
])
def test_a_filter_that_is_no_value_answers_400_naming_it(client, a, query, field):
    a.transfer()
    err = error(get(client, f"{PAYMENTS}?{query}", a.key), 400, "invalid")
    assert list(err["fields"]) == [field]


def test_payments_come_50_a_page(client, a):
    made = [a.transfer(f"{n + 1}.00") for n in range(51)]
    first = answer(get(client, PAYMENTS, a.key))
    assert first["count"] == 51 and len(first["results"]) == 50
    assert first["results"][0]["id"] == made[-1].pk
    assert first["next"].endswith("?page=2")
    second = answer(get(client, f"{PAYMENTS}?page=2", a.key))
    assert [p["id"] for p in second["results"]] == [made[0].pk]
    error(get(client, f"{PAYMENTS}?page=3", a.key), 404, "not_found")
    error(get(client, f"{PAYMENTS}?page=nonsense", a.key), 404, "not_found")


# --- one payment -------------------------------------------------------------------------------

def test_one_payment_with_its_attempts_and_history_but_no_raw_answer(client, a):
    payment = a.paid(token="sim_soft_then_ok")
    assert payment.status == "failed"
    response = post(client, url_of(payment, "retry"), {}, a.key)
    answer(response)
    data = answer(get(client, url_of(payment), a.key))
    assert data["id"] == payment.pk and data["status"] == "succeeded"
    assert data["retry_count"] == 1
    first, second = PaymentAttempt.objects.filter(payment=payment).order_by("pk")
    assert data["attempts"] == [
        {"id": first.pk, "operation": "charge", "status": "failed", "gateway": "simulated",
         "amount": "14.52", "idempotency_key": f"pay{payment.pk}-charge-1",
         "provider_reference": first.provider_reference, "failure_code": "insufficient_funds",
         "failure_message": "Insufficient funds.", "hard_decline": False,
         "started_at": iso(first.started_at), "finished_at": iso(first.finished_at),
         "resolved_by": None},
        {"id": second.pk, "operation": "charge", "status": "succeeded",
         "gateway": "simulated", "amount": "14.52",
         "idempotency_key": f"pay{payment.pk}-charge-2",
         "provider_reference": second.provider_reference, "failure_code": None,
         "failure_message": None, "hard_decline": False, "started_at": iso(second.started_at),
         "finished_at": iso(second.finished_at), "resolved_by": None}]
    assert first.raw_response and second.raw_response  # kept, but never shown
    assert b"raw" not in response.content and b"raw" not in get(
        client, url_of(payment), a.key).content
    assert [e["kind"] for e in data["events"]] == ["created", "failed", "retry", "paid"]
    assert data["events"][1]["message"].startswith("Failed: Insufficient funds.")
    assert all(e["at"].endswith("Z") and set(e) == {"kind", "message", "at"}
               for e in data["events"])


def test_an_unknown_payment_answers_404(client, a):
    a.transfer()
    err = error(get(client, url_of(999_999), a.key), 404, "not_found")
    assert err["message"] == "No payment with this id."


# --- refunds -----------------------------------------------------------------------------------

def test_refund_part_then_the_rest_then_nothing_more(client, a):
    payment = a.paid()
    data = answer(post(client, url_of(payment, "refund"),
                       {"amount": "4.52", "reason": "One session was free"}, a.key))
    assert (data["status"], data["amount_refunded"]) == ("succeeded", "4.52")
    assert data["attempts"][-1]["operation"] == "refund"
    assert data["events"][-1]["kind"] == "refunded"
    assert "One session was free" in data["events"][-1]["message"]
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    assert invoice.amount_paid == D("10.00")
    data = answer(post(client, url_of(payment, "refund"), {"reason": "Goodwill"}, a.key))
    assert data["amount_refunded"] == "14.52"
    err = error(post(client, url_of(payment, "refund"), {"amount": "0.01", "reason": "More"},
                     a.key), 409, "refund_refused")
    assert err["message"] == "At most EUR 0.00 can still be refunded."
    assert sorted(r.amount for r in SimulatedCharge.objects.filter(operation="refund")) == [
        D("4.52"), D("10.00")]


def test_a_refund_as_a_json_number_is_read_exactly(client, a):
    payment = a.paid()
    response = post(client, url_of(payment, "refund"), None, a.key,
                    raw='{"amount": 0.1, "reason": "Rounding"}')
    assert answer(response)["amount_refunded"] == "0.10"
    payment.refresh_from_db()
    assert payment.amount_refunded == D("0.10")


def test_more_than_was_paid_is_refused_with_the_services_message(client, a):
    payment = a.paid()
    err = error(post(client, url_of(payment, "refund"), {"amount": "14.53", "reason": "x"},
                     a.key), 409, "refund_refused")
    assert err["message"] == "At most EUR 14.52 can still be refunded."
    assert "fields" not in err
    payment.refresh_from_db()
    assert payment.amount_refunded == 0
    assert not SimulatedCharge.objects.filter(operation="refund").exists()


@pytest.mark.parametrize("make", ["transfer", "failed"])
def test_only_a_paid_payment_is_refunded(client, a, make):
    payment = a.transfer() if make == "transfer" else a.paid(token="sim_decline_soft")
    err = error(post(client, url_of(payment, "refund"), {"reason": "x"}, a.key), 409,
                "refund_refused")
    assert err["message"] == "Only a paid payment can be refunded."


def test_a_bank_transfer_refund_is_recorded_for_finance(client, a):
    payment = a.transfer("10.00")
    payment_mark_paid(payment=payment, reference="BANK-1")
    data = answer(post(client, url_of(payment, "refund"), {"amount": "2.50", "reason": "x"},
                       a.key))
    assert data["amount_refunded"] == "2.50"
    assert data["events"][-1]["message"].startswith(
        "Refunded EUR 2.50 to be transferred by finance")
    assert not SimulatedCharge.objects.exists()


@pytest.mark.parametrize(("amount", "message"), [
    ("0", "The amount must be more than 0."),
    ("0.00", "The amount must be more than 0."),
    ("-1.00", "The amount must be more than 0."),
    (-5, "The amount must be more than 0."),
    ("1.001", "EUR amounts have at most 2 decimals."),
    (D("0.005"), "EUR amounts have at most 2 decimals."),
    ("1" + "0" * 12, "The amount is too large."),
    (10**40, "Give the amount with at most 32 characters."),
    ("9" * 33, "Give the amount with at most 32 characters."),
    ("NaN", 'Give the amount as a number or a string such as "12.50".'),
    ("1e3", 'Give the amount as a number or a string such as "12.50".'),
    ("12,50", 'Give the amount as a number or a string such as "12.50".'),
    (" 1.00", 'Give the amount as a number or a string such as "12.50".'),
    ("", 'Give the amount as a number or a string such as "12.50".'),
    ("ten", 'Give the amount as a number or a string such as "12.50".'),
    (True, 'Give the amount as a number or a string such as "12.50".'),
    ([1], 'Give the amount as a number or a string such as "12.50".'),
    ({"amount": 1}, 'Give the amount as a number or a string such as "12.50".'),
    (None, "This field may not be null."),
])
def test_an_amount_that_cannot_be_refunded_answers_400_and_changes_nothing(client, a, amount,
                                                                          message):
    payment = a.paid()
    err = error(post(client, url_of(payment, "refund"), {"amount": amount, "reason": "x"},
                     a.key), 400, "invalid")
    assert err["fields"] == {"amount": [message]}
    payment.refresh_from_db()
    assert payment.amount_refunded == 0
    assert not PaymentAttempt.objects.filter(operation="refund").exists()


@pytest.mark.parametrize("raw", [
    '{"amount": NaN, "reason": "x"}', '{"amount": Infinity, "reason": "x"}',
    '{"amount": 1' + "0" * 5000 + ', "reason": "x"}',
])
def test_nan_infinity_and_endless_numbers_are_not_json(client, a, raw):
    payment = a.paid()
    error(post(client, url_of(payment, "refund"), None, a.key, raw=raw), 400, "malformed_json")
    payment.refresh_from_db()
    assert payment.amount_refunded == 0


@pytest.mark.parametrize("action", ["refund", "cancel"])
@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None},
                                  {"reason": 42}, {"reason": ["x"]}, {"reason": "x" * 301},
                                  {"reason": "nul\x00"}, {"reason": "\ud800"}])
def test_a_missing_or_malformed_reason_answers_400(client, a, action, body):
    payment = a.paid() if action == "refund" else a.transfer()
    err = error(post(client, url_of(payment, action), None, a.key, raw=json.dumps(body)), 400,
                "invalid")
    assert list(err["fields"]) == ["reason"]
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == (
        "succeeded" if action == "refund" else "scheduled", 0)


def test_fields_not_listed_are_ignored(client, a):
    payment = a.paid()
    data = answer(post(client, url_of(payment, "refund"),
                       {"amount": "1.00", "reason": "x", "status": "cancelled",
                        "amount_refunded": "14.52", "id": 1, "extra": [1, 2]}, a.key))
    assert (data["status"], data["amount_refunded"]) == ("succeeded", "1.00")
    transfer = a.transfer()
    data = answer(post(client, url_of(transfer, "retry"), {"status": "succeeded"}, a.key))
    assert data["status"] == "scheduled"


# --- retry -------------------------------------------------------------------------------------

def test_retry_now_after_a_new_card_then_a_second_retry_is_refused(client, a):
    payment = a.paid(token="sim_decline_hard")
    assert (payment.status, payment.hard_decline) == ("failed", True)
    PaymentMethod.objects.filter(pk=payment.method_id).update(provider_token="sim_ok")
    data = answer(post(client, url_of(payment, "retry"), None, a.key, raw=""))
    assert (data["status"], data["retry_count"]) == ("succeeded", 1)
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    err = error(post(client, url_of(payment, "retry"), {}, a.key), 409, "retry_refused")
    assert err["message"] == ("Only a failed or scheduled payment can be tried now; this one is "
                              "paid.")
    assert SimulatedCharge.objects.filter(operation="charge", status="succeeded").count() == 1


def test_retrying_a_declined_card_again_records_a_second_attempt(client, a):
    payment = a.paid(token="sim_decline_soft")
    data = answer(post(client, url_of(payment, "retry"), {}, a.key))
    assert (data["status"], data["retry_count"], len(data["attempts"])) == ("failed", 1, 2)
    assert data["failure_code"] == "insufficient_funds"


def test_retrying_a_bank_transfer_schedules_it_again(client, a):
    payment = a.transfer()
    data = answer(post(client, url_of(payment, "retry"), {}, a.key))
    assert data["status"] == "scheduled" and data["attempts"] == []
    assert data["events"][-1]["kind"] == "retry"


def test_a_failed_top_up_is_not_charged_again(client, a):
    card(a.customer, token="sim_decline_soft")
    top_up = a.top_up()
    answer(post(client, pay_url(top_up), {}, a.key), 201)
    payment = Payment.objects.get(top_up=top_up)
    assert payment.status == "failed"
    PaymentMethod.objects.filter(pk=payment.method_id).update(provider_token="sim_ok")
    err = error(post(client, url_of(payment, "retry"), {}, a.key), 409, "retry_refused")
    assert "new top-up" in err["message"]
    assert not SimulatedCharge.objects.filter(status="succeeded").exists()
    payment.refresh_from_db()
    assert (payment.status, payment.retry_count) == ("failed", 0)


# --- cancel ------------------------------------------------------------------------------------

def test_cancel_stops_collection_once(client, a):
    payment = a.scheduled()
    data = answer(post(client, url_of(payment, "cancel"), {"reason": "Invoice disputed"},
                       a.key))
    assert data["status"] == "cancelled"
    assert data["events"][-1] == {"kind": "cancelled", "message": "Cancelled: Invoice disputed",
                                  "at": data["events"][-1]["at"]}
    err = error(post(client, url_of(payment, "cancel"), {"reason": "again"}, a.key), 409,
                "cancel_refused")
    assert err["message"] == "A cancelled payment cannot be cancelled."
    error(post(client, url_of(payment, "retry"), {}, a.key), 409, "retry_refused")
    assert not SimulatedCharge.objects.exists()


def test_a_paid_payment_cannot_be_cancelled(client, a):
    payment = a.paid()
    err = error(post(client, url_of(payment, "cancel"), {"reason": "x"}, a.key), 409,
                "cancel_refused")
    assert err["message"] == "A paid payment cannot be cancelled."


# --- paying a top-up ---------------------------------------------------------------------------

def test_paying_a_top_up_credits_the_wallet_and_paying_again_charges_nothing(client, a):
    card(a.customer)
    top_up = a.top_up("25.00")
    data = answer(post(client, pay_url(top_up), None, a.key, raw=""), 201)
    payment = Payment.objects.get(top_up=top_up)
    assert (data["payment"]["id"], data["payment"]["status"], data["payment"]["purpose"],
            data["payment"]["amount"], data["payment"]["top_up"]) == (
        payment.pk, "succeeded", "top_up", "25.00", top_up.pk)
    assert (data["top_up"]["id"], data["top_up"]["status"], data["top_up"]["amount"]) == (
        top_up.pk, "paid", "25.00")
    assert data["top_up"]["paid_at"].endswith("Z")
    assert wallet_for(customer=a.customer).balance == D("25.00")
    again = answer(post(client, pay_url(top_up, currency="eur"), {}, a.key), 200)
    assert again["payment"]["id"] == payment.pk and again["top_up"]["status"] == "paid"
    # with a method named this time too: the payment made before, nothing more
    second = card(a.customer, token="sim_ok", default=False, label="Second card")
    again = answer(post(client, pay_url(top_up), {"method": second.pk}, a.key), 200)
    assert again["payment"]["id"] == payment.pk
    assert again["payment"]["method"]["id"] == payment.method_id != second.pk
    assert SimulatedCharge.objects.count() == 1
    assert Payment.objects.count() == 1
    assert wallet_for(customer=a.customer).balance == D("25.00")
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1


def test_a_declined_top_up_fails_and_credits_nothing(client, a):
    card(a.customer, token="sim_decline_soft")
    top_up = a.top_up()
    data = answer(post(client, pay_url(top_up), {}, a.key), 201)
    assert (data["payment"]["status"], data["payment"]["failure_code"],
            data["top_up"]["status"]) == ("failed", "insufficient_funds", "failed")
    again = answer(post(client, pay_url(top_up), {}, a.key), 200)
    assert again["payment"]["id"] == data["payment"]["id"]
    assert SimulatedCharge.objects.count() == 1
    assert wallet_for(customer=a.customer).balance == 0


def test_a_top_up_whose_answer_comes_later_is_processing(client, a):
    card(a.customer, token="sim_pending")
    top_up = a.top_up()
    data = answer(post(client, pay_url(top_up), {}, a.key), 201)
    assert (data["payment"]["status"], data["top_up"]["status"]) == ("processing", "pending")
    again = answer(post(client, pay_url(top_up), {}, a.key), 200)
    assert again["payment"]["id"] == data["payment"]["id"]
    assert SimulatedCharge.objects.count() == 1  # asked again with the same key


def test_a_top_up_is_paid_with_the_method_asked_for(client, a):
    card(a.customer, token="sim_decline_soft")  # the default
    second = card(a.customer, token="sim_ok", default=False, label="Mastercard •••• 5454")
    top_up = a.top_up()
    data = answer(post(client, pay_url(top_up), {"method": second.pk}, a.key), 201)
    assert data["payment"]["status"] == "succeeded"
    assert data["payment"]["method"] == {"id": second.pk, "kind": "card",
                                         "label": "Mastercard •••• 5454"}


def test_a_method_that_cannot_pay_a_top_up_answers_400(client, a, b):
    card(a.customer)
    mandate = method_add(customer=a.customer, kind="sepa_dd", iban="NL91ABNA0417164300",
                         bic="ABNANL2A", account_holder="A", mandate_reference="MNDT-A-1",
                         mandate_signed_on=date(2026, 1, 15))
    revoked = card(a.customer, token="sim_ok", default=False, label="Old card")
    method_revoke(method=revoked)
    other = CustomerFactory(operator=a.operator, reference="A-0002")
    others = card(other)
    theirs = card(b.customer)
    top_up = a.top_up()
    cases = [(mandate.pk, "A top-up is paid with a card or a wallet app."),
             (revoked.pk, "This payment method is revoked."),
             (others.pk, "This customer has no payment method with this id."),
             (theirs.pk, "This customer has no payment method with this id."),
             (999_999, "This customer has no payment method with this id.")]
    for method, message in cases:
        err = error(post(client, pay_url(top_up), {"method": method}, a.key), 400, "invalid")
        assert err["fields"] == {"method": [message]}
    for method in (0, -1, "x", 1.5, 2**63, True, [1], None):
        err = error(post(client, pay_url(top_up), None, a.key,
                         raw=json.dumps({"method": method})), 400, "invalid")
        assert list(err["fields"]) == ["method"]
    assert not Payment.objects.exists() and not SimulatedCharge.objects.exists()
    top_up.refresh_from_db()
    assert top_up.status == "pending"


def test_without_a_card_the_top_up_cannot_be_paid(client, a):
    top_up = a.top_up()
    err = error(post(client, pay_url(top_up), {}, a.key), 409, "top_up_payment_refused")
    assert err["message"] == ("A top-up is paid with a card or a wallet app; this customer has "
                              "none.")
    assert not Payment.objects.exists()


def test_a_top_up_no_longer_pending_cannot_be_paid(client, a):
    card(a.customer)
    top_up = a.top_up()
    TopUp.objects.filter(pk=top_up.pk).update(status=TopUp.Status.CANCELLED)
    err = error(post(client, pay_url(top_up), {}, a.key), 409, "top_up_payment_refused")
    assert err["message"] == "This top-up is cancelled."
    assert not SimulatedCharge.objects.exists()


def test_unknown_top_ups_wallets_and_customers_answer_404(client, a):
    card(a.customer)
    top_up = a.top_up()
    other = CustomerFactory(operator=a.operator, reference="A-0002")
    card(other)
    theirs = top_up_request(customer=other, amount=D("10.00"), idempotency_key="o")
    cases = [(pay_url(999_999), "No top-up with this id."),
             (pay_url(theirs), "No top-up with this id."),  # another customer's
             (pay_url(top_up, currency="USD"), "This customer has no wallet in this currency."),
             (pay_url(top_up, reference="NOBODY"), "No customer with this reference.")]
    for url, message in cases:
        assert error(post(client, url, {}, a.key), 404, "not_found")["message"] == message
    assert not Payment.objects.exists()


# --- payment methods ---------------------------------------------------------------------------

def test_a_customers_payment_methods_never_show_the_token_and_mask_the_iban(client, a):
    visa = card(a.customer, token="tok_visa_secret_4242")
    mandate = method_add(customer=a.customer, kind="sepa_dd", iban="NL91ABNA0417164300",
                         bic="ABNANL2A", account_holder="A. Driver",
                         mandate_reference="MNDT-A-1", mandate_signed_on=date(2026, 1, 15))
    old = card(a.customer, token="tok_old_secret", default=False, label="Old card")
    method_revoke(method=old)
    response = get(client, customer_url("A-0001", "payment-methods"), a.key)
    data = answer(response)
    assert data["count"] == 3
    assert [m["id"] for m in data["results"]] == [visa.pk, mandate.pk, old.pk]
    shown_visa, shown_mandate, shown_old = data["results"]
    assert shown_visa == {"id": visa.pk, "kind": "card", "label": "Visa •••• 4242",
                          "default": True, "status": "active", "iban": None,
                          "mandate_reference": None, "mandate_signed_on": None,
                          "created_at": iso(visa.created_at), "revoked_at": None}
    assert (shown_mandate["kind"], shown_mandate["default"], shown_mandate["iban"],
            shown_mandate["mandate_reference"], shown_mandate["mandate_signed_on"]) == (
        "sepa_dd", False, "**************4300", "MNDT-A-1", "2026-01-15")
    assert (shown_old["status"], shown_old["default"]) == ("revoked", False)
    assert shown_old["revoked_at"].endswith("Z")
    for secret in (b"tok_visa_secret", b"tok_old_secret", b"NL91ABNA", b"0417164300"):
        assert secret not in response.content
    assert b"provider_token" not in response.content


def test_a_customer_without_methods_has_an_empty_list(client, a):
    assert answer(get(client, customer_url("A-0001", "payment-methods"), a.key))["results"] == []


# --- another operator --------------------------------------------------------------------------

def test_another_operators_payments_never_appear_in_the_list(client, a, b):
    mine = a.paid()
    theirs = b.paid()
    number = quote(Invoice.objects.get(pk=theirs.invoice_id).number)
    for query in ("", "?status=succeeded", "?customer=B-0001", f"?invoice={number}",
                  "?operator=acme"):
        ids = [p["id"] for p in answer(get(client, PAYMENTS + query, a.key))["results"]]
        assert theirs.pk not in ids
        assert ids in ([mine.pk], [])
    assert answer(get(client, f"{PAYMENTS}?invoice={number}", a.key))["count"] == 0
    assert answer(get(client, f"{PAYMENTS}?customer=B-0001", a.key))["count"] == 0
    assert [p["id"] for p in answer(get(client, PAYMENTS, b.key))["results"]] == [theirs.pk]
    error(get(client, f"{PAYMENTS}?operator=bolt", a.key), 404, "not_found")


@pytest.mark.parametrize(("method", "action", "body"), [
    ("get", "", None), ("post", "refund", {"reason": "x"}),
    ("post", "refund", {"amount": "1.00", "reason": "x"}), ("post", "retry", {}),
    ("post", "cancel", {"reason": "x"}),
])
def test_another_operators_payment_answers_404_like_one_that_does_not_exist(
        client, a, b, method, action, body):
    theirs = b.paid(token="sim_decline_soft") if action in ("retry", "cancel") else b.paid()
    before = (theirs.status, theirs.amount_refunded, theirs.retry_count)
    events = PaymentEvent.objects.filter(payment=theirs).count()
    charges = SimulatedCharge.objects.count()
    if method == "get":
        found, missing = get(client, url_of(theirs), a.key), get(client, url_of(999_999), a.key)
    else:
        found = post(client, url_of(theirs, action), body, a.key)
        missing = post(client, url_of(999_999, action), body, a.key)
    assert error(found, 404, "not_found") == error(missing, 404, "not_found")
    theirs.refresh_from_db()
    assert (theirs.status, theirs.amount_refunded, theirs.retry_count) == before
    assert PaymentEvent.objects.filter(payment=theirs).count() == events
    assert SimulatedCharge.objects.count() == charges
    # and their own key reaches it
    assert get(client, url_of(theirs), b.key).status_code == 200


def test_another_operators_customer_and_top_up_answer_404(client, a, b):
    card(a.customer)
    card(b.customer)
    mine = a.top_up()
    theirs = b.top_up()
    # B's customer, with B's top-up; A's customer with B's top-up id; an unknown customer
    cases = [pay_url(theirs, reference="B-0001"), pay_url(theirs, reference="A-0001"),
             pay_url(theirs, reference="NOBODY")]
    for url in cases:
        error(post(client, url, {}, a.key), 404, "not_found")
    for rest in ("payment-methods",):
        found = get(client, customer_url("B-0001", rest), a.key)
        missing = get(client, customer_url("NOBODY", rest), a.key)
        assert error(found, 404, "not_found") == error(missing, 404, "not_found")
        assert get(client, customer_url("B-0001", rest), b.key).status_code == 200
    assert not Payment.objects.exists() and not SimulatedCharge.objects.exists()
    theirs.refresh_from_db()
    assert theirs.status == "pending"
    # A pays its own top-up; B's is untouched
    answer(post(client, pay_url(mine), {}, a.key), 201)
    assert not Payment.objects.filter(top_up=theirs).exists()


def test_a_key_cannot_name_another_operator(client, a, b):
    theirs = b.paid()
    error(post(client, url_of(theirs, "refund"), {"reason": "x", "operator": "bolt"}, a.key),
          404, "not_found")
    error(get(client, url_of(theirs) + "?operator=bolt", a.key), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.amount_refunded == 0


def test_a_signed_in_user_sees_only_their_operators_payments(client, a, b):
    mine, theirs = a.transfer(), b.transfer()
    client.force_login(MembershipFactory(operator=a.operator, role="viewer").user)
    assert [p["id"] for p in answer(get(client, PAYMENTS))["results"]] == [mine.pk]
    answer(get(client, url_of(mine)))
    error(get(client, url_of(theirs)), 404, "not_found")
    error(get(client, customer_url("B-0001", "payment-methods")), 404, "not_found")


def test_a_user_of_two_operators_names_one(client, a, b):
    theirs = b.paid()
    user = UserFactory()
    MembershipFactory(user=user, operator=a.operator, role="finance")
    MembershipFactory(user=user, operator=b.operator, role="finance")
    client.force_login(user)
    err = error(get(client, PAYMENTS), 400, "invalid")
    assert list(err["fields"]) == ["operator"]
    assert [p["id"] for p in answer(get(client, f"{PAYMENTS}?operator=bolt"))["results"]] == [
        theirs.pk]
    error(post(client, url_of(theirs, "refund"), {"reason": "x"}), 400, "invalid")
    error(post(client, url_of(theirs, "refund"), {"reason": "x", "operator": "acme"}), 404,
          "not_found")
    data = answer(post(client, url_of(theirs, "refund"),
                       {"amount": "1.00", "reason": "x", "operator": "bolt"}))
    assert data["amount_refunded"] == "1.00"


# --- who may write -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_viewers_and_managers_read_but_cannot_write(client, a, role):
    paid = a.paid()
    failed = a.transfer()
    top_up = a.top_up()
    client.force_login(MembershipFactory(operator=a.operator, role=role).user)
    answer(get(client, PAYMENTS))
    answer(get(client, url_of(paid)))
    answer(get(client, customer_url("A-0001", "payment-methods")))
    refused = [post(client, url_of(paid, "refund"), {"reason": "x"}),
               post(client, url_of(failed, "retry"), {}),
               post(client, url_of(failed, "cancel"), {"reason": "x"}),
               post(client, pay_url(top_up), {})]
    for response in refused:
        err = error(response, 403, "permission_denied")
        assert err["message"] == "Your role does not allow this (ask a finance user)."
    paid.refresh_from_db()
    failed.refresh_from_db()
    assert (paid.amount_refunded, failed.status, failed.retry_count) == (0, "scheduled", 0)
    assert Payment.objects.count() == 2 and SimulatedCharge.objects.count() == 1


def test_a_finance_user_writes_and_is_recorded(client, a):
    paid = a.paid()
    user = MembershipFactory(operator=a.operator, role="finance").user
    client.force_login(user)
    answer(post(client, url_of(paid, "refund"), {"amount": "1.00", "reason": "Goodwill"}))
    assert PaymentEvent.objects.get(payment=paid, kind="refunded").actor == user
    card_top_up = a.top_up()
    answer(post(client, pay_url(card_top_up), {}), 201)
    assert Payment.objects.get(top_up=card_top_up).created_by == user


def test_an_api_key_acts_for_no_user(client, a):
    paid = a.paid()
    answer(post(client, url_of(paid, "refund"), {"amount": "1.00", "reason": "x"}, a.key))
    assert PaymentEvent.objects.get(payment=paid, kind="refunded").actor is None


@pytest.mark.parametrize(("method", "url"), [
    ("get", PAYMENTS), ("get", f"{PAYMENTS}/1"), ("post", f"{PAYMENTS}/1/refund"),
    ("post", f"{PAYMENTS}/1/retry"), ("post", f"{PAYMENTS}/1/cancel"),
    ("post", "/api/v1/customers/A-0001/wallets/EUR/top-ups/1/pay"),
    ("get", "/api/v1/customers/A-0001/payment-methods"),
])
def test_without_credentials_the_answer_is_401(client, a, method, url):
    response = getattr(client, method)(url, data={}, content_type="application/json")
    error(response, 401, "not_authenticated")
    response = getattr(client, method)(url, data={}, content_type="application/json",
                                       HTTP_AUTHORIZATION="Bearer emb_nothing_wrong")
    error(response, 401, "authentication_failed")


# --- malformed, hostile, oversized -------------------------------------------------------------

def write_urls(net: Net) -> list[str]:
    """One address of every write, for payments and a top-up that exist."""
    payment = net.transfer()
    return [url_of(payment, "refund"), url_of(payment, "retry"), url_of(payment, "cancel"),
            pay_url(net.top_up())]


@pytest.mark.parametrize("raw", ["{", '{"reason": }', "not json", "[1, 2", '{"a": NaN}',
                                 "[" * 5_000 + "]" * 5_000, b'{"reason": "\xff\xfe"}'])
def test_malformed_json_answers_400(client, a, raw):
    for url in write_urls(a):
        error(post(client, url, None, a.key, raw=raw), 400, "malformed_json")
    assert not PaymentEvent.objects.exclude(kind="created").exists()


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_answers_400(client, a, raw):
    for url in write_urls(a):
        err = error(post(client, url, None, a.key, raw=raw), 400, "invalid")
        assert list(err["fields"]) == ["non_field_errors"]


def test_a_body_that_is_not_json_answers_415(client, a):
    for url in write_urls(a):
        response = client.post(url, data="reason=x", HTTP_AUTHORIZATION=f"Bearer {a.key}",
                               content_type="application/x-www-form-urlencoded")
        error(response, 415, "unsupported_media_type")


def test_a_body_over_16_kb_answers_413(client, a):
    for url in write_urls(a):
        err = error(post(client, url, {"reason": "x", "padding": "x" * 16_384}, a.key), 413,
                    "payload_too_large")
        assert err["message"] == "The request body is larger than 16 KB."
    assert not PaymentEvent.objects.exclude(kind="created").exists()


@pytest.mark.parametrize("pk", ["abc", "-1", "1.5", "0x10", "1e3", "%201", "1%00", "%00",
                                "9" * 19, "9" * 30, "0", "00000000000000000001" + "0",
                                str(2**63 - 1), str(2**63)])
def test_ids_that_are_no_ids_answer_404_not_500(client, a, pk):
    payment = a.transfer()
    top_up = a.top_up()
    for url in (url_of(pk), url_of(pk, "refund"), url_of(pk, "retry"), url_of(pk, "cancel")):
        response = get(client, url, a.key) if url == url_of(pk) else post(
            client, url, {"reason": "x"}, a.key)
        error(response, 404, "not_found")
    error(post(client, pay_url(pk), {}, a.key), 404, "not_found")
    payment.refresh_from_db()
    top_up.refresh_from_db()
    assert (payment.status, top_up.status) == ("scheduled", "pending")


HOSTILE = ["'; DROP TABLE payments_payment; --", "<script>alert(1)</script>", "Ünïcødé ⚡",
           "\u202eevil\u202c", "%", "_", "*", "A-000%", "A" * 5000]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_references_and_filters_change_nothing(client, a, text):
    card(a.customer)
    top_up = a.top_up()
    payment = a.transfer()
    error(get(client, customer_url(text, "payment-methods"), a.key), 404, "not_found")
    error(post(client, pay_url(top_up, reference=text), {}, a.key), 404, "not_found")
    response = get(client, f"{PAYMENTS}?customer={quote(text)}&invoice={quote(text)}", a.key)
    if len(text) > 40:
        assert list(error(response, 400, "invalid")["fields"]) == ["customer", "invoice"]
    else:
        assert answer(response)["results"] == []
        assert b"<script>" not in response.content
    assert not Payment.objects.filter(top_up=top_up).exists()
    payment.refresh_from_db()
    assert payment.status == "scheduled"


@pytest.mark.parametrize("reference", ["A-0001%00", "%00", "A-0001%2Frest", "..%2F..%2Fadmin"])
def test_hostile_path_segments_answer_404(client, a, reference):
    error(get(client, f"/api/v1/customers/{reference}/payment-methods", a.key), 404,
          "not_found")
    error(post(client, f"/api/v1/customers/{reference}/wallets/EUR/top-ups/1/pay", {}, a.key),
          404, "not_found")


@pytest.mark.parametrize("currency", ["EURO", "E1R", "%00%00%00", "EU"])
def test_a_currency_that_is_no_currency_code_answers_404(client, a, currency):
    card(a.customer)
    top_up = a.top_up()
    error(post(client, pay_url(top_up, currency=currency), {}, a.key), 404, "not_found")
    assert not Payment.objects.exists()


def test_other_methods_answer_405(client, a):
    payment = a.transfer()
    top_up = a.top_up()
    err = error(post(client, PAYMENTS, {}, a.key), 405, "method_not_allowed")
    assert err["message"] == 'Method "POST" not allowed.'
    error(client.delete(url_of(payment), HTTP_AUTHORIZATION=f"Bearer {a.key}"), 405,
          "method_not_allowed")
    for action in ("refund", "retry", "cancel"):
        error(get(client, url_of(payment, action), a.key), 405, "method_not_allowed")
    error(get(client, pay_url(top_up), a.key), 405, "method_not_allowed")
    error(post(client, customer_url("A-0001", "payment-methods"), {}, a.key), 405,
          "method_not_allowed")


def test_no_answer_carries_a_float(client, a):
    card(a.customer)
    paid = a.paid()
    credit_grant(customer=a.customer, amount=D("3.33"), reason="x")
    answers = [post(client, url_of(paid, "refund"), None, a.key,
                    raw='{"amount": 1.25, "reason": "x"}'),
               post(client, pay_url(a.top_up("12.50")), {}, a.key),
               get(client, PAYMENTS, a.key), get(client, url_of(paid), a.key),
               get(client, customer_url("A-0001", "payment-methods"), a.key)]
    for response in answers:
        assert response.status_code in (200, 201), response.content
        assert floats_in(json.loads(response.content)) == []


# --- at the same time --------------------------------------------------------------------------

def at_once(requests: list) -> list:
    """Run the ``(url, data, key)`` POST requests on as many threads, each with its own client
    and database connection, released together."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection
    from django.test import Client

    barrier = Barrier(len(requests))

    def run(request):
        url, data, key = request
        try:
            browser = Client()
            barrier.wait(timeout=30)
            return post(browser, url, data, key)
        finally:
            connection.close()

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


@pytest.mark.django_db(transaction=True)
def test_the_same_top_up_paid_eight_times_at_once_is_charged_once(a):
    card(a.customer)
    top_up = a.top_up("30.00")
    responses = at_once([(pay_url(top_up), {}, a.key) for _ in range(8)])
    assert {r.status_code for r in responses} <= {200, 201}, [r.content for r in responses]
    payment = Payment.objects.get(top_up=top_up)
    assert {r.json()["payment"]["id"] for r in responses} == {payment.pk}
    assert SimulatedCharge.objects.filter(operation="charge").count() == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert wallet_for(customer=a.customer).balance == D("30.00")


def test_a_write_that_waits_too_long_for_another_answers_409(client, a, monkeypatch):
    from django.db import connections

    from payments.api import payments as api

    payment = a.paid()
    monkeypatch.setattr(api, "WAIT_SECONDS", 0.2)
    other = connections.create_connection("default")  # another process, as it were
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [api.lock_key("payment", payment.pk)])
        err = error(post(client, url_of(payment, "refund"), {"reason": "x"}, a.key), 409,
                    "in_progress")
        assert err["message"] == ("Another request for this payment is still being answered; "
                                  "try again in a moment.")
        payment.refresh_from_db()
        assert payment.amount_refunded == 0
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [api.lock_key("payment", payment.pk)])
        assert answer(post(client, url_of(payment, "refund"), {"reason": "x"}, a.key))[
            "amount_refunded"] == "14.52"
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_the_same_refund_sent_at_once_never_refunds_more_than_was_paid(a):
    payment = a.paid()  # 14.52
    responses = at_once([(url_of(payment, "refund"), {"amount": "10.00", "reason": "x"}, a.key)
                         for _ in range(4)])
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [
        r.content for r in responses]
    payment.refresh_from_db()
    assert payment.amount_refunded == D("10.00")
    assert [r.amount for r in SimulatedCharge.objects.filter(operation="refund")] == [D("10.00")]
