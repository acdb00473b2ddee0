"""Invoicing: number series, invoices, credit notes and reimbursement statements, their lines,
invoice runs and reimbursement agreements (docs/invoicing.md).

A document is a ``draft`` until it is issued; issuing gives it its number (from its series,
under a row lock, in the issuing transaction: unique and gapless), snapshots of the seller and
the buyer, and makes it immutable: a correction is a credit note that references it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import CurrencyField

from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Operator,
    TimeStampedModel,
    validate_time_zone,
)

MONEY = {"max_digits": 14, "decimal_places": 2}


class InvoicingSettings(TimeStampedModel):
    """An operator's invoicing choices."""

    operator = models.OneToOneField(Operator, on_delete=models.CASCADE,
                                    related_name="invoicing_settings")
    auto_issue = models.BooleanField(
        default=False, help_text=_("The monthly run issues and e-mails the invoices it makes."))
    skip_zero = models.BooleanField(default=True, help_text=_(
        "Make no invoice when nothing is due and nothing was charged."))
    payment_terms_days = models.PositiveSmallIntegerField(default=14)
    time_zone = models.CharField(max_length=64, default="Europe/Amsterdam",
                                 validators=[validate_time_zone],
                                 help_text=_("Periods are calendar months in this zone."))
    iban = models.CharField(_("IBAN for transfers"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = _("invoicing settings")

    def __str__(self) -> str:
        return f"{self.operator} invoicing"


class NumberSeries(models.Model):
    """Where the numbers of one kind of document of an operator come from. The format takes
    ``{prefix}``, ``{year}`` and ``{seq}`` (e.g. ``{seq:06}``); the sequence restarts each year
    when the format has ``{year}``."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")
        STATEMENT = "statement", _("Reimbursement statement")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    prefix = models.CharField(max_length=20)
    format = models.CharField(max_length=60, default="{prefix}{year}-{seq:06}")

    class Meta:
        verbose_name_plural = _("number series")
        constraints = [models.UniqueConstraint(fields=["operator", "kind"],
                                               name="numberseries_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.operator} {self.get_kind_display()} ({self.prefix})"


class SeriesCounter(models.Model):
    """The last number given by a series in a year (locked while a document is issued)."""

    series = models.ForeignKey(NumberSeries, on_delete=models.CASCADE, related_name="counters")
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"],
                                               name="seriescounter_one_per_year")]

    def __str__(self) -> str:
        return f"{self.series} {self.year}: {self.last}"


class InvoiceRun(TimeStampedModel):
    """A monthly run of an operator: drafts (and, with auto-issue, issued and sent documents)
    for every customer with something to invoice in the period."""

    class Kind(models.TextChoices):
        INVOICES = "invoices", _("Invoices")
        STATEMENTS = "statements", _("Reimbursement statements")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICES)
    period_start = models.DateField()
    period_end = models.DateField(help_text=_("Inclusive."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    auto_issue = models.BooleanField(default=False)
    customers_total = models.PositiveIntegerField(default=0)
    customers_done = models.PositiveIntegerField(default=0)
    drafts = models.PositiveIntegerField(default=0)
    issued = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-period_start", "-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period_start:%Y-%m} ({self.operator})"

    @property
    def progress(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.customers_total:
            return 0
        return min(99, self.customers_done * 100 // self.customers_total)


class ReimbursementAgreement(TimeStampedModel):
    """A home or office charger whose owner is paid back for the electricity, by an employer.

    The owner gets a self-billing statement: kWh × ``rate_per_kwh`` minus the operator's fee
    (``fee_per_session`` per session and ``fee_per_kwh`` per kWh); the employer is invoiced for
    the same sessions."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+",
                              help_text=_("The charger's owner, paid back."))
    employer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+",
                                 help_text=_("Who pays for the sessions."))
    stations = models.ManyToManyField(ChargingStation, related_name="+")
    rate_per_kwh = models.DecimalField(max_digits=9, decimal_places=4,
                                       validators=[MinValueValidator(Decimal(0))])
    fee_per_session = models.DecimalField(max_digits=9, decimal_places=2, default=Decimal(0),
                                          validators=[MinValueValidator(Decimal(0))])
    fee_per_kwh = models.DecimalField(max_digits=9, decimal_places=4, default=Decimal(0),
                                      validators=[MinValueValidator(Decimal(0))])
    currency = CurrencyField(default="EUR")
    payout_iban = models.CharField(max_length=34, blank=True)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=Q(rate_per_kwh__gte=0, fee_per_session__gte=0, fee_per_kwh__gte=0),
            name="agreement_amounts_not_negative")]

    def __str__(self) -> str:
        return f"{self.owner} ← {self.employer} at {self.rate_per_kwh}/kWh"


class Invoice(TimeStampedModel):
    """An invoice, a credit note or a reimbursement statement."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")
        STATEMENT = "statement", _("Reimbursement statement")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ISSUED = "issued", _("Issued")
        PARTIALLY_PAID = "partially_paid", _("Partially paid")
        PAID = "paid", _("Paid")
        OVERDUE = "overdue", _("Overdue")
        VOID = "void", _("Void (credited)")

    class Origin(models.TextChoices):
        RUN = "run", _("Monthly run")
        MANUAL = "manual", _("By hand")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.RUN)
    series = models.ForeignKey(NumberSeries, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    period_start = models.DateField()
    period_end = models.DateField()
    currency = CurrencyField()
    language = models.CharField(max_length=8, default="en")
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    seller = models.JSONField(default=dict, blank=True, help_text=_("As it was when issued."))
    buyer = models.JSONField(default=dict, blank=True, help_text=_("As it was when issued."))
    reverse_charge = models.BooleanField(default=False)
    net_total = models.DecimalField(**MONEY, default=Decimal(0))
    vat_total = models.DecimalField(**MONEY, default=Decimal(0))
    gross_total = models.DecimalField(**MONEY, default=Decimal(0))
    credit_applied = models.DecimalField(**MONEY, default=Decimal(0))
    amount_due = models.DecimalField(**MONEY, default=Decimal(0))
    amount_paid = models.DecimalField(**MONEY, default=Decimal(0))
    original = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="credit_notes")
    run = models.ForeignKey(InvoiceRun, on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="invoices")
    agreement = models.ForeignKey(ReimbursementAgreement, on_delete=models.PROTECT, null=True,
                                  blank=True, related_name="documents")
    pdf = models.FileField(upload_to="invoices/%Y/%m/", blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "number"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "number"], condition=~Q(number=""),
                                    name="invoice_unique_number"),
            models.UniqueConstraint(
                fields=["customer", "series", "period_start", "period_end"],
                condition=Q(origin="run", agreement__isnull=True) & ~Q(kind="credit_note"),
                name="invoice_one_per_customer_period_series"),
            models.UniqueConstraint(
                fields=["agreement", "kind", "period_start", "period_end"],
                condition=Q(origin="run", agreement__isnull=False),
                name="invoice_one_per_agreement_period_kind"),
            models.CheckConstraint(condition=Q(status="draft") | ~Q(number=""),
                                   name="invoice_issued_has_number"),
            models.CheckConstraint(condition=Q(kind="credit_note") | Q(original__isnull=True),
                                   name="invoice_only_credit_notes_reference"),
            # gross_total = net_total + vat_total: PostgreSQL only (migration 0002).
        ]
        indexes = [models.Index(fields=["operator", "status", "due_date"]),
                   models.Index(fields=["customer", "period_start"])]

    def __str__(self) -> str:
        return self.number or f"{self.get_kind_display()} draft #{self.pk}"

    @property
    def is_issued(self) -> bool:
        return self.status != self.Status.DRAFT


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        SESSION = "session", _("Charging session")
        DISCOUNT = "discount", _("Coupon discount")
        FEE = "fee", _("Fee")
        SUBSCRIPTION = "subscription", _("Subscription")
        REIMBURSEMENT = "reimbursement", _("Reimbursement")
        SERVICE_FEE = "service_fee", _("Service fee")
        CREDIT = "credit", _("Credited line")

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=14, choices=Kind.choices)
    session = models.ForeignKey(ChargingSession, on_delete=models.PROTECT, null=True,
                                blank=True, related_name="invoice_lines")
    credited_line = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="credits")
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    unit_price = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    net = models.DecimalField(**MONEY)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    vat = models.DecimalField(**MONEY)
    gross = models.DecimalField(**MONEY)
    details = models.JSONField(default=dict, blank=True)
    # A retail plan's monthly fee (kind "subscription"): whose subscription, for which month
    # (its first day). A subscription's fee for a month is on at most one invoice.
    retail_subscription = models.ForeignKey(
        "tariffs.RetailSubscription", on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", help_text=_("The subscription whose monthly fee this line is."))
    fee_month = models.DateField(null=True, blank=True,
                                 help_text=_("The month of the fee (its first day)."))

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session"], condition=Q(kind="session"),
                                    name="invoiceline_session_once"),
            models.UniqueConstraint(fields=["retail_subscription", "fee_month"],
                                    condition=Q(kind="subscription"),
                                    name="invoiceline_subscription_fee_once"),
            models.CheckConstraint(condition=Q(retail_subscription__isnull=True)
                                   | Q(fee_month__isnull=False),
                                   name="invoiceline_subscription_fee_has_month"),
            # gross = net + vat: PostgreSQL only (migration 0002).
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.gross}"
