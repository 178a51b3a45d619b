"""Top-level URL map: pages, the REST API under /api/v1/, its schema and docs, and /healthz."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.urls import settings_urlpatterns
from telemetry_site.health import healthz
from telemetry_site.mcp.views import McpView
from telemetry_site.metrics.views import MetricsView
from usage.api.otlp import OtlpLogsView, OtlpMetricsView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("settings/subscriptions/", include("dashboards.settings_urls")),
    path("settings/otlp/", include("dashboards.otlp_urls")),
    path("settings/", include(settings_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI in "split" form: its start-up script is a file, so the strict CSP holds.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("telemetry_site.api.urls")),
    # The MCP Streamable HTTP endpoint (docs/mcp.md); no trailing slash, as MCP clients are given.
    path("mcp", McpView.as_view(), name="mcp"),
    # Prometheus scrapes /metrics by default (docs/metrics.md).
    path("metrics", MetricsView.as_view(), name="metrics"),
    # Claude Code's own OpenTelemetry export, OTLP/HTTP (docs/otlp.md): the paths its
    # exporter appends to OTEL_EXPORTER_OTLP_ENDPOINT=https://HOST/otlp.
    path("otlp/v1/logs", OtlpLogsView.as_view(), name="otlp-logs"),
    path("otlp/v1/metrics", OtlpMetricsView.as_view(), name="otlp-metrics"),
    path("budgets/", include("budgets.urls")),
    path("", include("dashboards.urls")),
]

# Styled error pages (telemetry_site.errors); 500 keeps Django's handler with templates/500.html.
handler403 = "telemetry_site.errors.forbidden"
handler404 = "telemetry_site.errors.not_found"
