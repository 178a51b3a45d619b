"""Top-level URL map: pages, the REST API under /api/v1/, its schema and docs, and /healthz."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.urls import settings_urlpatterns
from telemetry_site.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("settings/subscriptions/", include("dashboards.settings_urls")),
    path("settings/", include(settings_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI in "split" form: its start-up script is a file, so the strict CSP holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("telemetry_site.api.urls")),
    path("budgets/", include("budgets.urls")),
    path("", include("dashboards.urls")),
]
