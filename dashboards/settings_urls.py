"""Routes of the subscriptions settings page (/settings/subscriptions/)."""

from django.urls import path

from dashboards.views import subscriptions

urlpatterns = [
    path("", subscriptions.subscriptions, name="subscriptions"),
    path("<uuid:public_id>/", subscriptions.subscription_edit, name="subscription_edit"),
    path(
        "<uuid:public_id>/default/",
        subscriptions.subscription_default,
        name="subscription_default",
    ),
    path(
        "<uuid:public_id>/delete/",
        subscriptions.subscription_delete,
        name="subscription_delete",
    ),
]
