"""Operator settings: invoice branding, number series prefixes, payment terms (docs/portal.md,
"Operator settings").

One page, three forms (``section`` says which one a POST is). Everyone of the operator reads it;
only a manager or finance user changes it (a viewer's POST answers 403). Every change is written
to the admin's history of the changed row (``LogEntry``: who, when, what), and the page lists the
latest changes.

Number series: a prefix changes only while the series has given no number; the rule (and the
format's checks) is the back office's own (``invoicing.admin.NumberSeriesForm``), applied here
under a lock of the series and its counters, so every issued number keeps its place in one
gapless sequence.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import warnings

from django import forms
from django.contrib import messages
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from emobility.auth import history_record
from emobility.models import Operator, validate_colour
from invoicing.admin import NumberSeriesForm
from invoicing.models import InvoicingSettings, NumberSeries, SeriesCounter
from invoicing.services.invoices import settings_for
from invoicing.services.numbers import DEFAULT_PREFIXES, format_number

from ..access import may_write, portal_view, require_write

#: the largest logo accepted, in bytes (the PDF scales it into a 55 × 20 mm box)
MAX_LOGO_BYTES = 512 * 1024
#: the largest width and height of a logo, in pixels
MAX_LOGO_PIXELS = 4000
#: payment terms, in days: from due on receipt to three months
TERMS_MIN, TERMS_MAX = 0, 90
#: what a new prefix may be made of (the number is printed, used in file names and references)
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
#: changes listed on the page
RECENT_CHANGES = 10
IMAGE_TYPES = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}


# --- forms ------------------------------------------------------------------------------------

class BrandingForm(forms.Form):
    logo = forms.FileField(
        label=_("Invoice logo"), required=False,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg"}),
        help_text=_("PNG or JPEG, at most 512 KB and 4000 × 4000 pixels; printed at the top "
                    "left of every invoice issued from now on."))
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)
    brand_colour = forms.CharField(
        label=_("Brand colour"), max_length=7, validators=[validate_colour],
        widget=forms.TextInput(attrs={"pattern": "#[0-9A-Fa-f]{6}", "placeholder": "#0B6E4F",
                                      "size": 8}),
        help_text=_("A hex colour such as #0B6E4F, for headings and lines of the PDF."))

    def clean_brand_colour(self):
        return self.cleaned_data["brand_colour"].upper()

    def clean_logo(self):
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size > MAX_LOGO_BYTES:
            raise forms.ValidationError(_("The logo is larger than 512 KB."))
        data = upload.read()
        kind = image_kind(data)
        if kind is None:
            raise forms.ValidationError(_("Upload a PNG or JPEG image."))
        return data, kind

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("logo") and cleaned.get("remove_logo"):
            raise forms.ValidationError(_("Upload a new logo or remove the logo, not both."))
        return cleaned


def image_kind(data: bytes) -> str | None:
    """``"PNG"`` or ``"JPEG"`` when ``data`` is a whole, readable image of that format within the
    size limits; else ``None``."""
    from PIL import Image, UnidentifiedImageError

    if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                width, height = image.size
                if kind not in IMAGE_TYPES or not (0 < width <= MAX_LOGO_PIXELS
                                                   and 0 < height <= MAX_LOGO_PIXELS):
                    return None
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # every pixel decodes (verify does not decode JPEG data)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    return kind


class SeriesPrefixForm(NumberSeriesForm):
    """A series' prefix, with the back office's rules: refused once the series gave a number,
    the format must still render, no other series of the operator has the prefix."""

    class Meta(NumberSeriesForm.Meta):
        fields = ["prefix"]
        labels = {"prefix": _("Prefix")}
        help_texts = {}

    def clean_prefix(self):
        value = self.cleaned_data["prefix"]
        if value != self.instance.prefix and not PREFIX_RE.match(value):
            raise forms.ValidationError(_(
                "Use letters, digits and . _ / - only, starting with a letter or a digit."))
        return value


class TermsForm(forms.ModelForm):
    payment_terms_days = forms.IntegerField(
        label=_("Payment terms (days)"), min_value=TERMS_MIN, max_value=TERMS_MAX,
        help_text=_("Days between an invoice's issue date and its due date, from 0 to 90; a "
                    "customer's own terms come first."))

    class Meta:
        model = InvoicingSettings
        fields = ["payment_terms_days"]


# --- reads ------------------------------------------------------------------------------------

def operator_series(operator) -> list[NumberSeries]:
    """One series per kind, in the kinds' order: the operator's, or the one the first document
    of that kind will make (unsaved, with the default prefix)."""
    found = {s.kind: s for s in NumberSeries.objects.filter(operator=operator)
             .prefetch_related("counters")}
    return [found.get(kind) or NumberSeries(operator=operator, kind=kind,
                                            prefix=f"{operator.ocpi_party_id}-"
                                                   f"{DEFAULT_PREFIXES[kind]}")
            for kind in NumberSeries.Kind.values]


def series_facts(series: NumberSeries) -> dict:
    counters = {c.year: c.last for c in series.counters.all()} if series.pk else {}
    year = timezone.localdate().year
    last = counters.get(year if "{year" in series.format else 0, 0)
    try:
        following = format_number(series, year=year, seq=last + 1)
    except (ValueError, TypeError, KeyError, IndexError):
        following = "—"
    return {"next": following, "given": sum(counters.values()),
            "locked": any(counters.values())}


def recent_changes(operator, series: list[NumberSeries], config: InvoicingSettings):
    """The latest changes of the operator's branding, series and invoicing settings."""
    types = ContentType.objects.get_for_models(Operator, NumberSeries, InvoicingSettings)
    where = Q(content_type=types[Operator], object_id=str(operator.pk))
    series_ids = [str(s.pk) for s in series if s.pk]
    if series_ids:
        where |= Q(content_type=types[NumberSeries], object_id__in=series_ids)
    if config.pk:
        where |= Q(content_type=types[InvoicingSettings], object_id=str(config.pk))
    return list(LogEntry.objects.filter(where).select_related("user")
                .order_by("-action_time", "-pk")[:RECENT_CHANGES])


#: the payment terms of an operator without invoicing settings
DEFAULT_TERMS = InvoicingSettings._meta.get_field("payment_terms_days").default


# --- writes -----------------------------------------------------------------------------------

def _log(user, obj, message: str, flag: int = CHANGE) -> None:
    history_record(obj=obj, actor=user, message=message, flag=flag)


def branding_update(*, operator: Operator, user, colour: str, logo: tuple | None,
                    remove_logo: bool) -> list[str]:
    """The operator's brand colour and logo; what changed (also in the admin's history)."""
    changes = []
    with transaction.atomic():
        locked = Operator.objects.select_for_update().get(pk=operator.pk)
        if locked.brand_colour.upper() != colour:
            changes.append(f"Brand colour: {locked.brand_colour} → {colour}.")
            locked.brand_colour = colour
        if logo is not None:
            data, kind = logo
            extension = IMAGE_TYPES[kind][0]
            name = f"{locked.pk}-{secrets.token_hex(8)}.{extension}"
            locked.invoice_logo.save(name, ContentFile(data), save=False)
            changes.append(f"Invoice logo: a {kind} image of {len(data):,} bytes.")
        elif remove_logo and locked.invoice_logo:
            locked.invoice_logo = ""
            changes.append("Invoice logo removed.")
        if changes:
            locked.save(update_fields=["brand_colour", "invoice_logo", "updated_at"])
            _log(user, locked, "Portal: " + " ".join(changes))
    return changes


def series_prefix_update(*, operator: Operator, user, kind: str, data) -> SeriesPrefixForm:
    """Validate and save the prefix of the operator's series of ``kind`` (made now when there is
    none yet) under a lock of the series and its counters: a number taken meanwhile waits, or
    makes the change refused."""
    with transaction.atomic():
        series = (NumberSeries.objects.select_for_update()
                  .filter(operator=operator, kind=kind).first())
        if series is not None:
            list(SeriesCounter.objects.select_for_update().filter(series=series))
        else:
            series = next(s for s in operator_series(operator) if s.kind == kind)
        before = series.prefix if series.pk else ""
        form = SeriesPrefixForm(data, instance=series, prefix=kind)
        if not form.is_valid():
            return form
        if series.pk and not form.has_changed():
            return form
        try:
            with transaction.atomic():
                saved = form.save()
        except IntegrityError:
            form.add_error(None, _("The series was just made by someone else: try again."))
            return form
        if before:
            _log(user, saved, f"Portal: prefix {before} → {saved.prefix}.")
        else:
            _log(user, saved, f"Portal: series made with prefix {saved.prefix}.", ADDITION)
    return form


def payment_terms_update(*, operator: Operator, user, data) -> TermsForm:
    with transaction.atomic():
        config = (InvoicingSettings.objects.select_for_update().filter(operator=operator)
                  .first() or InvoicingSettings(operator=operator))
        before = config.payment_terms_days if config.pk else None
        form = TermsForm(data, instance=config)
        if not form.is_valid():
            return form
        if config.pk and before == form.cleaned_data["payment_terms_days"]:
            return form
        try:
            with transaction.atomic():
                saved = form.save()
        except IntegrityError:
            form.add_error(None, _("The settings were just made by someone else: try again."))
            return form
        was = before if before is not None else DEFAULT_TERMS
        _log(user, saved, f"Portal: payment terms {was} → {saved.payment_terms_days} days.",
             CHANGE if before is not None else ADDITION)
    return form


# --- the page ---------------------------------------------------------------------------------

SECTIONS = ("branding", "series", "terms")


@require_http_methods(["GET", "POST"])
@portal_view
def settings(request, operator):
    writer = may_write(request.user, operator)
    forms_ = {}
    status = 200
    if request.method == "POST":
        require_write(request, operator)
        section = request.POST.get("section", "")
        if section not in SECTIONS:
            status = 400
            messages.error(request, gettext("Choose what to change."))
        elif section == "branding":
            status, forms_ = _post_branding(request, operator)
        elif section == "series":
            kind = request.POST.get("kind", "")
            if kind not in NumberSeries.Kind.values:
                status = 400
                messages.error(request, gettext("Choose a number series."))
            else:
                form = series_prefix_update(operator=operator, user=request.user, kind=kind,
                                            data=request.POST)
                if form.is_valid():
                    messages.success(request, gettext("The prefix was saved.") if form.has_changed()
                                     else gettext("Nothing was changed."))
                    return redirect("portal:settings")
                status, forms_ = 400, {f"series_{kind}": form}
        else:
            form = payment_terms_update(operator=operator, user=request.user,
                                        data=request.POST)
            if form.is_valid():
                messages.success(request, gettext("The payment terms were saved."))
                return redirect("portal:settings")
            status, forms_ = 400, {"terms": form}
        if status == 302:
            return redirect("portal:settings")
    return render(request, "portal/settings/page.html",
                  _context(operator, writer=writer, bound=forms_), status=status)


def _post_branding(request, operator):
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_LOGO_BYTES + 64 * 1024:
        form = BrandingForm(_branding_initial(operator))
        form.is_valid()
        form.add_error(None, _("The logo is larger than 512 KB."))
        return 413, {"branding": form}
    form = BrandingForm(request.POST, request.FILES)
    if not form.is_valid():
        return 400, {"branding": form}
    changes = branding_update(operator=operator, user=request.user,
                              colour=form.cleaned_data["brand_colour"],
                              logo=form.cleaned_data.get("logo"),
                              remove_logo=form.cleaned_data["remove_logo"])
    messages.success(request, gettext("The branding was saved.") if changes
                     else gettext("Nothing was changed."))
    return 302, {}


def _branding_initial(operator) -> dict:
    return {"brand_colour": operator.brand_colour}


def _logo_preview(operator) -> dict | None:
    if not operator.invoice_logo:
        return None
    try:
        with operator.invoice_logo.open("rb") as handle:
            data = handle.read(MAX_LOGO_BYTES + 1)
    except (OSError, ValueError):
        return {"missing": True}
    kind = image_kind(data) if len(data) <= MAX_LOGO_BYTES else None
    if kind is None:
        return {"unreadable": True}
    return {"src": f"data:{IMAGE_TYPES[kind][1]};base64,{base64.b64encode(data).decode()}",
            "size": len(data)}


def _context(operator, *, writer: bool, bound: dict) -> dict:
    operator.refresh_from_db(fields=["brand_colour", "invoice_logo"])
    config = settings_for(operator)
    series = operator_series(operator)
    rows = []
    for item in series:
        form = bound.get(f"series_{item.kind}") or SeriesPrefixForm(instance=item,
                                                                   prefix=item.kind)
        facts = series_facts(item)
        if facts["locked"]:
            form.fields["prefix"].widget.attrs["readonly"] = True
            form.fields["prefix"].widget.attrs["aria-describedby"] = f"{item.kind}-locked"
        rows.append({"series": item, "form": form, **facts})
    return {
        "operator": operator, "writer": writer, "config": config,
        "branding_form": bound.get("branding") or BrandingForm(
            initial=_branding_initial(operator)),
        "logo": _logo_preview(operator),
        "series_rows": rows,
        "terms_form": bound.get("terms") or TermsForm(instance=config),
        "changes": recent_changes(operator, series, config),
        "max_terms": TERMS_MAX,
    }


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [path("settings/", settings, name="settings")]

#: entries of the portal's menu: (URL name, label)
NAV = [("settings", _("Operator settings"))]
