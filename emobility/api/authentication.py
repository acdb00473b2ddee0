"""API-key authentication: ``Authorization: Bearer <key>`` (or ``Api-Key <key>``).

A request authenticated with a key acts for the key's operator only. ``request.user`` is then an
``ApiKeyPrincipal`` (not a Django user: it has no memberships and no admin rights) and
``request.auth`` is the ``ApiKey``.
"""

import hmac

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from emobility.models import ApiKey
from emobility.services import api_key_mark_used

#: accepted schemes of the Authorization header (compared case-insensitively)
SCHEMES = ("bearer", "api-key")
#: longer than any key we issue; longer headers are refused without a query
MAX_KEY_LENGTH = 100
# Compared against when the prefix is unknown, so both paths do the same work.
_NO_DIGEST = ApiKey.digest_of("")


class ApiKeyPrincipal:
    """The caller of a request authenticated with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.operator = api_key.operator

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix} ({self.operator.code})"

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perm_list, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates ``Bearer``/``Api-Key`` requests; other requests are left to the next
    authentication class (the session)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode("latin-1") not in SCHEMES:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Give the key as 'Authorization: Bearer <key>'."))
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        return self.authenticate_key(key)

    def authenticate_key(self, key: str):
        prefix = ApiKey.prefix_of(key) if len(key) <= MAX_KEY_LENGTH else None
        api_key = (ApiKey.objects.select_related("operator").filter(prefix=prefix).first()
                   if prefix else None)
        stored = api_key.digest if api_key is not None else _NO_DIGEST
        matches = hmac.compare_digest(ApiKey.digest_of(key), stored)
        if api_key is None or not matches:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."))
        api_key_mark_used(api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
