"""REST API routes under /api/v1/ (each area adds its own lines here).

Ids in paths are matched as strings and checked by the views, so a malformed id is a JSON 404
like any unknown one, never Django's HTML page.
"""

from django.urls import path

from usage import api, api_analytics

urlpatterns = [
    path("ingest/", api.IngestView.as_view(), name="api-ingest"),
    path("usage/", api.UsageView.as_view(), name="api-usage"),
    path("machines/", api.MachineListView.as_view(), name="api-machines"),
    path("machines/<str:uuid>/", api.MachineDetailView.as_view(), name="api-machine"),
    path("sessions/", api.SessionListView.as_view(), name="api-sessions"),
    path("projects/", api.ProjectListView.as_view(), name="api-projects"),
    path("projects/<str:public_id>/", api.ProjectDetailView.as_view(), name="api-project"),
    path("blocks/", api_analytics.BlockListView.as_view(), name="api-blocks"),
    path("rate-limits/", api_analytics.RateLimitView.as_view(), name="api-rate-limits"),
    path("pace/", api_analytics.PaceView.as_view(), name="api-pace"),
    path("headroom/", api_analytics.HeadroomView.as_view(), name="api-headroom"),
    path("plan-value/", api_analytics.PlanValueView.as_view(), name="api-plan-value"),
]
