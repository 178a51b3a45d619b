"""Dashboard page routes."""

from django.urls import path

from dashboards.views import blocks, explorer, machines, overview, projects, sessions, team

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("usage/", explorer.usage_explorer, name="usage_explorer"),
    path("usage/export.csv", explorer.usage_csv, name="usage_csv"),
    path("usage/chargeback.csv", explorer.chargeback_csv, name="chargeback_csv"),
    path("usage/search/<str:kind>/", explorer.filter_search, name="usage_filter_search"),
    path("blocks/", blocks.blocks, name="blocks"),
    path("blocks/export.csv", blocks.blocks_csv, name="blocks_csv"),
    path("sessions/", sessions.sessions, name="sessions"),
    path("sessions/export.csv", sessions.sessions_csv, name="sessions_csv"),
    path(
        "sessions/<uuid:machine_uuid>/<str:session_id>/",
        sessions.session_detail,
        name="session_detail",
    ),
    path("machines/", machines.machines, name="machines"),
    path("machines/token/", machines.machine_token, name="machine_token"),
    # The agent's wheel for `pipx install <url>` (docs/agent.md); public, see the view.
    path("agent/<str:filename>", machines.agent_wheel_download, name="agent_wheel"),
    path("machines/<uuid:machine_uuid>/rename/", machines.machine_rename, name="machine_rename"),
    path("machines/<uuid:machine_uuid>/move/", machines.machine_move, name="machine_move"),
    path("machines/<uuid:machine_uuid>/retire/", machines.machine_retire, name="machine_retire"),
    path(
        "machines/<uuid:machine_uuid>/retire/confirm/",
        machines.machine_retire_confirm,
        name="machine_retire_confirm",
    ),
    path("projects/", projects.projects, name="projects"),
    path("projects/<uuid:public_id>/group/", projects.project_group, name="project_group"),
    path("projects/<uuid:public_id>/rename/", projects.project_rename, name="project_rename"),
    path("team/", team.team_dashboard, name="team_dashboard"),
]
