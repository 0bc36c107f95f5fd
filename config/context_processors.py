from typing import Any

from django.http import HttpRequest

from config.roles import user_roles


def roles(request: HttpRequest) -> dict[str, Any]:
    """Expose the signed-in user's roles so templates show only the buttons they may use."""
    user = getattr(request, "user", None)
    r = user_roles(user) if user is not None else frozenset()
    return {
        "roles": r,
        "is_lead": "lead" in r,
        "is_scientist": "scientist" in r or "lead" in r,
    }
