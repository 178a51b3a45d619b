"""Top-level URL map: pages, the REST API under /api/v1/, its schema and docs, and /healthz."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from telemetry_site.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("usage.api_urls")),
    path("api/v1/", include("budgets.api_urls")),
    path("budgets/", include("budgets.urls")),
    path("", include("usage.urls")),
]
