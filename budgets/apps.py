from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "budgets"
    verbose_name = "Budgets and alerts"

    def ready(self) -> None:
        # Connects the receivers of usage's events and of new deliveries (imported in ready()).
        from budgets import receivers  # noqa: F401
