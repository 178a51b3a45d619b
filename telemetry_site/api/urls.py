"""The one list of REST API routes under /api/v1/, for every app.

Ids in paths are matched as strings and checked by the views, so a malformed id is a JSON 404
like any unknown one, never Django's HTML page. As a URL conf it imports the apps' API
modules; the rest of telemetry_site.api imports no app.
"""

from django.urls import path, re_path

from budgets.api import AgentRefusalsView, AgentStatusView, BudgetListView
from telemetry_site.api.views import not_found
from usage.api import (
    blocks,
    chargeback,
    data_quality,
    ingest,
    machines,
    pace,
    plan,
    plan_value,
    pricing,
    productivity,
    projects,
    rate_limits,
    sessions,
)
from usage.api.usage import UsageView

urlpatterns = [
    path("ingest/", ingest.IngestView.as_view(), name="api-ingest"),
    path(
        "ingest/batches/<str:public_id>/",
        ingest.IngestBatchView.as_view(),
        name="api-ingest-batch",
    ),
    path("agent/status/", AgentStatusView.as_view(), name="api-agent-status"),
    path("agent/refusals/", AgentRefusalsView.as_view(), name="api-agent-refusals"),
    path("agent/plan/", plan.AgentPlanView.as_view(), name="api-agent-plan"),
    path("usage/", UsageView.as_view(), name="api-usage"),
    path("chargeback/", chargeback.ChargebackView.as_view(), name="api-chargeback"),
    path("data-quality/", data_quality.DataQualityView.as_view(), name="api-data-quality"),
    path("unpriced-models/", pricing.UnpricedModelsView.as_view(), name="api-unpriced-models"),
    path("machines/", machines.MachineListView.as_view(), name="api-machines"),
    path("machines/<str:uuid>/", machines.MachineDetailView.as_view(), name="api-machine"),
    path("sessions/", sessions.SessionListView.as_view(), name="api-sessions"),
    path("projects/", projects.ProjectListView.as_view(), name="api-projects"),
    path("projects/<str:public_id>/", projects.ProjectDetailView.as_view(), name="api-project"),
    path("blocks/", blocks.BlockListView.as_view(), name="api-blocks"),
    path("rate-limits/", rate_limits.RateLimitView.as_view(), name="api-rate-limits"),
    path("pace/", pace.PaceView.as_view(), name="api-pace"),
    path("headroom/", rate_limits.HeadroomView.as_view(), name="api-headroom"),
    path("plan-value/", plan_value.PlanValueView.as_view(), name="api-plan-value"),
    path("budgets/", BudgetListView.as_view(), name="api-budgets"),
    path("productivity/", productivity.ProductivityView.as_view(), name="api-productivity"),
    # Last: an unknown path under /api/v1/ is a JSON 404, never Django's HTML page.
    re_path(r"^(?P<path>.*)$", not_found, name="api-not-found"),
]
