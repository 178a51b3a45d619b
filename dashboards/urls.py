"""Dashboard page routes."""

from django.urls import path

from usage import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("usage/", views.usage_explorer, name="usage_explorer"),
    path("usage/export.csv", views.usage_csv, name="usage_csv"),
    path("blocks/", views.blocks, name="blocks"),
    path("sessions/", views.sessions, name="sessions"),
    path("machines/", views.machines, name="machines"),
    path("machines/<uuid:machine_uuid>/rename/", views.machine_rename, name="machine_rename"),
    path("machines/<uuid:machine_uuid>/move/", views.machine_move, name="machine_move"),
    path("machines/<uuid:machine_uuid>/retire/", views.machine_retire, name="machine_retire"),
    path("team/", views.team_dashboard, name="team_dashboard"),
]
