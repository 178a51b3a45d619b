"""Budget and channel pages."""

from django.urls import path

from budgets import views

urlpatterns = [
    path("", views.budgets_page, name="budgets"),
    path("new/", views.budget_create, name="budget_create"),
    path("<uuid:public_id>/edit/", views.budget_edit, name="budget_edit"),
    path("<uuid:public_id>/delete/", views.budget_delete, name="budget_delete"),
    path("alert-settings/", views.alert_settings, name="alert_settings"),
    path("quota-enforcement/", views.quota_enforcement, name="quota_enforcement"),
    path("exemptions/new/", views.exemption_create, name="exemption_create"),
    path("exemptions/<uuid:public_id>/delete/", views.exemption_delete, name="exemption_delete"),
    path("reports/", views.reports_page, name="reports"),
    path("reports/preview/", views.report_preview, name="report_preview"),
    path("reports/<uuid:public_id>/chargeback.csv", views.report_csv, name="report_csv"),
    path("reports/unsubscribe/<str:token>/", views.report_unsubscribe, name="report_unsubscribe"),
    path("channels/", views.channels_page, name="channels"),
    path("channels/new/", views.channel_create, name="channel_create"),
    path("channels/<uuid:public_id>/edit/", views.channel_edit, name="channel_edit"),
    path("channels/<uuid:public_id>/delete/", views.channel_delete, name="channel_delete"),
    path("channels/<uuid:public_id>/test/", views.channel_test, name="channel_test"),
    path("channels/<uuid:public_id>/enable/", views.channel_enable, name="channel_enable"),
    path(
        "channels/<uuid:public_id>/rotate-secret/",
        views.channel_rotate_secret,
        name="channel_rotate_secret",
    ),
]
