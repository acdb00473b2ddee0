"""Payments: how customers pay (methods and plans), what is collected (payments and the attempts
made at a provider), retries and dunning, terminal and ad-hoc authorizations, SEPA files and
bank statements (docs/payments.md).

Every call to a provider is an ``PaymentAttempt`` written *before* the call (``pending``, with
its idempotency key) and updated after it; a crash or a timeout leaves it ``unknown``, and the
janitor asks the provider what became of it (never charging again).
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import CurrencyField

from emobility.db import ExactJSONDecoder, ExactJSONEncoder
from emobility.models import (
    ChargingSession,
    Customer,
    Evse,
    Location,
    Operator,
    TimeStampedModel,
    Token,
)
from invoicing.models import Invoice
from promotions.models import TopUp

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal(0)
DUNNING_NAMES = ("friendly", "firm", "final")


def default_retry_days() -> list[int]:
    return [3, 7, 14]


def default_dunning_levels() -> list[dict]:
    """Reminder levels; ``days``: days after dunning started (the invoice overdue and automatic
    collection given up) before this reminder goes out."""
    return [{"name": "friendly", "days": 0},
            {"name": "firm", "days": 10},
            {"name": "final", "days": 20}]


class PaymentSettings(TimeStampedModel):
    """An operator's payment choices: the gateway, the retry schedule, dunning and SEPA."""

    operator = models.OneToOneField(Operator, on_delete=models.CASCADE,
                                    related_name="payment_settings")
    gateway = models.CharField(max_length=20, default="simulated", help_text=_(
        "The provider that card, app and terminal payments go through."))
    retry_days = models.JSONField(default=default_retry_days, help_text=_(
        "Days after the first failure on which a failed collection is tried again."))
    dunning_levels = models.JSONField(default=default_dunning_levels, help_text=_(
        "Reminder levels in order: name (friendly, firm, final) and days after dunning "
        "started."))
    late_fee = models.DecimalField(**MONEY, default=ZERO, help_text=_(
        "Charged (excl. VAT) with the final reminder; 0: no late fee."))
    late_fee_vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal(21))
    block_tokens = models.BooleanField(default=True, help_text=_(
        "Block the customer's tokens after the last reminder; a payment unblocks them."))
    block_after_days = models.PositiveSmallIntegerField(default=7, help_text=_(
        "Days after the last reminder before the tokens are blocked."))
    sepa_creditor_id = models.CharField(_("SEPA creditor identifier"), max_length=35,
                                        blank=True)
    sepa_creditor_name = models.CharField(max_length=70, blank=True)
    sepa_iban = models.CharField(_("collection account IBAN"), max_length=34, blank=True)
    sepa_bic = models.CharField(_("collection account BIC"), max_length=11, blank=True)
    ad_hoc_max_amount = models.DecimalField(**MONEY, default=Decimal("50.00"), help_text=_(
        "The most a terminal or app pre-authorizes for one session."))

    class Meta:
        verbose_name = verbose_name_plural = _("payment settings")

    def __str__(self) -> str:
        return f"{self.operator} payments"

    def clean(self) -> None:
        days = self.retry_days
        if (not isinstance(days, list) or not all(isinstance(d, int) and 0 < d <= 365
                                                  for d in days)
                or days != sorted(set(days))):
            raise ValidationError({"retry_days": _(
                "A list of increasing whole days between 1 and 365, e.g. [3, 7, 14].")})
        levels = self.dunning_levels
        if (not isinstance(levels, list) or not levels or not all(
                isinstance(level, dict) and isinstance(level.get("days"), int)
                and 0 <= level["days"] <= 365 and level.get("name") in DUNNING_NAMES
                for level in levels)
                or [level["days"] for level in levels] != sorted(level["days"]
                                                                 for level in levels)):
            raise ValidationError({"dunning_levels": _(
                'A list of levels in order, such as [{"name": "friendly", "days": 0}, '
                '{"name": "firm", "days": 10}, {"name": "final", "days": 20}]; names: '
                'friendly, firm, final.')})


class PaymentMethod(TimeStampedModel):
    """How a customer can pay: a card or wallet-app token held by a provider, a SEPA direct
    debit mandate, bank transfer, prepaid credit or a terminal (ad hoc)."""

    class Kind(models.TextChoices):
        CARD = "card", _("Card")
        WALLET_APP = "wallet_app", _("Wallet app (Apple Pay, Google Pay, ...)")
        SEPA_DD = "sepa_dd", _("SEPA direct debit")
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        PREPAID = "prepaid", _("Prepaid credit")
        TERMINAL = "terminal", _("Payment terminal (ad hoc)")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")

    class Sequence(models.TextChoices):
        FIRST = "FRST", _("First collection")
        RECURRING = "RCUR", _("Recurring")

    # kinds that a provider charges through a stored token
    TOKEN_KINDS = (Kind.CARD, Kind.WALLET_APP)

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT,
                                 related_name="payment_methods")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    is_default = models.BooleanField(default=False)
    label = models.CharField(max_length=100, blank=True, help_text=_("e.g. Visa •••• 4242"))
    gateway = models.CharField(max_length=20, blank=True)
    provider_token = models.CharField(max_length=255, blank=True, help_text=_(
        "The provider's reference of the card or app (never the card number)."))
    iban = models.CharField("IBAN", max_length=34, blank=True)
    bic = models.CharField("BIC", max_length=11, blank=True)
    account_holder = models.CharField(max_length=70, blank=True)
    mandate_reference = models.CharField(max_length=35, blank=True)
    mandate_signed_on = models.DateField(null=True, blank=True)
    sequence = models.CharField(max_length=4, choices=Sequence.choices, default=Sequence.FIRST,
                                blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["customer", "-is_default", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(is_default=True),
                                    name="paymentmethod_one_default"),
            models.UniqueConstraint(fields=["operator", "mandate_reference"],
                                    condition=~Q(mandate_reference=""),
                                    name="paymentmethod_unique_mandate"),
            models.CheckConstraint(
                condition=~Q(kind="sepa_dd") | (~Q(iban="") & ~Q(mandate_reference="")
                                                & Q(mandate_signed_on__isnull=False)),
                name="paymentmethod_mandate_complete"),
            models.CheckConstraint(
                condition=~Q(kind__in=["card", "wallet_app"]) | ~Q(provider_token=""),
                name="paymentmethod_token_present"),
        ]

    def __str__(self) -> str:
        return self.label or f"{self.get_kind_display()} #{self.pk}"

    def clean(self) -> None:
        from .validation import validate_method  # schwifty lives there

        if self.customer_id and self.customer.operator_id != self.operator_id:
            raise ValidationError({"customer": _("The customer belongs to another operator.")})
        validate_method(self)


class PaymentPlan(TimeStampedModel):
    """How a customer pays what they owe (one plan per customer; none: bank transfer)."""

    class Kind(models.TextChoices):
        PER_SESSION = "per_session", _("Per session (card charged when the session is rated)")
        MONTHLY_AUTO = "monthly_auto", _("Monthly invoice, collected on the due date")
        BANK_TRANSFER = "bank_transfer", _("Monthly invoice, paid by bank transfer")
        INSTALMENTS = "instalments", _("Monthly invoice in instalments")
        PREPAID = "prepaid", _("Prepaid credit only")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    customer = models.OneToOneField(Customer, on_delete=models.PROTECT,
                                    related_name="payment_plan")
    kind = models.CharField(max_length=14, choices=Kind.choices, default=Kind.BANK_TRANSFER)
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+", help_text=_("Empty: the default method."))
    instalments = models.PositiveSmallIntegerField(default=1, help_text=_(
        "Monthly parts an invoice is split into (instalment plans)."))

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(instalments__gte=1, instalments__lte=24),
                                   name="paymentplan_instalments_range"),
            models.CheckConstraint(condition=~Q(kind="instalments") | Q(instalments__gte=2),
                                   name="paymentplan_instalments_at_least_two"),
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.get_kind_display()}"

    def clean(self) -> None:
        if self.customer_id and self.customer.operator_id != self.operator_id:
            raise ValidationError({"customer": _("The customer belongs to another operator.")})
        if self.method_id and self.method.customer_id != self.customer_id:
            raise ValidationError({"method": _("This method belongs to another customer.")})


class Payment(TimeStampedModel):
    """Money to collect from (or refund to) a customer: an invoice or one instalment of it, a
    session paid per session or ad hoc, a wallet top-up or a late fee."""

    class Purpose(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        INSTALMENT = "instalment", _("Instalment")
        SESSION = "session", _("Charging session")
        AD_HOC = "ad_hoc", _("Ad hoc (terminal or app)")
        TOP_UP = "top_up", _("Wallet top-up")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        PROCESSING = "processing", _("Processing")
        AUTHORIZED = "authorized", _("Authorized")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN = (Status.SCHEDULED, Status.PROCESSING, Status.AUTHORIZED, Status.FAILED)

    class Channel(models.TextChoices):
        GATEWAY = "gateway", _("Provider (card, app)")
        DIRECT_DEBIT = "direct_debit", _("SEPA direct debit")
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        WALLET = "wallet", _("Prepaid credit")
        TERMINAL = "terminal", _("Terminal / ad hoc")
        MANUAL = "manual", _("Marked paid by hand")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments",
                                 null=True, blank=True, help_text=_("Empty for ad hoc drivers."))
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    channel = models.CharField(max_length=14, choices=Channel.choices)
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="payments")
    gateway = models.CharField(max_length=20, blank=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="payments")
    instalment = models.PositiveSmallIntegerField(default=1, help_text=_(
        "Which part of the invoice this is (1 of 1 when it is paid at once)."))
    instalments = models.PositiveSmallIntegerField(default=1)
    session = models.ForeignKey(ChargingSession, on_delete=models.PROTECT, null=True,
                                blank=True, related_name="payments")
    top_up = models.OneToOneField(TopUp, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="payment")
    currency = CurrencyField()
    amount = models.DecimalField(**MONEY)
    amount_refunded = models.DecimalField(**MONEY, default=ZERO)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    due_on = models.DateField(help_text=_("Collected on or after this date."))
    reference = models.CharField(max_length=35, blank=True, help_text=_(
        "Structured reference (ISO 11649) a bank transfer must carry."))
    provider_reference = models.CharField(max_length=255, blank=True)
    retry_count = models.PositiveSmallIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    hard_decline = models.BooleanField(default=False)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_reference = models.CharField(max_length=100, blank=True, help_text=_(
        "The bank's or finance's reference when marked paid by hand."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount")),
                name="payment_refund_within_amount"),
            # one open collection per invoice part (received part payments are closed rows)
            models.UniqueConstraint(
                fields=["invoice", "instalment"],
                condition=Q(purpose__in=["invoice", "instalment"],
                            status__in=["scheduled", "processing", "authorized", "failed"]),
                name="payment_one_open_per_invoice_part"),
            models.UniqueConstraint(fields=["session"],
                                    condition=Q(purpose__in=["session", "ad_hoc"])
                                    & ~Q(status="cancelled"),
                                    name="payment_one_per_session"),
            models.UniqueConstraint(fields=["operator", "reference"],
                                    condition=~Q(reference=""),
                                    name="payment_unique_reference"),
        ]
        indexes = [
            models.Index(fields=["status", "due_on"]),
            models.Index(fields=["status", "next_retry_at"]),
            models.Index(fields=["operator", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.amount} {self.get_purpose_display().lower()} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class PaymentAttempt(models.Model):
    """One call to a provider (or the wallet), recorded before it is made and updated after.
    ``unknown``: the call was made and no answer came back (timeout, crash): the janitor asks the
    provider with the same idempotency key."""

    class Operation(models.TextChoices):
        CHARGE = "charge", _("Charge")
        AUTHORIZE = "authorize", _("Authorize")
        CAPTURE = "capture", _("Capture")
        RELEASE = "release", _("Release (cancel authorization)")
        REFUND = "refund", _("Refund")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Unknown (no answer)")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="attempts")
    operation = models.CharField(max_length=10, choices=Operation.choices)
    gateway = models.CharField(max_length=20)
    idempotency_key = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    provider_reference = models.CharField(max_length=255, blank=True)
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    hard_decline = models.BooleanField(default=False)
    raw_response = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder,
                                    decoder=ExactJSONDecoder)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=20, blank=True, help_text=_(
        "How an unknown outcome was settled: webhook, janitor."))
    booked = models.BooleanField(default=False, help_text=_(
        "A succeeded refund whose amount is booked on the payment and its invoice."))

    class Meta:
        ordering = ["payment", "started_at", "pk"]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} {self.amount} ({self.get_status_display()})"


class PaymentEvent(models.Model):
    """The history of a payment and of the invoice it collects: what happened, when and by whom
    (created, attempted, failed, retry scheduled, reminder sent, late fee, tokens blocked, paid,
    refunded, ...)."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="events")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="payment_events")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="+")
    kind = models.CharField(max_length=30)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder,
                            decoder=ExactJSONDecoder)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["invoice", "at"]), models.Index(fields=["payment", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.message}"


class WebhookEvent(models.Model):
    """A provider's notification as received. Each event id is applied once; a duplicate is
    recorded as such and changes nothing."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", _("Applied")
        DUPLICATE = "duplicate", _("Duplicate")
        IGNORED = "ignored", _("Ignored (nothing to change)")
        UNKNOWN_PAYMENT = "unknown_payment", _("No such payment")

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    provider_reference = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict, encoder=ExactJSONEncoder, decoder=ExactJSONDecoder)
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    payment = models.ForeignKey(Payment, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="webhooks")

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"],
                                               name="webhookevent_once")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.type} {self.event_id}"


class SimulatedCharge(models.Model):
    """The simulated provider's own books (what it would hold on its side): one row per
    idempotency key, so the same request twice is one charge, as at a real provider."""

    idempotency_key = models.CharField(max_length=100, unique=True)
    reference = models.CharField(max_length=40, unique=True)
    operation = models.CharField(max_length=10)
    token = models.CharField(max_length=255, blank=True)
    parent = models.CharField(max_length=40, blank=True, help_text=_(
        "The authorization or charge a capture, release or refund is about."))
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12)
    failure_code = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.reference} {self.operation} {self.amount} {self.status}"


class DunningCase(TimeStampedModel):
    """An unpaid invoice being chased: the reminder level reached, when the next step is due,
    and the tokens blocked because of it. Closed when the invoice is paid (or voided)."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT,
                                   related_name="dunning_case")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    opened_on = models.DateField(help_text=_("The day dunning started; levels count from it."))
    level = models.PositiveSmallIntegerField(default=0)
    level_name = models.CharField(max_length=20, blank=True)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    late_fee_invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True,
                                         blank=True, related_name="+")
    tokens_blocked_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["operator", "closed_at"])]

    def __str__(self) -> str:
        return f"{self.invoice} level {self.level}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class TokenBlock(models.Model):
    """A token blocked by dunning (so that paying unblocks exactly the tokens dunning blocked,
    and none that were blocked for another reason)."""

    case = models.ForeignKey(DunningCase, on_delete=models.PROTECT, related_name="blocks")
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="+")
    blocked_at = models.DateTimeField()
    unblocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "token"],
                                               name="tokenblock_once_per_case")]

    def __str__(self) -> str:
        return f"{self.token} blocked by {self.case}"


class Terminal(TimeStampedModel):
    """A payment terminal at a location (optionally one EVSE), integrated cloud-to-cloud (the
    provider reports its authorizations) or hardware-to-hardware (the station reports them over
    OCPP and its software passes them on)."""

    class Integration(models.TextChoices):
        CLOUD = "cloud", _("Cloud-to-cloud (payment provider)")
        HARDWARE = "hardware", _("Hardware-to-hardware (OCPP)")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="terminals")
    evse = models.ForeignKey(Evse, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="terminals", help_text=_(
                                 "Empty: the terminal serves the whole location."))
    serial = models.CharField(max_length=64, help_text=_("The terminal's id at its provider."))
    integration = models.CharField(max_length=10, choices=Integration.choices,
                                   default=Integration.CLOUD)
    gateway = models.CharField(max_length=20, default="simulated")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["location", "serial"]
        constraints = [models.UniqueConstraint(fields=["operator", "serial"],
                                               name="terminal_unique_serial")]

    def __str__(self) -> str:
        return self.serial

    def clean(self) -> None:
        errors = {}
        if self.location_id and self.location.operator_id != self.operator_id:
            errors["location"] = _("The location belongs to another operator.")
        if self.evse_id and self.evse.station.location_id != self.location_id:
            errors["evse"] = _("The EVSE is not at this location.")
        if errors:
            raise ValidationError(errors)


class Authorization(TimeStampedModel):
    """A pre-authorization of at most ``max_amount`` for one session (a terminal tap or the app's
    "tap, pay and go"), matched to the session's CDR, then captured at the rated price (never more
    than authorized) with the rest released; its receipt is public at ``receipt_token``."""

    class Channel(models.TextChoices):
        TERMINAL_CLOUD = "terminal_cloud", _("Terminal, cloud-to-cloud")
        TERMINAL_HARDWARE = "terminal_hardware", _("Terminal, hardware-to-hardware (OCPP)")
        APP = "app", _("Mobile app")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the driver to pay")
        AUTHORIZED = "authorized", _("Authorized")
        CAPTURED = "captured", _("Captured")
        RELEASED = "released", _("Released (nothing charged)")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired (no session)")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT,
                                   related_name="authorization")
    channel = models.CharField(max_length=18, choices=Channel.choices)
    terminal = models.ForeignKey(Terminal, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="authorizations")
    evse = models.ForeignKey(Evse, on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+")
    authorization_reference = models.CharField(max_length=36)
    currency = CurrencyField()
    max_amount = models.DecimalField(**MONEY)
    captured_amount = models.DecimalField(**MONEY, default=ZERO)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    authorized_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    session = models.OneToOneField(ChargingSession, on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="authorization")
    matched_by = models.CharField(max_length=20, blank=True, help_text=_(
        "reference, or evse_time_window"))
    card_label = models.CharField(max_length=60, blank=True)
    receipt_token = models.CharField(max_length=43, unique=True)
    raw = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder,
                           decoder=ExactJSONDecoder)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "authorization_reference"],
                                    name="authorization_unique_reference"),
            models.CheckConstraint(condition=Q(max_amount__gt=0),
                                   name="authorization_max_positive"),
            models.CheckConstraint(
                condition=Q(captured_amount__gte=0, captured_amount__lte=F("max_amount")),
                name="authorization_capture_within_max"),
        ]
        indexes = [models.Index(fields=["evse", "status", "authorized_at"])]

    def __str__(self) -> str:
        return f"{self.authorization_reference} ({self.get_status_display()})"


class SepaBatch(TimeStampedModel):
    """A SEPA file: direct debits to collect (pain.008) or reimbursement payouts (pain.001)."""

    class Kind(models.TextChoices):
        DIRECT_DEBIT = "direct_debit", _("Direct debit (pain.008)")
        CREDIT_TRANSFER = "credit_transfer", _("Payouts (pain.001)")

    class Status(models.TextChoices):
        CREATED = "created", _("File created")
        SUBMITTED = "submitted", _("Submitted to the bank")
        SETTLED = "settled", _("Settled")
        CANCELLED = "cancelled", _("Cancelled")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    message_id = models.CharField(max_length=35, unique=True)
    execution_date = models.DateField(help_text=_("Collection or payment date asked of the bank."))
    currency = CurrencyField(default="EUR")
    count = models.PositiveIntegerField(default=0)
    total = models.DecimalField(**MONEY, default=ZERO)
    file = models.FileField(upload_to="sepa/%Y/%m/", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("SEPA batch")
        verbose_name_plural = _("SEPA batches")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.get_kind_display()})"


class SepaBatchItem(models.Model):
    """One transaction of a SEPA file: a payment collected by direct debit, or a reimbursement
    statement paid out. A payment or statement is in at most one live batch."""

    batch = models.ForeignKey(SepaBatch, on_delete=models.CASCADE, related_name="items")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="sepa_items")
    statement = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="sepa_items")
    end_to_end_id = models.CharField(max_length=35)
    name = models.CharField(max_length=70)
    iban = models.CharField(max_length=34)
    bic = models.CharField(max_length=11, blank=True)
    amount = models.DecimalField(**MONEY)
    mandate_reference = models.CharField(max_length=35, blank=True)
    mandate_signed_on = models.DateField(null=True, blank=True)
    sequence = models.CharField(max_length=4, blank=True)
    remittance = models.CharField(max_length=140, blank=True)

    class Meta:
        ordering = ["batch", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="sepaitem_amount_positive"),
            models.CheckConstraint(
                condition=Q(payment__isnull=False, statement__isnull=True)
                | Q(payment__isnull=True, statement__isnull=False),
                name="sepaitem_payment_or_statement"),
        ]

    def __str__(self) -> str:
        return f"{self.end_to_end_id} {self.amount}"


class BankStatement(TimeStampedModel):
    """An imported bank statement (CSV or camt.053) whose credits are matched to transfers."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        CAMT053 = "camt053", "camt.053"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to="bank-statements/%Y/%m/")
    file_name = models.CharField(max_length=255)
    format = models.CharField(max_length=8, choices=Format.choices)
    transactions = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.file_name


class BankTransaction(models.Model):
    """One credit on a bank statement and what it was matched to."""

    class Status(models.TextChoices):
        MATCHED = "matched", _("Matched (paid in full)")
        PARTIAL = "partial", _("Matched (partial payment)")
        OVERPAID = "overpaid", _("Matched (more than due)")
        UNMATCHED = "unmatched", _("Unmatched")
        RESOLVED = "resolved", _("Resolved by hand")
        IGNORED = "ignored", _("Ignored")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    statement = models.ForeignKey(BankStatement, on_delete=models.CASCADE,
                                  related_name="lines")
    fingerprint = models.CharField(max_length=64, help_text=_(
        "The bank's entry reference, or a digest of the line: the same line twice is a "
        "duplicate."))
    booking_date = models.DateField()
    amount = models.DecimalField(**MONEY)
    currency = CurrencyField()
    counterparty = models.CharField(max_length=140, blank=True)
    counterparty_iban = models.CharField(max_length=34, blank=True)
    remittance = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNMATCHED)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="bank_transactions")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="bank_transactions")
    excess = models.DecimalField(**MONEY, default=ZERO, help_text=_(
        "What was paid beyond what was due (to refund or keep as credit)."))
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["statement", "booking_date", "pk"]
        constraints = [models.UniqueConstraint(fields=["operator", "fingerprint"],
                                               name="banktransaction_once")]
        indexes = [models.Index(fields=["operator", "status"])]

    def __str__(self) -> str:
        return f"{self.booking_date} {self.currency} {self.amount} {self.counterparty}"
