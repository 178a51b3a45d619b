"""Routes of the subscriptions settings page (/settings/subscriptions/)."""

from django.urls import path

from usage import views_settings

urlpatterns = [
    path("", views_settings.subscriptions, name="subscriptions"),
    path("<uuid:public_id>/", views_settings.subscription_edit, name="subscription_edit"),
    path(
        "<uuid:public_id>/default/",
        views_settings.subscription_default,
        name="subscription_default",
    ),
    path(
        "<uuid:public_id>/delete/",
        views_settings.subscription_delete,
        name="subscription_delete",
    ),
]
