"""/api/: the versioned REST API (docs/api.md), its OpenAPI schema and the docs (served locally)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.auth import TokenView
from api.errors import not_found_view

v1 = [
    path("auth/token", TokenView.as_view(), name="api-token"),
    path("", include("tagging.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("rules.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"^.*$", not_found_view),
]
