"""Operator scoping for the Django admin.

Every ModelAdmin of a tenant-owned model inherits ``OperatorScopedAdmin``: a staff user who
belongs to operators sees, picks and edits only those operators' rows; a platform superuser sees
everything. A row of another operator answers 404, never a redirect that confirms it exists.
"""

from django.contrib import admin
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Operator
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
