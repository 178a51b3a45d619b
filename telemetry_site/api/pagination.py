"""List endpoints page with `limit` and `offset`: 100 rows by default, 1,000 at most."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000
