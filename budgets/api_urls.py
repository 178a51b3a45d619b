"""REST API routes of budgets, under /api/v1/."""

from django.urls import path

from budgets import api

urlpatterns = [
    path("budgets/", api.BudgetListView.as_view(), name="api-budgets"),
]
