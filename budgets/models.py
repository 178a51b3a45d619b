"""Budgets, notification channels, alerts and their deliveries."""
