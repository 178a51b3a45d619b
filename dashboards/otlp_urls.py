"""Routes of the OTLP set-up page (/settings/otlp/)."""

from django.urls import path

from dashboards.views import otlp_setup

urlpatterns = [
    path("", otlp_setup.otlp_setup, name="otlp_setup"),
    path("status/", otlp_setup.otlp_status, name="otlp_status"),
]
