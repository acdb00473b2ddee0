"""Core domain: operators (tenants), memberships, customers, tokens, the charging network and the
charging sessions (CDRs).

Models hold data and invariants only; writes that need more than one row live in ``services.py``.
Every tenant-owned row carries an ``operator`` foreign key (DESIGN.md §7).
"""

import hashlib
import re
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import CurrencyField, MoneyField
from stdnum.eu import vat as eu_vat

from .db import ExactJSONDecoder, ExactJSONEncoder


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone (e.g. Europe/Amsterdam)."),
                              params={"value": value})


def validate_vat_number(value: str) -> None:
    """An EU VAT number with its country prefix, checked with python-stdnum (format and check
    digits; not a VIES look-up)."""
    if value and not eu_vat.is_valid(value):
        raise ValidationError(_("%(value)s is not a valid EU VAT number (e.g. NL123456782B01)."),
                              params={"value": value})


validate_country = RegexValidator(r"^[A-Z]{2}$", _("Use the ISO 3166-1 alpha-2 code, e.g. NL."))
validate_colour = RegexValidator(r"^#[0-9A-Fa-f]{6}$", _("Use a hex colour such as #0B6E4F."))
EVSE_ID_RE = re.compile(r"^[A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9\*]{1,30}$")


def validate_evse_id(value: str) -> None:
    if not EVSE_ID_RE.match(value):
        raise ValidationError(_("%(value)s is not an EVSE id like NL*ABC*E12345*1."),
                              params={"value": value})


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Address(models.Model):
    address_line = models.CharField(_("address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, validators=[validate_country])

    class Meta:
        abstract = True


class Operator(TimeStampedModel, Address):
    """A tenant: a charge point operator and/or mobility service provider."""

    code = models.SlugField(max_length=40, unique=True,
                            help_text=_("Short code used on the command line and in the API."))
    name = models.CharField(max_length=200)
    ocpi_country_code = models.CharField(max_length=2, validators=[validate_country])
    ocpi_party_id = models.CharField(max_length=3, validators=[
        RegexValidator(r"^[A-Z0-9]{3}$", _("Three upper-case letters or digits."))])
    default_currency = CurrencyField(default="EUR")
    vat_number = models.CharField(max_length=20, blank=True, validators=[validate_vat_number])
    invoice_logo = models.FileField(upload_to="operators/logos/", blank=True)
    brand_colour = models.CharField(max_length=7, default="#0B6E4F", validators=[validate_colour])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["ocpi_country_code", "ocpi_party_id"],
                                    name="operator_unique_ocpi_party"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(TimeStampedModel):
    """A user's role at an operator. A user may belong to several operators."""

    class Role(models.TextChoices):
        MANAGER = "manager", _("CPO manager")
        FINANCE = "finance", _("Finance")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "operator"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.operator} ({self.get_role_display()})"


class Customer(TimeStampedModel, Address):
    """The billing account: an individual driver or a business/fleet with many tokens."""

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        BUSINESS = "business", _("Business / fleet")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="customers")
    reference = models.CharField(max_length=40, help_text=_("Customer number at the operator."))
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.INDIVIDUAL)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    vat_number = models.CharField(max_length=20, blank=True, validators=[validate_vat_number])
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    currency = CurrencyField(default="EUR")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    payment_terms_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Days to pay an invoice; empty: the operator's."))

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "reference"],
                                    name="customer_unique_reference"),
        ]
        indexes = [models.Index(fields=["operator", "name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.reference})"


class Token(TimeStampedModel):
    """An RFID card or app user that starts sessions for a customer (OCPI Token)."""

    class Type(models.TextChoices):
        RFID = "RFID", "RFID"
        APP_USER = "APP_USER", _("App user")
        AD_HOC_USER = "AD_HOC_USER", _("Ad hoc user")
        OTHER = "OTHER", _("Other")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="tokens")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tokens",
                                 null=True, blank=True)
    uid = models.CharField(max_length=36)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.RFID)
    contract_id = models.CharField(_("contract id (eMAID)"), max_length=36, blank=True)
    visual_number = models.CharField(max_length=64, blank=True)
    valid = models.BooleanField(default=True)

    class Meta:
        ordering = ["uid"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "uid"], name="token_unique_uid"),
        ]

    def __str__(self) -> str:
        return self.visual_number or self.uid

    def clean(self) -> None:
        if self.customer_id and self.customer.operator_id != self.operator_id:
            raise ValidationError({"customer": _("The customer belongs to another operator.")})


class Location(TimeStampedModel, Address):
    """A site with charging stations. Its IANA time zone is used for tariff restrictions and for
    every time a person reads."""

    class Kind(models.TextChoices):
        PUBLIC = "public", _("Public")
        SEMI_PUBLIC = "semi_public", _("Semi-public")
        PRIVATE_HOME = "private_home", _("Private home")
        OFFICE = "office", _("Office")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="locations")
    code = models.CharField(max_length=36, help_text=_("Location id (OCPI)."))
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=100, blank=True)
    time_zone = models.CharField(max_length=64, default="Europe/Amsterdam",
                                 validators=[validate_time_zone])
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PUBLIC)
    cpo_party = models.CharField(
        _("charge point operator (roaming)"), max_length=5, blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}[A-Z0-9]{3}$", _(
            "The OCPI country code and party id of the operator running it, e.g. DEABC."))],
        help_text=_("Empty: this operator's own network. Set for a partner's location whose "
                    "sessions this operator sells to its drivers (roaming)."))
    cpo_name = models.CharField(_("charge point operator's name"), max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "code"], name="location_unique_code"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_roaming(self) -> bool:
        return bool(self.cpo_party)


class ChargingStation(TimeStampedModel):
    """A charge point (OCPP identity) at a location. Home and office chargers have an owner who is
    reimbursed for the electricity later."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="stations")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stations")
    identity = models.CharField(max_length=48, help_text=_("Charge point identity (OCPP)."))
    vendor = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="owned_stations",
                              help_text=_("Home/office charger owner to reimburse."))

    class Meta:
        ordering = ["identity"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "identity"],
                                    name="station_unique_identity"),
        ]

    def __str__(self) -> str:
        return self.identity

    def clean(self) -> None:
        errors = {}
        if self.location_id and self.location.operator_id != self.operator_id:
            errors["location"] = _("The location belongs to another operator.")
        if self.owner_id and self.owner.operator_id != self.operator_id:
            errors["owner"] = _("The owner belongs to another operator.")
        if errors:
            raise ValidationError(errors)


class Evse(TimeStampedModel):
    """One connector group of a station that charges one vehicle at a time."""

    class PowerType(models.TextChoices):
        AC_1_PHASE = "AC_1_PHASE", _("AC 1-phase")
        AC_3_PHASE = "AC_3_PHASE", _("AC 3-phase")
        DC = "DC", "DC"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="evses")
    station = models.ForeignKey(ChargingStation, on_delete=models.PROTECT, related_name="evses")
    evse_id = models.CharField(_("EVSE id"), max_length=48, validators=[validate_evse_id])
    power_type = models.CharField(max_length=20, choices=PowerType.choices,
                                  default=PowerType.AC_3_PHASE)
    max_power_kw = models.DecimalField(_("max power (kW)"), max_digits=7, decimal_places=2,
                                       validators=[MinValueValidator(Decimal("0.1")),
                                                   MaxValueValidator(Decimal("1000"))])

    class Meta:
        verbose_name = "EVSE"
        ordering = ["evse_id"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "evse_id"], name="evse_unique_evse_id"),
            models.CheckConstraint(condition=Q(max_power_kw__gt=0), name="evse_power_positive"),
        ]

    def __str__(self) -> str:
        return self.evse_id

    def clean(self) -> None:
        if self.station_id and self.station.operator_id != self.operator_id:
            raise ValidationError({"station": _("The station belongs to another operator.")})


class ChargingSession(TimeStampedModel):
    """A charge detail record (CDR) and where it stands in the billing flow.

    The status only moves forward: imported → rated → settled → invoiced, or imported →
    rating_failed (with a reason) → rated once fixed. A correction is a new record, never an edit
    of an invoiced one.
    """

    class Status(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        RATING_FAILED = "rating_failed", _("Rating failed")
        RATED = "rated", _("Rated")
        SETTLED = "settled", _("Settled")
        INVOICED = "invoiced", _("Invoiced")

    # Allowed moves. Re-rating (rated → rated) and retrying a failure are explicit services.
    TRANSITIONS = {
        Status.IMPORTED: {Status.RATED, Status.RATING_FAILED},
        Status.RATING_FAILED: {Status.RATED, Status.RATING_FAILED},
        Status.RATED: {Status.RATED, Status.SETTLED, Status.RATING_FAILED},
        Status.SETTLED: {Status.INVOICED},
        Status.INVOICED: set(),
    }

    class Source(models.TextChoices):
        CSV = "csv", "CSV"
        API = "api", "API"
        OCPI = "ocpi", "OCPI"
        DEMO = "demo", _("Demo data")

    class AuthMethod(models.TextChoices):
        AUTH_REQUEST = "AUTH_REQUEST", _("Authorization request")
        COMMAND = "COMMAND", _("Command (app)")
        WHITELIST = "WHITELIST", _("Whitelist")

    # The foreign keys to operator, EVSE and customer are indexed as the first column of the
    # composite indexes in Meta (a separate index each would only slow down imports and rating).
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="sessions",
                                 db_index=False)
    external_id = models.CharField(_("CDR id"), max_length=64)
    evse = models.ForeignKey(Evse, on_delete=models.PROTECT, related_name="sessions",
                             db_index=False)
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="sessions",
                              null=True, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="sessions",
                                 null=True, blank=True, db_index=False)
    start = models.DateTimeField(db_index=True)
    end = models.DateTimeField()
    energy_kwh = models.DecimalField(_("energy (kWh)"), max_digits=12, decimal_places=4)
    charging_seconds = models.PositiveIntegerField(default=0)
    parking_seconds = models.PositiveIntegerField(_("parking (idle) seconds"), default=0)
    max_power_kw = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    auth_method = models.CharField(max_length=20, choices=AuthMethod.choices,
                                   default=AuthMethod.WHITELIST)
    authorization_reference = models.CharField(max_length=36, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    raw = models.JSONField(_("record as received"), default=dict, blank=True,
                           encoder=ExactJSONEncoder, decoder=ExactJSONDecoder)
    # Indexed with its operator and start (Meta.indexes): every list of sessions is scoped by
    # operator, and a lone status index would only slow down the status updates of rating.
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IMPORTED)
    rating_failure_reason = models.TextField(blank=True)
    # What else a CDR carries (docs/cdr-csv.md).
    contract_id = models.CharField(_("contract id (eMAID)"), max_length=36, blank=True)
    ocpi_session_id = models.CharField(_("session id"), max_length=36, blank=True)
    meter_start_wh = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    meter_stop_wh = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    tariff_reference = models.CharField(_("tariff id in the CDR"), max_length=36, blank=True)
    cpo_cost_excl_vat = MoneyField(_("operator's cost excl. VAT"), max_digits=12,
                                   decimal_places=4, null=True, blank=True,
                                   default_currency=None,
                                   help_text=_("What the charge point operator charged (roaming)."))
    # A digest of the content as stored: the same CDR id again with the same fingerprint is a
    # duplicate, with another one a conflict (emobility.cdrs.validation.fingerprint).
    fingerprint = models.CharField(max_length=32, blank=True, editable=False)
    cdr_import = models.ForeignKey("CdrImport", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="sessions", editable=False, db_index=False,
                                   verbose_name=_("import"))
    import_row = models.PositiveIntegerField(_("row in the imported file"), null=True,
                                             blank=True, editable=False)

    class Meta:
        ordering = ["-start"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "external_id"],
                                    name="session_unique_cdr_id"),
            models.CheckConstraint(condition=Q(end__gt=F("start")),
                                   name="session_end_after_start"),
            models.CheckConstraint(condition=Q(energy_kwh__gte=0),
                                   name="session_energy_not_negative"),
            models.CheckConstraint(
                condition=Q(status="rating_failed") | Q(rating_failure_reason=""),
                name="session_failure_reason_only_when_failed"),
        ]
        indexes = [
            models.Index(fields=["operator", "status", "start"]),
            # the portal's dashboard: an operator's sessions that started in a period
            models.Index(fields=["operator", "start"], name="session_operator_start"),
            models.Index(fields=["customer", "start"]),
            models.Index(fields=["evse", "start"]),
            models.Index(fields=["cdr_import", "status"], name="session_import_status",
                         condition=Q(cdr_import__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def duration_seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.Status(self.status)]

    def clean(self) -> None:
        errors = {}
        if self.start and self.end and self.end <= self.start:
            errors["end"] = _("The session must end after it starts.")
        if self.evse_id and self.evse.operator_id != self.operator_id:
            errors["evse"] = _("The EVSE belongs to another operator.")
        if self.customer_id and self.customer.operator_id != self.operator_id:
            errors["customer"] = _("The customer belongs to another operator.")
        if self.token_id and self.token.operator_id != self.operator_id:
            errors["token"] = _("The token belongs to another operator.")
        if (self.start and self.end and self.end > self.start
                and self.charging_seconds + self.parking_seconds > self.duration_seconds):
            errors["parking_seconds"] = _(
                "Charging and parking time together exceed the session's duration.")
        if errors:
            raise ValidationError(errors)


class CdrImport(TimeStampedModel):
    """A CDR file being imported (docs/cdr-csv.md, "Import jobs"): what it is, how far the job
    got, and what it found. Every row of the file is counted once: ``imported + duplicates +
    conflicts + errors = rows``. ``rows_committed`` is the checkpoint a resumed job starts from:
    it moves in the same transaction as the sessions and the error rows of each chunk."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Importing")
        RATING = "rating", _("Rating")
        DONE = "done", _("Done")
        REJECTED = "rejected", _("Rejected (strict: nothing imported)")
        FAILED = "failed", _("Failed (file unreadable)")

    FINISHED = (Status.DONE, Status.REJECTED, Status.FAILED)

    class Door(models.TextChoices):
        ADMIN = "admin", _("Admin")
        PORTAL = "portal", _("Portal")
        API = "api", "API"
        COMMAND = "command", _("Command line")

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="cdr_imports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    door = models.CharField(_("uploaded through"), max_length=10, choices=Door.choices)
    file = models.FileField(upload_to="cdr-imports/%Y/%m/")
    file_name = models.CharField(_("file name"), max_length=255)
    file_size = models.BigIntegerField(_("size (bytes)"), default=0)
    profile = models.CharField(max_length=40, blank=True,
                               help_text=_("Empty: detected from the header."))
    strict = models.BooleanField(default=False, help_text=_(
        "Import nothing if any row is refused or conflicts."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    rows_committed = models.PositiveIntegerField(default=0, editable=False)
    line_committed = models.PositiveIntegerField(default=0, editable=False)
    bytes_read = models.BigIntegerField(default=0, editable=False)
    rated = models.PositiveIntegerField(default=0)
    rating_failed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    header = models.JSONField(_("columns of the file"), default=list, blank=True)
    file_format = models.JSONField(default=dict, blank=True, help_text=_(
        "What was detected: encoding, delimiter, profile, columns not used."))
    timings = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_report = models.FileField(upload_to="cdr-imports/reports/%Y/%m/", blank=True)

    class Meta:
        verbose_name = _("CDR import")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rows__gte=F("imported") + F("duplicates") + F("conflicts")
                            + F("errors")),
                name="cdrimport_counts_within_rows"),
        ]
        indexes = [models.Index(fields=["operator", "-created_at"]),
                   models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def progress(self) -> int:
        """How far the current phase is, in whole percent."""
        if self.status in self.FINISHED:
            return 100
        if self.status == self.Status.RATING:
            return min(99, (self.rated + self.rating_failed) * 100 // self.imported
                       if self.imported else 99)
        if not self.file_size:
            return 0
        return min(99, self.bytes_read * 100 // self.file_size)


class CdrImportError(models.Model):
    """A row of an import that was not imported, and why (one line of the error report)."""

    # indexed first in Meta.indexes
    cdr_import = models.ForeignKey(CdrImport, on_delete=models.CASCADE,
                                   related_name="error_rows", db_index=False)
    row = models.PositiveIntegerField(null=True)
    cdr_id = models.CharField(_("CDR id"), max_length=64, blank=True)
    column = models.CharField(max_length=64, blank=True)
    value = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    kind = models.CharField(max_length=10, default="error", choices=[
        ("error", _("Refused")), ("conflict", _("Conflict")), ("strict", _("Not imported"))])
    cells = models.JSONField(_("row as received"), default=dict)

    class Meta:
        ordering = ["cdr_import", "row"]
        indexes = [models.Index(fields=["cdr_import", "row"])]

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


API_KEY_PREFIX_RE = re.compile(r"[a-z0-9]{8}")


class ApiKey(models.Model):
    """A key that charging-station software and partners use to call the API for one operator.

    The key is ``emb_<prefix>_<secret>``. Only the prefix (public, to find the row and to tell keys
    apart) and the SHA-256 digest of the whole key are stored; the key itself is shown once, when
    it is created (``services.api_key_create``). A revoked key never authenticates again.
    """

    #: the key's text before the prefix
    SCHEME = "emb"
    PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
    PREFIX_LENGTH = 8

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100,
                            help_text=_("What uses this key, e.g. the CSMS of site Amsterdam."))
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False,
                              help_text=_("The public start of the key that identifies it."))
    digest = models.CharField(_("SHA-256 digest"), max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+", editable=False)

    class Meta:
        verbose_name = _("API key")
        ordering = ["operator", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(digest__regex=r"^[0-9a-f]{64}$"),
                                   name="apikey_digest_is_sha256_hex"),
            models.CheckConstraint(condition=Q(prefix__regex=f"^{API_KEY_PREFIX_RE.pattern}$"),
                                   name="apikey_prefix_format"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.SCHEME}_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def digest_of(key: str) -> str:
        """The SHA-256 hex digest stored for ``key`` (the key is random, so no salt or slow hash
        is needed)."""
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    @classmethod
    def prefix_of(cls, key: str) -> str | None:
        """The prefix of a well-formed key, else ``None``."""
        scheme, _sep, rest = key.partition("_")
        prefix, sep, secret = rest.partition("_")
        if (scheme != cls.SCHEME or not sep or not secret
                or not API_KEY_PREFIX_RE.fullmatch(prefix)):
            return None
        return prefix
