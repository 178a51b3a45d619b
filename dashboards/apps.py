from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    """Every HTML page that reads usage and budgets; no models of its own."""

    name = "dashboards"
    verbose_name = "Dashboards"
