"""Fixtures shared by the reliability tests."""

import pytest

from tests.solubility import solubility_setup


@pytest.fixture
def loop(settings, tmp_path, lead, scientist):  # type: ignore[no-untyped-def]
    """The solubility loop (assay, trained model, a labeling cycle) with a lead and a scientist."""
    settings.ARTIFACT_ROOT = tmp_path
    data = solubility_setup()
    data.update(lead=lead, scientist=scientist)
    return data
