"""Fixtures for the API tests: token clients per persona and a small trained model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.solubility import solubility_setup


@pytest.fixture
def api_for() -> Callable[[Any], APIClient]:
    """An API client authenticated with the user's DRF token (None: anonymous)."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def trained(settings: Any, tmp_path: Any, lead: Any, scientist: Any) -> dict[str, Any]:
    """The solubility slice with a small trained model v1 (a few seconds)."""
    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup(labeled=40, pool=40, validation=20)
    data.update(lead=lead, scientist=scientist)
    return data
