"""Budget and channel pages."""

urlpatterns: list = []
