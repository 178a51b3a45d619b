"""The project package as an installed app: site-wide template tags, the shared API plumbing
and the demo command."""

from django.apps import AppConfig


class TelemetrySiteConfig(AppConfig):
    name = "telemetry_site"
    verbose_name = "Site"

    def ready(self) -> None:
        # Registers the bearer-token scheme with drf-spectacular (imported in ready()).
        from telemetry_site.api import schema  # noqa: F401
