"""Fixtures for the API tests: a small trained model (token clients: tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.solubility import solubility_setup


@pytest.fixture
def trained(settings: Any, tmp_path: Any, lead: Any, scientist: Any) -> dict[str, Any]:
    """The solubility slice with a small trained model v1 (a few seconds)."""
    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup(labeled=40, pool=40, validation=20)
    data.update(lead=lead, scientist=scientist)
    return data
