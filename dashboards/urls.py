"""Dashboard page routes."""

from django.urls import path

from dashboards.views import blocks, explorer, machines, overview, sessions, team

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("usage/", explorer.usage_explorer, name="usage_explorer"),
    path("usage/export.csv", explorer.usage_csv, name="usage_csv"),
    path("blocks/", blocks.blocks, name="blocks"),
    path("sessions/", sessions.sessions, name="sessions"),
    path("machines/", machines.machines, name="machines"),
    path("machines/<uuid:machine_uuid>/rename/", machines.machine_rename, name="machine_rename"),
    path("machines/<uuid:machine_uuid>/move/", machines.machine_move, name="machine_move"),
    path("machines/<uuid:machine_uuid>/retire/", machines.machine_retire, name="machine_retire"),
    path("team/", team.team_dashboard, name="team_dashboard"),
]
