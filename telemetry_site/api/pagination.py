"""List endpoints page with `limit` and `offset`: 100 rows by default, 1,000 at most."""

from rest_framework.pagination import LimitOffsetPagination

# The furthest `offset` a list takes: far past any real list, and well inside the database's
# integers (a larger one is a 400 naming it, not an overflow).
MAX_OFFSET = 10_000_000


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000
