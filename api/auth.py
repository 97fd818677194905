"""POST /api/v1/auth/token: a mobile client trades username and password for the employee's
token (one per employee; tag admins revoke tokens in the admin under "Tokens");
DELETE revokes the token the request was made with (log out on the device)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.throttling import AnonThrottle, UserThrottle

TokenResponse = inline_serializer(
    "TokenResponse",
    {
        "token": serializers.CharField(),
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

    @extend_schema(
        summary="Get my API token",
        auth=[],
        request=AuthTokenSerializer,
        responses=TokenResponse,
        examples=[
            OpenApiExample(
                "Log in", request_only=True, value={"username": "wang", "password": "••••••"}
            ),
            OpenApiExample(
                "Token",
                response_only=True,
                value={
                    "token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
                    "user": {"id": 7, "username": "wang", "display_name": "王销售"},
                },
            ),
        ],
    )
    def post(self, request):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _created = Token.objects.get_or_create(user=user)
        return Response(
            {
                "token": token.key,
                "user": {"id": user.pk, "username": user.username, "display_name": str(user)},
            }
        )

    @extend_schema(
        summary="Revoke the token of this request (log out)",
        responses={204: None},
        examples=[OpenApiExample("Revoked", response_only=True, status_codes=["204"], value=None)],
    )
    def delete(self, request):
        if not isinstance(request.auth, Token):
            raise ValidationError(_("This request was not made with a token."))
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
