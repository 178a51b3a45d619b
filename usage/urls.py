"""Dashboard page routes."""

from django.urls import path

from usage import views

urlpatterns = [
    path("", views.overview, name="overview"),
]
