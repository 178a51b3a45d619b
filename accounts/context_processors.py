"""Puts the viewer's membership (team, role) into every template."""


def membership(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"membership": None}
    return {"membership": user.team_membership}
