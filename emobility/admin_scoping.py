"""Operator scoping for the Django admin, and what the back-office admins share.

Every ModelAdmin of a tenant-owned model inherits ``OperatorScopedAdmin``: a staff user who
belongs to operators sees, picks and edits only those operators' rows; a platform superuser sees
everything. A row of another operator answers 404, never a redirect that confirms it exists.

The admins that act through services (invoicing, payments) inherit ``ActingAdmin``: finance users
and managers act for their operators (``acting_operator_ids``), viewers only look; their own form
pages (``form_page``), read-only rows (``ReadOnlyMixin``, ``ReadOnlyInline``) and the small
display helpers (``when``, ``money``, ``change_link``) are here too.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from .models import Membership, Operator
from .selectors import operator_ids_for_user, scope_to_user


class OperatorScopedAdmin(admin.ModelAdmin):
    #: the lookup path from this model to its operator
    operator_path = "operator"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user, self.operator_path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if related is Operator:
            kwargs["queryset"] = scope_to_user(Operator.objects.all(), request.user)
        elif any(f.name == "operator" for f in related._meta.fields):
            kwargs["queryset"] = scope_to_user(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        ids = operator_ids_for_user(request.user)
        if ids and len(ids) == 1 and self.operator_path == "operator":
            initial.setdefault("operator", ids[0])
        return initial

    def _ensure_visible(self, request, object_id) -> None:
        if object_id is None:
            return
        try:
            visible = self.get_queryset(request).filter(pk=object_id).exists()
        except (ValueError, TypeError):
            visible = False
        if not visible:
            raise Http404("No such record.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._ensure_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)


class ScopedOperatorFilter(admin.RelatedOnlyFieldListFilter):
    """Operator filter that lists only the operators present in the user's rows."""


def validity_filter(*, dates: bool):
    """A list filter "valid now / not yet valid / ended" on ``valid_from``/``valid_until``:
    calendar dates with an inclusive end (``dates``), or instants with an exclusive end."""
    class ValidityFilter(admin.SimpleListFilter):
        title = _("validity")
        parameter_name = "validity"

        def lookups(self, request, model_admin):
            return [("current", _("Valid now")), ("upcoming", _("Not yet valid")),
                    ("ended", _("Ended"))]

        def queryset(self, request, queryset):
            now = timezone.localdate() if dates else timezone.now()
            ongoing = Q(valid_until__gte=now) if dates else Q(valid_until__gt=now)
            ended = Q(valid_until__lt=now) if dates else Q(valid_until__lte=now)
            if self.value() == "current":
                return queryset.filter(Q(valid_until__isnull=True) | ongoing,
                                       valid_from__lte=now)
            if self.value() == "upcoming":
                return queryset.filter(valid_from__gt=now)
            if self.value() == "ended":
                return queryset.filter(ended)
            return queryset

    return ValidityFilter


# --- acting: finance users and managers -------------------------------------------------------

#: the roles that act (issue, collect, settle, refund, edit settings...) for their operators in
#: the back office; viewers only look
ACTING_ROLES = (Membership.Role.FINANCE, Membership.Role.MANAGER)
#: rows of a document shown on its page (a fleet's invoice, a SEPA file or a bank statement may
#: have thousands; the exports have them all)
FIRST_LINES = 500


def acting_operator_ids(user) -> list[int] | None:
    """The operators the user acts for (finance or manager there); ``None`` for a platform
    superuser (every operator)."""
    return operator_ids_for_user(user, ACTING_ROLES)


def scope_to_acting(queryset, user, operator_path: str = "operator"):
    """``queryset`` restricted to the operators the user acts for."""
    return scope_to_user(queryset, user, operator_path, roles=ACTING_ROLES)


# --- what the back-office admins show -----------------------------------------------------------

def when(moment) -> str:
    """An instant in local time, to the minute (``2026-10-01 08:00``); "—" for none."""
    return "—" if moment is None else f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def money(amount, currency) -> str:
    """An amount with its currency (``EUR 12.50``); "—" for none."""
    return "—" if amount is None else f"{currency} {amount}"


def change_link(obj, label=None):
    """A link to the row's admin page ("—" for no row)."""
    if obj is None:
        return "—"
    opts = obj._meta
    return format_html('<a href="{}">{}</a>', reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)]),
        label if label is not None else str(obj))


def stored_file(file, *, content_type: str, filename: str, what: str = "file"):
    """A stored file (a ``FieldFile``) as a download; 404 when there is none, or when it is not
    stored any more."""
    if not file:
        raise Http404(f"No {what}.")
    try:
        handle = file.open("rb")
    except (OSError, ValueError):
        raise Http404(f"The {what} is not stored any more.") from None
    return FileResponse(handle, as_attachment=True, content_type=content_type,
                        filename=filename)


class ReadOnlyMixin:
    """Rows written only by the services: listed and shown, never added, changed or deleted by
    hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionsOnlyMixin:
    """Read-only pages whose list actions (``permissions=["change"]``) still run: the model's
    change permission runs the actions, a row's page is read-only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False


class KeptByHandMixin:
    """Rows kept by hand (settings): the users who act add and change their operators' rows;
    nothing is deleted here. Mixed into an ``ActingAdmin``."""

    def has_add_permission(self, request):
        return self.has_act_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_act_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False


class FirstLinesFormSet(BaseInlineFormSet):
    """The first ``FIRST_LINES`` rows of a document."""

    def get_queryset(self):
        if not hasattr(self, "_first_lines"):
            self._first_lines = list(super().get_queryset()[:FIRST_LINES])
        return self._first_lines


class ActingAdmin(OperatorScopedAdmin):
    """The base of the back-office admins that act through services (invoicing, payments):
    operator-scoped, the operator column for users of several operators, an "act" permission for
    finance users and managers of the row's operator (an admin action with
    ``permissions=["act"]`` asks it), foreign-key choices limited to the operators the user acts
    for, and the admin's own pages (``page``, ``form_page``)."""

    #: the warning about selected rows of operators the user only views (``%(n)s`` of them)
    left_as_they_are = ngettext_lazy(
        "%(n)s selected row is of an operator you only view: left as it is.",
        "%(n)s selected rows are of operators you only view: left as they are.", "n")

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        ids = operator_ids_for_user(request.user)
        has_operator = any(f.name == "operator" for f in self.model._meta.fields)
        if has_operator and (ids is None or len(ids) > 1) and "operator" not in columns:
            columns.append("operator")
        return columns

    def has_act_permission(self, request, obj=None) -> bool:
        """Finance and managers of the row's operator (of any operator when ``obj`` is None)."""
        if not self.has_view_permission(request, obj):
            return False
        ids = acting_operator_ids(request.user)
        if ids is None:
            return True
        if obj is None:
            return bool(ids)
        return self._operator_id(obj) in ids

    @staticmethod
    def _operator_id(obj):
        return obj.operator_id

    def acting(self, request, queryset):
        """The rows of ``queryset`` the user may act on."""
        return scope_to_acting(queryset, request.user, self.operator_path)

    def _acting_or_warn(self, request, queryset):
        """The rows of ``queryset`` the user may act on, with a warning about the others."""
        allowed = self.acting(request, queryset)
        left = queryset.count() - allowed.count()
        if left:
            self.message_user(request, self.left_as_they_are % {"n": left}, messages.WARNING)
        return allowed

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if related is Operator or any(f.name == "operator" for f in related._meta.fields):
            # Narrower than the scoping base (every operator of the user): only those the
            # user acts for, so a viewer somewhere cannot pick that operator's rows.
            kwargs["queryset"] = scope_to_acting(related._default_manager.all(), request.user)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _visible(self, request, pk):
        """A row of the user's operators (else 404, as for the change page)."""
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def _require(self, allowed: bool) -> None:
        if not allowed:
            raise PermissionDenied

    def _to_act_on(self, request, pk):
        """The row (404 when it is not the user's operators'), if the user may act on it."""
        obj = self._visible(request, pk)
        self._require(self.has_act_permission(request, obj))
        return obj

    def _back(self, obj):
        """To the row's page."""
        opts = self.model._meta
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", obj.pk)

    def _changelist(self) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    def _on_one(self, request, pk, act):
        """A button of a row's page: ``act(request, [row])`` on the row (if the user may act
        on it), then back to its page."""
        obj = self._to_act_on(request, pk)
        act(request, [obj])
        return self._back(obj)

    def page(self, request, template: str, context: dict, title: str, original=None):
        """One of the admin's own pages, with what the admin's templates expect."""
        context = {**self.admin_site.each_context(request), "title": title,
                   "opts": self.model._meta, "original": original, "media": self.media,
                   **context}
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def form_page(self, request, *, title, form, submit, original=None, intro="",
                  cancel_url=None, template="admin/form_page.html"):
        """One of the admin's own forms (a file upload too: the template sends it as
        multipart)."""
        return self.page(request, template, {
            "form": form, "submit_label": submit, "intro": intro,
            "media": self.media + form.media,
            "cancel_url": cancel_url or self._changelist()},
            title=title, original=original)
