from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage"

    def ready(self) -> None:
        # Connects the receivers that queue derived work (Django's advice: import in ready()).
        from usage import receivers  # noqa: F401
        from usage.ingest.otlp import receivers as otlp_receivers  # noqa: F401
