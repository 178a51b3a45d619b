"""allauth adapter: only allow-listed addresses or active members may log in; no sign-up form."""

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # Accounts are created from the allow-list at first login, never by a sign-up form.
        return False
