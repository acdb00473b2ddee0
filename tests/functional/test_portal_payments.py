"""The portal's payments and dunning pages (portal/pages/payments.py): the lists with their
filters and pagination (in a fixed number of queries), a payment with its attempts and history,
a dunning case with its stage and next action; another operator's rows answer 404; malformed and
hostile filters."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payments.models import DunningCase, Payment, PaymentSettings, TokenBlock
from payments.services import payment_create
from portal.pages.payments import next_action
from tests.factories import CustomerFactory

from .payments_helpers import alpha, bravo

pytestmark = pytest.mark.django_db

PAYMENTS = reverse("portal:payments")
DUNNING = reverse("portal:dunning")


@pytest.fixture
def a():
    return alpha()


@pytest.fixture
def b():
    return bravo()


@pytest.fixture
def manager(client, a, b):
    client.force_login(a.user("manager"))
    return client


def page(client, url, expect=200, **query) -> str:
    response = client.get(url, query)
    assert response.status_code == expect
    return response.content.decode()


# --- payments --------------------------------------------------------------------------------

def test_the_payments_list_shows_the_operators_payments_only(manager, a, b):
    html = page(manager, PAYMENTS)
    assert "bravo" not in html.lower()
    assert reverse("portal:payment", args=[a.payment.pk]) in html
    assert reverse("portal:payment", args=[a.transfer.pk]) in html
    assert a.invoice.number in html and a.overdue.number in html
    assert "Customer alpha" in html and "Visa alpha 4242" in html
    assert "EUR 9.68" in html and "EUR 4.84" in html
    assert "2 payments" in html
    assert 'href="/portal/payments/"' in html  # the menu entry


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ({"status": "succeeded"}, ["payment"], ["transfer"]),
    ({"status": "scheduled"}, ["transfer"], ["payment"]),
    ({"channel": "bank_transfer"}, ["transfer"], ["payment"]),
    ({"channel": "gateway"}, ["payment"], ["transfer"]),
    ({"purpose": "invoice"}, ["payment", "transfer"], []),
    ({"purpose": "top_up"}, [], ["payment", "transfer"]),
    ({"customer": "alpha-c1"}, ["payment", "transfer"], []),
    ({"customer": "tomer alp"}, ["payment", "transfer"], []),
    ({"customer": "bravo-C1"}, [], ["payment", "transfer"]),
    ({"invoice": "ALP-INV-2026-000002"}, ["payment"], ["transfer"]),
])
def test_the_payments_list_filters(manager, a, query, shown, hidden):
    html = page(manager, PAYMENTS, **query)
    for name in shown:
        assert reverse("portal:payment", args=[getattr(a, name).pk]) in html
    for name in hidden:
        assert reverse("portal:payment", args=[getattr(a, name).pk]) not in html


def test_another_operators_invoice_number_finds_nothing(manager, a, b):
    html = page(manager, PAYMENTS, invoice=b.invoice.number)
    assert "No payment matches." in html and "bravo" not in html.lower()


@pytest.mark.parametrize("query", [
    {"status": "lost"}, {"channel": "cash"}, {"purpose": "\x00"},
    {"customer": "alpha\x00"}, {"customer": "x" * 101}, {"invoice": "9" * 41},
])
def test_a_bad_payments_filter_says_so_and_lists_nothing(manager, a, query):
    html = page(manager, PAYMENTS, **query)
    assert 'class="errors"' in html
    assert "No payment matches." in html
    assert reverse("portal:payment", args=[a.payment.pk]) not in html


def test_the_payments_list_is_paginated_and_read_in_a_fixed_number_of_queries(manager, a):
    page(manager, PAYMENTS)
    with CaptureQueriesContext(connection) as few:
        page(manager, PAYMENTS)
    customers = [CustomerFactory(operator=a.operator, name=f"Alpha buyer {n}") for n in range(8)]
    for n in range(55):
        payment_create(customer=customers[n % 8], purpose=Payment.Purpose.INVOICE,
                       amount=a.invoice.amount_due, currency="EUR", due_on=date(2026, 12, 1),
                       channel=Payment.Channel.BANK_TRANSFER)
    with CaptureQueriesContext(connection) as many:
        html = page(manager, PAYMENTS)
    assert len(many.captured_queries) == len(few.captured_queries)
    assert "57 payments" in html and "Page 1 of 2" in html
    assert html.count('href="/portal/payments/') - html.count('href="/portal/payments/"') == 50
    second = page(manager, PAYMENTS, page=2)
    assert reverse("portal:payment", args=[a.payment.pk]) in second
    # a page that is no page shows the last (or the first)
    assert "Page 2 of 2" in page(manager, PAYMENTS, page="999999999999999999999")
    assert "Page 1 of 2" in page(manager, PAYMENTS, page="abc")


def test_a_payment_shows_its_attempts_and_history(manager, a):
    html = page(manager, reverse("portal:payment", args=[a.payment.pk]))
    attempt = a.payment.attempts.get()
    assert attempt.provider_reference in html
    assert "Attempts at the provider" in html and "EUR 9.68" in html
    for event in a.payment.events.all():
        assert event.kind in html
    assert reverse("admin:payments_payment_change", args=[a.payment.pk]) in html
    assert reverse("portal:invoice", args=[a.invoice.pk]) in html
    assert "bravo" not in html.lower()


def test_another_operators_payment_answers_404(manager, a, b):
    for payment in (b.payment, b.transfer):
        page(manager, reverse("portal:payment", args=[payment.pk]), expect=404)
    for pk in ("0", "99999999999999999999999", "9223372036854775808"):
        page(manager, f"{PAYMENTS}{pk}/", expect=404)
    page(manager, f"{PAYMENTS}abc/", expect=404)
    page(manager, f"{PAYMENTS}-1/", expect=404)


def test_a_viewer_reads_and_a_stranger_does_not(client, a, b):
    client.force_login(a.user("viewer"))
    assert page(client, reverse("portal:payment", args=[a.payment.pk]))
    assert page(client, reverse("portal:dunning_case", args=[a.dunning_case.pk]))
    client.logout()
    response = client.get(PAYMENTS)
    assert response.status_code == 302 and response.url.startswith(reverse("portal:login"))


def test_the_pages_answer_only_get(manager, a):
    for url in (PAYMENTS, DUNNING, reverse("portal:payment", args=[a.payment.pk]),
                reverse("portal:dunning_case", args=[a.dunning_case.pk])):
        response = manager.post(url, {"status": "cancelled"})
        assert response.status_code == 405
    a.payment.refresh_from_db()
    assert a.payment.status == Payment.Status.SUCCEEDED


# --- dunning ---------------------------------------------------------------------------------

def test_the_dunning_list_shows_stage_and_next_action(manager, a, b):
    html = page(manager, DUNNING)
    assert "bravo" not in html.lower()
    assert reverse("portal:dunning_case", args=[a.dunning_case.pk]) in html
    assert a.overdue.number in html
    assert "Friendly reminder, 1 of 3" in html
    # the next level, "firm", 10 days after the case opened on 2026-10-20
    assert "Firm reminder" in html and "from 2026-10-30" in html
    assert "EUR 4.84" in html and "1 case" in html


def test_the_dunning_list_shows_open_cases_unless_asked(manager, a):
    DunningCase.objects.filter(pk=a.dunning_case.pk).update(
        closed_at=datetime(2026, 11, 1, tzinfo=UTC), close_reason="paid")
    case_url = reverse("portal:dunning_case", args=[a.dunning_case.pk])
    assert case_url not in page(manager, DUNNING)
    assert case_url in page(manager, DUNNING, state="closed")
    assert case_url in page(manager, DUNNING, state="all")
    assert case_url not in page(manager, DUNNING, state="all", customer="nobody")
    assert case_url in page(manager, DUNNING, state="all", customer="ALPHA-C1")


@pytest.mark.parametrize("query", [{"state": "deleted"}, {"customer": "a\x00"},
                                   {"customer": "x" * 101}, {"state": "o" * 10000}])
def test_a_bad_dunning_filter_says_so(manager, a, query):
    html = page(manager, DUNNING, **query)
    assert 'class="errors"' in html and "No dunning case matches." in html


def test_the_dunning_list_is_read_in_a_fixed_number_of_queries(manager, a):
    page(manager, DUNNING)
    with CaptureQueriesContext(connection) as few:
        page(manager, DUNNING)
    for n in range(5):
        customer = CustomerFactory(operator=a.operator, name=f"Alpha late {n}")
        invoice = a.overdue
        invoice.pk = None
        invoice.customer = customer
        invoice.number = f"ALP-LATE-{n}"
        invoice.pdf = ""
        invoice.save()
        DunningCase.objects.create(operator=a.operator, invoice=invoice, customer=customer,
                                   opened_on=date(2026, 10, 25), level=2, level_name="firm",
                                   tokens_blocked_at=datetime(2026, 11, 20, tzinfo=UTC))
    with CaptureQueriesContext(connection) as many:
        html = page(manager, DUNNING)
    assert "6 cases" in html and "Firm reminder, 2 of 3" in html
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_dunning_case_shows_the_invoice_payments_tokens_and_history(manager, a):
    token = a.shop.token
    TokenBlock.objects.create(case=a.dunning_case, token=token,
                              blocked_at=datetime(2026, 11, 10, tzinfo=UTC))
    html = page(manager, reverse("portal:dunning_case", args=[a.dunning_case.pk]))
    assert a.overdue.number in html and "Customer alpha" in html
    assert reverse("portal:invoice", args=[a.overdue.pk]) in html
    assert "Firm reminder" in html and "from 2026-10-30" in html
    assert (token.visual_number or token.uid) in html and "still blocked" in html
    assert reverse("portal:payment", args=[a.transfer.pk]) in html
    assert reverse("admin:payments_dunningcase_change", args=[a.dunning_case.pk]) in html
    assert "bravo" not in html.lower()


def test_another_operators_dunning_case_answers_404(manager, b):
    page(manager, reverse("portal:dunning_case", args=[b.dunning_case.pk]), expect=404)
    page(manager, f"{DUNNING}99999999999999999999999/", expect=404)
    page(manager, f"{DUNNING}x/", expect=404)


# --- the next action -------------------------------------------------------------------------

def _case(**fields):
    defaults = {"opened_on": date(2026, 10, 20), "level": 0, "level_name": ""}
    return DunningCase(**{**defaults, **fields})


def test_the_next_action_follows_the_operators_levels_then_blocks_tokens():
    config = PaymentSettings(block_tokens=True, block_after_days=7)
    assert next_action(_case(), config) == ("Friendly reminder", date(2026, 10, 20))
    assert next_action(_case(level=2, level_name="firm"), config) == (
        "Final reminder", date(2026, 11, 9))
    last = datetime(2026, 11, 9, 9, tzinfo=UTC)
    assert next_action(_case(level=3, level_name="final", last_reminder_at=last), config) == (
        "Block the customer's tokens", date(2026, 11, 16))
    blocked = _case(level=3, last_reminder_at=last, tokens_blocked_at=last + timedelta(days=7))
    assert next_action(blocked, config)[1] is None
    config.block_tokens = False
    assert next_action(_case(level=3, last_reminder_at=last), config)[1] is None
    closed = _case(closed_at=last)
    assert next_action(closed, config) == ("Nothing: the case is closed.", None)
    custom = PaymentSettings(dunning_levels=[{"name": "nudge", "days": 3}])
    assert next_action(_case(), custom) == ("Reminder “nudge”", date(2026, 10, 23))
