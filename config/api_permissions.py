"""API permissions from the three roles (lead ⊃ scientist ⊃ viewer), as on the HTML side.

Anonymous requests fail these checks with 401 (DRF asks the first authenticator,
TokenAuthentication, for a `WWW-Authenticate` header); authenticated users
without the role get 403. Finer rules (a scientist may label only their own or
unassigned items) are enforced by the services, so HTML, API and admin agree.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from config.roles import LEAD, SCIENTIST, VIEWER, has_role


class _RolePermission(BasePermission):
    role = VIEWER
    message = "This needs the viewer role."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and has_role(user, self.role))


class IsViewer(_RolePermission):
    """Read access: every role."""

    role = VIEWER
    message = "This needs the viewer, scientist or lead role."


class IsScientist(_RolePermission):
    """Labeling work and new compounds/measurements: scientists and leads."""

    role = SCIENTIST
    message = "This needs the scientist or lead role."


class IsLead(_RolePermission):
    """Select, assign, retrain, retry, import, assays: leads only."""

    role = LEAD
    message = "Only leads can do this."


class ReadViewerWriteScientist(BasePermission):
    """GET for viewers, writes for scientists (collections both listed and created)."""

    message = "Reading needs the viewer role; writing needs the scientist or lead role."

    def has_permission(self, request: Any, view: Any) -> bool:
        role = VIEWER if request.method in SAFE_METHODS else SCIENTIST
        user = request.user
        return bool(user and user.is_authenticated and has_role(user, role))


class ReadViewerWriteLead(BasePermission):
    """GET for viewers, writes for leads."""

    message = "Reading needs the viewer role; writing is for leads only."

    def has_permission(self, request: Any, view: Any) -> bool:
        role = VIEWER if request.method in SAFE_METHODS else LEAD
        user = request.user
        return bool(user and user.is_authenticated and has_role(user, role))
