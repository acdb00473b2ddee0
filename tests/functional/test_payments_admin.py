"""The payments admin as finance staff, managers and viewers use it: the payment list, retrying
now, marking paid with a reference, refunding whole or in part, cancelling, revoking a mandate,
closing a dunning case (which unblocks its tokens), methods, plans and settings checked by the
model's rules, the invoice page with its payments, and never another operator's rows.

Every action goes through the test client and the admin's own pages; the provider is the
simulated one."""

from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from emobility.models import Token
from invoicing.models import Invoice
from payments.admin.core import masked_iban
from payments.models import (
    DunningCase,
    PaymentEvent,
    PaymentMethod,
    PaymentPlan,
    PaymentSettings,
    SimulatedCharge,
    TokenBlock,
    WebhookEvent,
)
from payments.services import (
    dunning_run,
    invoice_schedule_payments,
    payment_collect,
)
from payments.validation import creditor_id_problem
from tests.factories import CustomerFactory, MembershipFactory, TokenFactory
from tests.integration.payments.conftest import (
    DUE_ON,
    ISSUED_ON,
    at,
    card,
    issued_invoice,
    mandate,
    on_plan,
)
from tests.integration.promotions.conftest import build_shop

pytestmark = pytest.mark.django_db

D = Decimal
CHANGELIST = "admin:payments_payment_changelist"


def page(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def payment_for(shop, *, token=None, plan="monthly_auto", sessions=3, customer=None,
                method=None):
    """A customer of ``shop`` with an issued invoice of ``sessions`` sessions (4.84 each) and
    its one payment, scheduled: by card (``token``), by direct debit (``method``) or, without
    either, by bank transfer."""
    customer = customer or CustomerFactory(operator=shop.operator)
    invoice = issued_invoice(shop, sessions=sessions, customer=customer)
    if token:
        card(customer, token=token)
    if method == "mandate":
        mandate(customer)
    if token or method:
        on_plan(customer, plan)
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    return payment


def collected(payment):
    """The payment collected on its due date (through the simulated provider)."""
    return payment_collect(payment=payment, now=at(DUE_ON))


def act(client, action, rows, follow=False, url=CHANGELIST):
    return client.post(reverse(url), {"action": action, "index": "0",
                                      "_selected_action": [r.pk for r in rows]}, follow=follow)


def snapshot(payment) -> tuple:
    payment.refresh_from_db()
    invoice = payment.invoice
    invoice.refresh_from_db()
    return (payment.status, payment.amount_refunded, payment.paid_reference,
            payment.attempts.count(), payment.events.count(), invoice.status,
            invoice.amount_paid)


@pytest.fixture
def net():
    """Operator A with a finance user, a manager and a viewer; operator B with a payment, a
    card, a plan, settings and a dunning case of its own."""
    shop = build_shop()
    other = build_shop()
    theirs = payment_for(other, token="sim_ok")
    their_case = DunningCase.objects.create(operator=other.operator, invoice=theirs.invoice,
                                            customer=theirs.customer, opened_on=DUE_ON)
    their_settings = PaymentSettings.objects.create(operator=other.operator)
    return {"shop": shop, "operator": shop.operator,
            "finance": MembershipFactory(operator=shop.operator, role="finance").user,
            "manager": MembershipFactory(operator=shop.operator, role="manager").user,
            "viewer": MembershipFactory(operator=shop.operator, role="viewer").user,
            "other": other, "theirs": theirs, "their_method": theirs.method,
            "their_plan": PaymentPlan.objects.get(customer=theirs.customer),
            "their_case": their_case, "their_settings": their_settings}


# --- the list ---------------------------------------------------------------------------------

def test_the_list_shows_the_operators_payments_and_filters_and_searches_them(client, net):
    shop = net["shop"]
    failed = collected(payment_for(shop, token="sim_decline_soft",
                                   customer=CustomerFactory(operator=shop.operator,
                                                            name="Soft Decliner")))
    paid = collected(payment_for(shop, token="sim_ok"))
    transfer = payment_for(shop)
    client.force_login(net["finance"])
    body = page(client.get(reverse(CHANGELIST)))
    for payment in (failed, paid, transfer):
        assert payment.invoice.number in body
    assert net["theirs"].invoice.number not in body
    assert "Insufficient funds." in body and "retry 1: " in body

    def listed(**params):
        found = page(client.get(reverse(CHANGELIST), params))
        return {p.pk for p in (failed, paid, transfer) if p.invoice.number in found}

    assert listed(status="failed") == {failed.pk}
    assert listed(status="retrying") == {failed.pk}
    assert listed(status="given_up") == set()
    assert listed(status="succeeded") == {paid.pk}
    assert listed(channel="bank_transfer") == {transfer.pk}
    assert listed(purpose="invoice") == {failed.pk, paid.pk, transfer.pk}
    assert listed(q="soft decliner") == {failed.pk}
    assert listed(q=paid.invoice.number) == {paid.pk}
    assert listed(q=paid.provider_reference) == {paid.pk}
    assert listed(q=transfer.customer.reference) == {transfer.pk}


def test_a_failed_payments_page_shows_its_attempts_and_history(client, net):
    payment = collected(payment_for(net["shop"], token="sim_decline_hard"))
    client.force_login(net["finance"])
    body = page(client.get(reverse("admin:payments_payment_change", args=[payment.pk])))
    attempt = payment.attempts.get()
    assert attempt.idempotency_key in body and attempt.provider_reference in body
    assert "stolen_card" in body and "hard decline: not retried" in body
    assert '"failure_code": "stolen_card",\n' in unescape(body)  # the raw answer, indented
    assert "Failed: The card was reported stolen." in body  # the history
    assert reverse("admin:payments_payment_retry", args=[payment.pk]) in body
    assert reverse("admin:payments_payment_refund", args=[payment.pk]) not in body


# --- retry now --------------------------------------------------------------------------------

def test_retry_now_of_a_soft_declined_payment_then_succeeds(client, net):
    payment = collected(payment_for(net["shop"], token="sim_soft_then_ok"))
    assert (payment.status, payment.failure_code) == ("failed", "insufficient_funds")
    assert payment.next_retry_at is not None
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_payment_retry", args=[payment.pk]),
                           follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:payments_payment_change",
                                                     args=[payment.pk])
    assert any("paid, EUR 14.52" in m for m in messages_of(response))
    payment.refresh_from_db()
    assert (payment.status, payment.retry_count, payment.next_retry_at) == (
        "succeeded", 1, None)
    assert payment.invoice.status == "paid" and payment.invoice.amount_paid == D("14.52")
    assert list(payment.attempts.values_list("idempotency_key", "status")) == [
        (f"pay{payment.pk}-charge-1", "failed"), (f"pay{payment.pk}-charge-2", "succeeded")]
    retry = payment.events.get(kind="retry")
    assert retry.actor == net["finance"] and retry.message == "Tried again now by hand."
    # paid now: trying again is refused with the service's message, and charges nothing
    again = client.post(reverse("admin:payments_payment_retry", args=[payment.pk]),
                        follow=True)
    assert any("Only a failed or scheduled payment can be tried now" in m
               for m in messages_of(again))
    assert SimulatedCharge.objects.filter(operation="charge").count() == 2
    assert client.get(reverse("admin:payments_payment_retry", args=[payment.pk])).status_code \
        == 405


def test_retry_now_from_the_list_tries_each_selected_payment(client, net):
    shop = net["shop"]
    declined = collected(payment_for(shop, token="sim_decline_soft"))
    transfer = payment_for(shop)
    paid = collected(payment_for(shop, token="sim_ok"))
    client.force_login(net["finance"])
    response = act(client, "retry_selected", [declined, transfer, paid], follow=True)
    found = messages_of(response)
    assert any(declined.invoice.number in m and "failed again (Insufficient funds.)" in m
               for m in found)
    assert any(transfer.invoice.number in m and "scheduled again" in m for m in found)
    assert any(paid.invoice.number in m and "this one is paid" in m for m in found)
    declined.refresh_from_db()
    assert (declined.status, declined.retry_count, declined.attempts.count()) == ("failed", 1, 2)
    paid.refresh_from_db()
    assert paid.attempts.count() == 1


# --- mark paid --------------------------------------------------------------------------------

def test_mark_paid_needs_a_reference_and_pays_the_invoice(client, net):
    payment = payment_for(net["shop"])                   # a bank transfer
    url = reverse("admin:payments_payment_mark_paid", args=[payment.pk])
    client.force_login(net["finance"])
    assert client.get(url).status_code == 200
    before = snapshot(payment)
    refused = client.post(url, {"reference": "   "})
    assert refused.status_code == 200
    assert "Give the reference of the money received" in page(refused)
    assert snapshot(payment) == before
    response = client.post(url, {"reference": "ING statement 2026-11-20 #17"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:payments_payment_change", args=[payment.pk])
    payment.refresh_from_db()
    assert (payment.status, payment.paid_reference) == ("succeeded",
                                                        "ING statement 2026-11-20 #17")
    assert payment.invoice.status == "paid"
    assert payment.events.get(kind="paid").actor == net["finance"]


def test_mark_paid_from_the_list_with_one_reference_for_the_selected(client, net):
    shop = net["shop"]
    first, second = payment_for(shop), payment_for(shop)
    paid = collected(payment_for(shop, token="sim_ok"))
    client.force_login(net["finance"])
    response = act(client, "mark_paid_selected", [first, second])
    assert response.status_code == 302
    url = response["Location"]
    assert url == (f"{reverse('admin:payments_payment_mark_paid_many')}?ids="
                   f"{first.pk}%2C{second.pk}")
    assert first.invoice.number in page(client.get(url))
    done = client.post(url, {"reference": "Cash desk receipt 4411"}, follow=True)
    assert any("2 payments marked paid" in m for m in messages_of(done))
    for payment in (first, second):
        payment.refresh_from_db()
        assert (payment.status, payment.paid_reference) == ("succeeded",
                                                            "Cash desk receipt 4411")
    # a paid payment is refused by the service, with its message
    many = f"{reverse('admin:payments_payment_mark_paid_many')}?ids={paid.pk}"
    refused = client.post(many, {"reference": "again"})
    assert refused.status_code == 200
    assert any("This payment is paid." in m for m in messages_of(refused))


# --- refunds ----------------------------------------------------------------------------------

def test_refund_part_then_the_rest_then_refused_beyond(client, net):
    payment = collected(payment_for(net["shop"], token="sim_ok"))
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    client.force_login(net["finance"])
    form = client.get(url)
    assert form.status_code == 200 and "At most EUR 14.52" in page(form)
    part = client.post(url, {"amount": "4.52", "reason": "A session billed twice"},
                       follow=True)
    assert any("EUR 4.52 refunded; EUR 10.00 left to refund" in m for m in messages_of(part))
    payment.refresh_from_db()
    assert payment.amount_refunded == D("4.52")
    assert payment.invoice.amount_paid == D("10.00")
    assert payment.invoice.status == "overdue"  # paid in part, and due on DUE_ON
    too_much = client.post(url, {"amount": "10.01", "reason": "More than is left"})
    assert too_much.status_code == 200
    assert "At most EUR 10.00 can still be refunded." in page(too_much)
    rest = client.post(url, {"amount": "", "reason": "Account closed"}, follow=True)
    assert any("EUR 10.00 refunded; EUR 0.00 left" in m for m in messages_of(rest))
    payment.refresh_from_db()
    assert payment.amount_refunded == payment.amount == D("14.52")
    assert payment.invoice.amount_paid == D("0.00")
    refunds = SimulatedCharge.objects.filter(operation="refund", status="succeeded")
    assert sorted(refunds.values_list("amount", flat=True)) == [D("4.52"), D("10.00")]
    beyond = client.post(url, {"amount": "0.01", "reason": "Once more"})
    assert beyond.status_code == 200
    assert "At most EUR 0.00 can still be refunded." in page(beyond)
    assert refunds.count() == 2
    assert reverse("admin:payments_payment_refund", args=[payment.pk]) not in page(
        client.get(reverse("admin:payments_payment_change", args=[payment.pk])))
    assert [e.message for e in payment.events.filter(kind="refunded").order_by("pk")] == [
        "Refunded EUR 4.52 through simulated: A session billed twice",
        "Refunded EUR 10.00 through simulated: Account closed"]


@pytest.mark.parametrize(("amount", "reason", "message"), [
    ("-5", "Goodwill", "A refund is for an amount above 0"),
    ("0", "Goodwill", "A refund is for an amount above 0"),
    ("1.001", "Goodwill", "EUR amounts have fewer decimals than 1.001."),
    ("1e30", "Goodwill", "At most EUR 14.52 can still be refunded."),
    ("99999999999999999999999999.99", "Goodwill", "At most EUR 14.52 can still be refunded."),
    ("NaN", "Goodwill", "Enter a number."),
    ("twelve", "Goodwill", "Enter a number."),
    ("5.00", "   ", "Say why the money is given back."),
])
def test_bad_refund_input_is_a_clear_error_and_changes_nothing(client, net, amount, reason,
                                                               message):
    payment = collected(payment_for(net["shop"], token="sim_ok"))
    before = snapshot(payment)
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_payment_refund", args=[payment.pk]),
                           {"amount": amount, "reason": reason})
    assert response.status_code == 200
    assert message in page(response)
    assert snapshot(payment) == before
    assert not SimulatedCharge.objects.filter(operation="refund").exists()


def test_a_refund_of_an_unpaid_payment_shows_the_services_refusal(client, net):
    payment = payment_for(net["shop"])
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_payment_refund", args=[payment.pk]),
                           {"amount": "", "reason": "Wrong customer"})
    assert response.status_code == 200
    assert any("Only a paid payment can be refunded." in m for m in messages_of(response))
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("scheduled", D("0"))


def test_refund_from_the_list_is_one_payment_at_a_time(client, net):
    shop = net["shop"]
    one, two = (collected(payment_for(shop, token="sim_ok")) for _ in range(2))
    client.force_login(net["finance"])
    response = act(client, "refund_selected", [one])
    assert response["Location"] == reverse("admin:payments_payment_refund", args=[one.pk])
    both = act(client, "refund_selected", [one, two], follow=True)
    assert any("Refund one payment at a time" in m for m in messages_of(both))


# --- cancel -----------------------------------------------------------------------------------

def test_cancel_needs_a_reason_and_stops_collection(client, net):
    payment = payment_for(net["shop"])
    url = reverse("admin:payments_payment_cancel", args=[payment.pk])
    client.force_login(net["finance"])
    before = snapshot(payment)
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 200 and "Say why the payment is cancelled." in page(refused)
    assert snapshot(payment) == before
    response = client.post(url, {"reason": "Invoice credited in full"})
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    event = payment.events.get(kind="cancelled")
    assert (event.message, event.actor) == ("Cancelled: Invoice credited in full",
                                            net["finance"])


def test_cancelling_a_paid_payment_is_refused_with_the_services_message(client, net):
    shop = net["shop"]
    paid = collected(payment_for(shop, token="sim_ok"))
    waiting = payment_for(shop)
    client.force_login(net["finance"])
    response = act(client, "cancel_selected", [paid, waiting])
    url = response["Location"]
    result = client.post(url, {"reason": "Customer left"})
    assert result.status_code == 200  # one refused: the form stays, with the message
    found = messages_of(result)
    assert any("A paid payment cannot be cancelled." in m for m in found)
    assert any("1 payment cancelled." in m for m in found)
    paid.refresh_from_db()
    waiting.refresh_from_db()
    assert (paid.status, waiting.status) == ("succeeded", "cancelled")


# --- methods ----------------------------------------------------------------------------------

def test_revoking_a_mandate_fails_the_payments_waiting_on_it(client, net):
    payment = payment_for(net["shop"], method="mandate")
    method = payment.method
    assert (payment.channel, method.kind) == ("direct_debit", "sepa_dd")
    client.force_login(net["finance"])
    response = act(client, "revoke_selected", [method],
                   url="admin:payments_paymentmethod_changelist")
    url = response["Location"]
    confirm = client.get(url)
    assert "1 payment still waiting on it fails (hard)" in page(confirm)
    done = client.post(url, {"reason": "Customer revoked the mandate at the bank"},
                       follow=True)
    assert any("1 method revoked" in m for m in messages_of(done))
    method.refresh_from_db()
    payment.refresh_from_db()
    assert (method.status, method.is_default) == ("revoked", False)
    assert (payment.status, payment.failure_code, payment.hard_decline,
            payment.next_retry_at) == ("failed", "mandate_revoked", True, None)
    # a revoked method's page is read-only and offers no revoke
    body = page(client.get(reverse("admin:payments_paymentmethod_change", args=[method.pk])))
    assert reverse("admin:payments_paymentmethod_revoke", args=[method.pk]) not in body
    assert masked_iban(method.iban) in body and method.iban not in body
    assert 'name="label"' not in body


def test_adding_a_method_checks_iban_bic_and_tokens_and_masks_the_iban(client, net):
    customer = CustomerFactory(operator=net["operator"], name="Mandate Holder")
    url = reverse("admin:payments_paymentmethod_add")
    client.force_login(net["finance"])
    base = {"customer": customer.pk, "kind": "sepa_dd", "iban": "NL91 ABNA 0417 1643 00",
            "bic": "ABNANL2A", "account_holder": "Mandate Holder",
            "mandate_reference": "MNDT-0001", "mandate_signed_on": "2026-01-15",
            "sequence": "FRST", "label": "", "gateway": "", "provider_token": ""}
    for change, message in (({"iban": "NL91ABNA0417164301"}, "is not a valid IBAN"),
                            ({"bic": "ABNANL"}, "is not a valid BIC"),
                            ({"mandate_reference": ""}, "A mandate reference"),
                            ({"kind": "card", "provider_token": "4242 4242 4242 4242"},
                             "That looks like a card number")):
        response = client.post(url, {**base, **change})
        assert response.status_code == 200, change
        assert message in page(response), change
    assert not PaymentMethod.objects.filter(customer=customer).exists()
    response = client.post(url, base)
    assert response.status_code == 302
    method = PaymentMethod.objects.get(customer=customer)
    assert (method.iban, method.is_default, method.operator) == (
        "NL91ABNA0417164300", True, net["operator"])
    assert PaymentEvent.objects.filter(customer=customer, kind="method_added").exists()
    listing = page(client.get(reverse("admin:payments_paymentmethod_changelist")))
    assert "•••• 4300" in listing
    assert "0417164300" not in listing and "NL91ABNA" not in listing
    duplicate = client.post(url, {**base, "customer": CustomerFactory(
        operator=net["operator"]).pk})
    assert "Another method of this operator has this mandate reference." in page(duplicate)


def test_making_a_method_the_default(client, net):
    customer = CustomerFactory(operator=net["operator"])
    first = card(customer, token="sim_ok", label="Visa •••• 4242")
    second = card(customer, token="sim_ok", default=False, label="Mastercard •••• 5100")
    client.force_login(net["finance"])
    url = reverse("admin:payments_paymentmethod_change", args=[second.pk])
    response = client.post(url, {"label": "Mastercard (work)", "account_holder": "",
                                 "bic": "", "make_default": "on"})
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default, second.label) == (
        False, True, "Mastercard (work)")


# --- plans and settings -------------------------------------------------------------------------

def test_a_plan_is_checked_and_saved_like_plan_set(client, net):
    customer = CustomerFactory(operator=net["operator"])
    url = reverse("admin:payments_paymentplan_add")
    client.force_login(net["finance"])
    refused = client.post(url, {"customer": customer.pk, "kind": "per_session",
                                "instalments": "1"})
    assert "This plan needs one of these methods: Card" in page(refused)
    few = client.post(url, {"customer": customer.pk, "kind": "instalments",
                            "instalments": "1"})
    assert "An instalment plan has 2 to 24 parts." in page(few)
    assert not PaymentPlan.objects.filter(customer=customer).exists()
    card(customer)
    response = client.post(url, {"customer": customer.pk, "kind": "instalments",
                                 "instalments": "3"})
    assert response.status_code == 302
    plan = PaymentPlan.objects.get(customer=customer)
    assert (plan.kind, plan.instalments, plan.operator) == ("instalments", 3, net["operator"])
    assert PaymentEvent.objects.get(customer=customer, kind="plan").actor == net["finance"]
    change = reverse("admin:payments_paymentplan_change", args=[plan.pk])
    assert client.post(change, {"kind": "per_session", "instalments": "3"}).status_code == 302
    plan.refresh_from_db()
    assert (plan.kind, plan.instalments) == ("per_session", 1)


def test_settings_check_retry_days_dunning_levels_and_sepa_details(client, net):
    url = reverse("admin:payments_paymentsettings_add")
    client.force_login(net["finance"])
    data = {"operator": net["operator"].pk, "gateway": "simulated", "retry_days": "[3, 7, 14]",
            "dunning_levels": '[{"name": "friendly", "days": 0}, {"name": "final", "days": 14}]',
            "late_fee": "5.00", "late_fee_vat_rate": "21", "block_tokens": "on",
            "block_after_days": "7", "sepa_creditor_id": "NL57ZZZ999999999999",
            "sepa_creditor_name": "Alpha", "sepa_iban": "NL91ABNA0417164300",
            "sepa_bic": "ABNANL2A", "ad_hoc_max_amount": "50.00"}
    for change, message in (
            ({"retry_days": "[7, 3]"}, "A list of increasing whole days"),
            ({"retry_days": "[3, 400]"}, "A list of increasing whole days"),
            ({"retry_days": "three"}, "Enter a valid JSON."),
            ({"dunning_levels": '[{"name": "angry", "days": 0}]'}, "names: friendly, firm"),
            ({"dunning_levels": '[{"name": "firm", "days": 10}, {"name": "friendly", '
                                '"days": 0}]'}, "A list of levels in order"),
            ({"sepa_creditor_id": "NL98ZZZ999999999999"}, "The check digits do not match"),
            ({"sepa_creditor_id": "12345"}, "A creditor identifier looks like"),
            ({"sepa_iban": "NL00ABNA0417164300"}, "is not a valid IBAN"),
            ({"late_fee": "-1"}, "A late fee is 0 (none) or more."),
            ({"gateway": "paypal"}, "Select a valid choice.")):
        response = client.post(url, {**data, **change})
        assert response.status_code == 200, change
        assert message in page(response), change
    assert not PaymentSettings.objects.filter(operator=net["operator"]).exists()
    assert client.post(url, data).status_code == 302
    saved = PaymentSettings.objects.get(operator=net["operator"])
    assert (saved.retry_days, saved.dunning_levels[-1], saved.sepa_creditor_id) == (
        [3, 7, 14], {"name": "final", "days": 14}, "NL57ZZZ999999999999")


def test_creditor_identifiers_and_masked_ibans():
    assert creditor_id_problem("DE98ZZZ09999999999") is None  # the German test identifier
    assert creditor_id_problem("nl57 zzz 9999 9999 9999") is None
    assert "check digits" in creditor_id_problem("NL58ZZZ999999999999")
    assert masked_iban("BE68539007547034") == "•••• •••• •••• 7034"
    assert masked_iban("") == "—"


# --- dunning ----------------------------------------------------------------------------------

def test_closing_a_dunning_case_unblocks_the_tokens_it_blocked(client, net):
    shop = net["shop"]
    PaymentSettings.objects.create(operator=shop.operator, block_after_days=1,
                                   dunning_levels=[{"name": "final", "days": 0}])
    customer = CustomerFactory(operator=shop.operator)
    token = TokenFactory(customer=customer)
    payment = collected(payment_for(shop, token="sim_decline_hard", customer=customer))
    assert payment.hard_decline
    dunning_run(today=DUE_ON + timedelta(days=1), now=at(DUE_ON + timedelta(days=1)))
    dunning_run(today=DUE_ON + timedelta(days=2), now=at(DUE_ON + timedelta(days=2)))
    case = DunningCase.objects.get(invoice=payment.invoice)
    blocked = set(TokenBlock.objects.filter(case=case).values_list("token_id", flat=True))
    assert token.pk in blocked and not Token.objects.filter(pk__in=blocked, valid=True).exists()
    client.force_login(net["finance"])
    listing = page(client.get(reverse("admin:payments_dunningcase_changelist"), {"open": "yes"}))
    assert payment.invoice.number in listing
    assert f"blocked {DUE_ON + timedelta(days=2):%Y-%m-%d}" in listing
    assert f"1 of 1, {DUE_ON + timedelta(days=1):%Y-%m-%d}" in listing  # the operator's levels
    body = page(client.get(reverse("admin:payments_dunningcase_change", args=[case.pk])))
    assert "Final reminder (level 1 of 1)" in body and "Failed: The card was reported" in body
    url = reverse("admin:payments_dunningcase_close", args=[case.pk])
    refused = client.post(url, {"reason": " "})
    assert refused.status_code == 200 and "Say why dunning ends" in page(refused)
    case.refresh_from_db()
    assert case.is_open
    done = client.post(url, {"reason": "Payment arrangement agreed"}, follow=True)
    assert any("1 dunning case closed" in m for m in messages_of(done))
    case.refresh_from_db()
    assert (case.is_open, case.close_reason) == (False, "Payment arrangement agreed")
    assert Token.objects.filter(pk__in=blocked, valid=False).count() == 0
    assert not TokenBlock.objects.filter(case=case, unblocked_at__isnull=True).exists()
    closed = PaymentEvent.objects.get(invoice=payment.invoice, kind="dunning_closed")
    assert closed.actor == net["finance"]
    assert page(client.get(reverse("admin:payments_dunningcase_changelist"),
                           {"open": "yes"})).count(payment.invoice.number) == 0


# --- the invoice page ---------------------------------------------------------------------------

def test_the_invoice_page_shows_its_payments_and_history(client, net):
    payment = collected(payment_for(net["shop"], token="sim_decline_soft"))
    client.force_login(net["finance"])
    body = page(client.get(reverse("admin:invoicing_invoice_change",
                                   args=[payment.invoice_id])))
    assert reverse("admin:payments_payment_change", args=[payment.pk]) in body
    assert "payment history" in body.lower()
    assert "Failed: Insufficient funds." in body and "To collect: EUR 14.52" in body
    theirs = net["theirs"].invoice
    assert client.get(reverse("admin:invoicing_invoice_change",
                              args=[theirs.pk])).status_code == 404


def test_webhook_events_are_shown_read_only_within_the_operator(client, net):
    payment = collected(payment_for(net["shop"], token="sim_ok"))
    ours = WebhookEvent.objects.create(gateway="simulated", event_id="evt_ours", type="charge",
                                       payload={"amount": D("14.52")}, payment=payment,
                                       received_at=at(DUE_ON))
    theirs = WebhookEvent.objects.create(gateway="simulated", event_id="evt_theirs",
                                         type="charge", payment=net["theirs"],
                                         received_at=at(DUE_ON))
    orphan = WebhookEvent.objects.create(gateway="simulated", event_id="evt_orphan",
                                         type="charge", received_at=at(DUE_ON))
    client.force_login(net["finance"])
    listing = page(client.get(reverse("admin:payments_webhookevent_changelist")))
    assert "evt_ours" in listing and "evt_theirs" not in listing and "evt_orphan" not in listing
    body = page(client.get(reverse("admin:payments_webhookevent_change", args=[ours.pk])))
    assert '"amount": 14.52' in unescape(body) and 'name="event_id"' not in body
    for other in (theirs, orphan):
        assert client.get(reverse("admin:payments_webhookevent_change",
                                  args=[other.pk])).status_code == 404


# --- who may act ------------------------------------------------------------------------------

def test_a_viewer_sees_but_cannot_act(client, net):
    shop = net["shop"]
    failed = collected(payment_for(shop, token="sim_decline_soft"))
    paid = collected(payment_for(shop, token="sim_ok"))
    method = failed.method
    case = DunningCase.objects.create(operator=shop.operator, invoice=failed.invoice,
                                      customer=failed.customer, opened_on=DUE_ON)
    before = (snapshot(failed), snapshot(paid))
    client.force_login(net["viewer"])
    body = page(client.get(reverse("admin:payments_payment_change", args=[failed.pk])))
    assert failed.invoice.number in body
    assert reverse("admin:payments_payment_retry", args=[failed.pk]) not in body
    assert "retry_selected" not in page(client.get(reverse(CHANGELIST)))
    forbidden = [
        ("post", reverse("admin:payments_payment_retry", args=[failed.pk]), {}),
        ("post", reverse("admin:payments_payment_mark_paid", args=[failed.pk]),
         {"reference": "x"}),
        ("get", reverse("admin:payments_payment_mark_paid", args=[failed.pk]), {}),
        ("post", reverse("admin:payments_payment_refund", args=[paid.pk]),
         {"amount": "1.00", "reason": "x"}),
        ("post", reverse("admin:payments_payment_cancel", args=[failed.pk]), {"reason": "x"}),
        ("post", f"{reverse('admin:payments_payment_cancel_many')}?ids={failed.pk}",
         {"reason": "x"}),
        ("post", reverse("admin:payments_paymentmethod_revoke", args=[method.pk]), {}),
        ("post", reverse("admin:payments_dunningcase_close", args=[case.pk]), {"reason": "x"}),
        ("get", reverse("admin:payments_paymentmethod_add"), {}),
        ("get", reverse("admin:payments_paymentplan_add"), {}),
        ("get", reverse("admin:payments_paymentsettings_add"), {}),
    ]
    for verb, url, data in forbidden:
        assert getattr(client, verb)(url, data).status_code == 403, url
    response = act(client, "retry_selected", [failed])  # not an action the viewer has
    assert response.status_code == 200
    assert (snapshot(failed), snapshot(paid)) == before
    method.refresh_from_db()
    case.refresh_from_db()
    assert method.status == "active" and case.is_open
    # a manager of the operator acts, as in invoicing
    client.force_login(net["manager"])
    assert reverse("admin:payments_payment_retry", args=[failed.pk]) in page(
        client.get(reverse("admin:payments_payment_change", args=[failed.pk])))


def test_another_operators_rows_answer_404_on_pages_and_actions(client, net):
    theirs, method, plan = net["theirs"], net["their_method"], net["their_plan"]
    case, settings = net["their_case"], net["their_settings"]
    before = snapshot(theirs)
    client.force_login(net["finance"])
    not_found = [
        ("get", reverse("admin:payments_payment_change", args=[theirs.pk]), {}),
        ("post", reverse("admin:payments_payment_retry", args=[theirs.pk]), {}),
        ("post", reverse("admin:payments_payment_mark_paid", args=[theirs.pk]),
         {"reference": "x"}),
        ("post", reverse("admin:payments_payment_refund", args=[theirs.pk]), {"reason": "x"}),
        ("post", reverse("admin:payments_payment_cancel", args=[theirs.pk]), {"reason": "x"}),
        ("post", f"{reverse('admin:payments_payment_mark_paid_many')}?ids={theirs.pk}",
         {"reference": "x"}),
        ("get", f"{reverse('admin:payments_payment_cancel_many')}?ids={theirs.pk}", {}),
        ("get", reverse("admin:payments_paymentmethod_change", args=[method.pk]), {}),
        ("post", reverse("admin:payments_paymentmethod_revoke", args=[method.pk]), {}),
        ("post", f"{reverse('admin:payments_paymentmethod_revoke_many')}?ids={method.pk}", {}),
        ("get", reverse("admin:payments_paymentplan_change", args=[plan.pk]), {}),
        ("get", reverse("admin:payments_paymentsettings_change", args=[settings.pk]), {}),
        ("get", reverse("admin:payments_dunningcase_change", args=[case.pk]), {}),
        ("post", reverse("admin:payments_dunningcase_close", args=[case.pk]), {"reason": "x"}),
        ("post", f"{reverse('admin:payments_dunningcase_close_many')}?ids={case.pk}",
         {"reason": "x"}),
    ]
    for verb, url, data in not_found:
        assert getattr(client, verb)(url, data).status_code == 404, url
    # selected in the list by id: not theirs to select
    for action in ("retry_selected", "mark_paid_selected", "refund_selected",
                   "cancel_selected"):
        response = act(client, action, [theirs])
        assert (response.status_code, response["Location"]) == (302, reverse(CHANGELIST))
    assert snapshot(theirs) == before
    method.refresh_from_db()
    case.refresh_from_db()
    assert method.status == "active" and case.is_open
    for model in ("payment", "paymentmethod", "paymentplan", "paymentsettings", "dunningcase"):
        body = page(client.get(reverse(f"admin:payments_{model}_changelist")))
        assert theirs.customer.name not in body, model
        assert net["other"].operator.name not in body, model
    assert Invoice.objects.get(pk=theirs.invoice_id).status == "issued"
