"""POST /api/v1/auth/token: a mobile client trades username and password for a token of its own
device (``name``; one token per device name, expiring after TAGDESK_TOKEN_TTL_DAYS without use).
DELETE revokes the token the request was made with (log out on the device). Employees and tag
admins list and revoke tokens in the admin ("API tokens").

Wrong passwords count towards django-axes' lockout of this account from this address
(LOGIN_FAILURE_LIMIT within LOGIN_COOLOFF_MINUTES, as in the admin login): while locked, even
the right password answers 429 ``locked_out``.
"""

from __future__ import annotations

from django.contrib.auth import authenticate, user_logged_in
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.lockout import lockout_message, lockout_seconds
from api.throttling import AnonThrottle, UserThrottle
from permissions.models import DeviceToken


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"
    default_detail = gettext_lazy("Too many failed logins.")

    def __init__(self) -> None:
        super().__init__(lockout_message())
        self.retry_after = lockout_seconds()


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    name = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="This device's name, e.g. “Wang's iPhone”. Logging in again with the same "
        "name replaces that device's token. Default: the User-Agent.",
    )


TokenResponse = inline_serializer(
    "TokenResponse",
    {
        "token": serializers.CharField(help_text="Send as `Authorization: Token <token>`."),
        "name": serializers.CharField(),
        "expires_at": serializers.DateTimeField(
            help_text="Moves forward with every use; after it, log in again (`token_expired`)."
        ),
        "user": inline_serializer(
            "TokenUser",
            {
                "id": serializers.IntegerField(),
                "username": serializers.CharField(),
                "display_name": serializers.CharField(),
            },
        ),
    },
)


class TokenView(APIView):
    throttle_classes = [AnonThrottle, UserThrottle]

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_authenticators(self):
        # Logging in needs no credentials; a stale token in the header must not block it.
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(
        summary="Log in: a token for this device",
        auth=[],
        request=LoginSerializer,
        responses=TokenResponse,
        examples=[
            OpenApiExample(
                "Log in",
                request_only=True,
                value={"username": "wang", "password": "••••••", "name": "王销售的 iPhone"},
            ),
            OpenApiExample(
                "Token",
                response_only=True,
                value={
                    "token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
                    "name": "王销售的 iPhone",
                    "expires_at": "2026-02-01T09:30:00+08:00",
                    "user": {"id": 7, "username": "wang", "display_name": "王销售"},
                },
            ),
        ],
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # The Django request, so django-axes counts the attempt and flags a lockout on it.
        http_request = request._request
        user = authenticate(http_request, username=data["username"], password=data["password"])
        if getattr(http_request, "axes_locked_out", False):
            raise LockedOut
        if user is None or not user.is_active:
            raise exceptions.ValidationError(
                {"non_field_errors": [_("Unable to log in with provided credentials.")]}
            )
        name = data.get("name") or request.headers.get("User-Agent", "")
        token, key = DeviceToken.objects.issue(user, name)
        # What django.contrib.auth.login() announces, without a session: last_login is
        # updated, and django-axes logs the access and clears this pair's failures.
        user_logged_in.send(sender=user.__class__, request=http_request, user=user)
        return Response(
            {
                "token": key,
                "name": token.name,
                "expires_at": serializers.DateTimeField().to_representation(token.expires_at),
                "user": {"id": user.pk, "username": user.username, "display_name": str(user)},
            }
        )

    @extend_schema(
        summary="Revoke the token of this request (log out)",
        responses={204: None},
        examples=[OpenApiExample("Revoked", response_only=True, status_codes=["204"], value=None)],
    )
    def delete(self, request):
        if not isinstance(request.auth, DeviceToken):
            raise exceptions.ValidationError(_("This request was not made with a token."))
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
