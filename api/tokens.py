"""``Authorization: Token <key>`` for the apps: one DeviceToken per device, stored as a hash,
expiring after TAGDESK_TOKEN_TTL_DAYS without use (each use slides the expiry)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from permissions import policy
from permissions.models import DeviceToken


class DeviceTokenAuthentication(TokenAuthentication):
    """DRF's header parsing and ``WWW-Authenticate: Token`` challenge, our token model.

    Errors: ``authentication_failed`` for an unknown or revoked key or an inactive employee,
    ``token_expired`` for a key past its expiry (the app should ask for the password again).
    """

    model = DeviceToken

    def authenticate_credentials(self, key: str):
        token = DeviceToken.objects.for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed(
                _("The token has expired; log in again."), code="token_expired"
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token.touch(now)
        # The user's two global powers steer every policy call of the request: one query for
        # Django's permission caches here instead of two inside the first has_perm.
        policy.load_permissions(token.user)
        return token.user, token
