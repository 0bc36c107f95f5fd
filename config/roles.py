"""The three roles (Django groups) and how they nest: lead ⊃ scientist ⊃ viewer."""

from typing import Any

VIEWER = "viewer"
SCIENTIST = "scientist"
LEAD = "lead"
ROLES = (VIEWER, SCIENTIST, LEAD)

# Each role's permissions (app_label.codename). Created by compounds' data migration
# and extended by later apps' migrations.
_RANK = {VIEWER: 0, SCIENTIST: 1, LEAD: 2}


def user_roles(user: Any) -> frozenset[str]:
    """Roles a user effectively holds; a superuser holds all, a lead also acts as scientist."""
    if user is None or not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return frozenset(ROLES)
    cached = getattr(user, "_chemloop_roles", None)
    if cached is not None:
        return cached
    names = set(user.groups.values_list("name", flat=True)) & set(ROLES)
    rank = max((_RANK[n] for n in names), default=-1)
    result = frozenset(r for r, k in _RANK.items() if k <= rank)
    user._chemloop_roles = result
    return result


def has_role(user: Any, role: str) -> bool:
    return role in user_roles(user)


def login_redirect(request: Any) -> Any:
    """Send an anonymous user (or one whose session expired) to login, and back afterwards.

    An htmx request would follow a plain 302 and swap the login page into its target
    (and "back" would be a POST-only URL): it gets an HX-Redirect to login with next= the
    page the browser shows instead, so the whole window goes there and comes back.
    """
    from django.contrib.auth.views import redirect_to_login
    from django_htmx.http import HttpResponseClientRedirect

    htmx = getattr(request, "htmx", None)
    if htmx:
        page = htmx.current_url_abs_path  # None when the page is on another origin
        if page is None and request.method == "GET":
            page = request.get_full_path()
        return HttpResponseClientRedirect(redirect_to_login(page or "/")["Location"])
    return redirect_to_login(request.get_full_path())


def role_required(role: str):  # type: ignore[no-untyped-def]
    """View decorator: anonymous users go to login, users without the role get 403."""
    from functools import wraps

    from django.core.exceptions import PermissionDenied as DjangoPermissionDenied

    def decorator(view):  # type: ignore[no-untyped-def]
        @wraps(view)
        def wrapper(request, *args, **kwargs):  # type: ignore[no-untyped-def]
            if not request.user.is_authenticated:
                return login_redirect(request)
            if not has_role(request.user, role):
                raise DjangoPermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
