"""Base pieces of read endpoints: the read scope and throttle, validated query strings, ids
taken from paths."""

import uuid

from rest_framework import exceptions

from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import ReadThrottle


class ReadView:
    """Mixin of every read endpoint: a token with the `read` scope (or a session), read rate."""

    permission_classes = [TokenHasScope]
    required_scope = "read"
    throttle_classes = [ReadThrottle]


def path_uuid(value: str) -> uuid.UUID:
    """An id from a URL path; a malformed one is a JSON 404 like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise exceptions.NotFound("Not found.") from None


def validated(serializer_class, request) -> dict:
    """The query string checked by `serializer_class`, empty values left out; 400 when bad."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if v not in (None, "")}
