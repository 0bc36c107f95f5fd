"""OPTIONS answers for API views that keep their input serializer as `InputSerializer`.

DRF's SimpleMetadata asks `view.get_serializer()` for the fields a POST takes; our views
follow the one-serializer-per-direction style (no `serializer_class`), which made OPTIONS
a 500 for anyone allowed to POST. This metadata describes `InputSerializer` instead.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import clone_request


class InputSerializerMetadata(SimpleMetadata):
    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        serializer_class = getattr(view, "InputSerializer", None)
        if serializer_class is None:
            return {}
        actions = {}
        for method in {"PUT", "POST", "PATCH"} & set(view.allowed_methods):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
            except (exceptions.APIException, PermissionDenied, Http404):
                continue
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(serializer_class())
        return actions
