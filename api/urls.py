"""/api/: the versioned REST API (docs/api.md), its OpenAPI schema and the docs (served locally)."""

from csp.constants import UNSAFE_EVAL
from csp.decorators import csp_update
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.auth import TokenView
from api.errors import not_found_view

v1: list[URLPattern | URLResolver] = [
    path("auth/token", TokenView.as_view(), name="api-token"),
    path("", include("tagging.api.urls")),
    path("", include("customers.api.urls")),
    path("", include("rules.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "redoc/",
        # Redoc compiles its schema validators with new Function(): allowed on this page only.
        csp_update({"script-src": [UNSAFE_EVAL]})(
            SpectacularRedocView.as_view(url_name="api-schema")
        ),
        name="api-redoc",
    ),
    re_path(r"^.*$", not_found_view),
]
