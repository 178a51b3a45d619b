"""Who may call an endpoint: a token with the view's scope, or a logged-in browser session.

Token authentication (accounts.auth) sets `request.auth` to the token, which answers
`has_scope()`; a session sets it to None. Checking that shape keeps this module app-free.
"""

from rest_framework import permissions


def _is_token(auth) -> bool:
    return auth is not None and hasattr(auth, "has_scope")


class TokenHasScope(permissions.BasePermission):
    """Token requests need the view's `required_scope`; session requests are the user's own."""

    message = "This API token lacks the required scope."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not _is_token(token):
            return bool(request.user and request.user.is_authenticated)
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return True
        if not token.has_scope(scope):
            self.message = f"This API token lacks the '{scope}' scope."
            return False
        return True


class SessionOnly(permissions.BasePermission):
    """Endpoints that change what a team shares take a logged-in session, never a token."""

    message = "This takes a logged-in browser session, not an API token."

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and not _is_token(request.auth)
