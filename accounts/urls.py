"""Login (magic link and code), logout, profile and token pages."""

from django.urls import include, path

urlpatterns = [
    path("", include("allauth.urls")),
]
