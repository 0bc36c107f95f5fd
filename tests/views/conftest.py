import pytest

from compounds.models import TaskType
from cycles.models import ActiveLearningCycle
from tests.factories import AssayFactory, LabelQueueItemFactory, MLModelFactory


@pytest.fixture
def model(db):  # type: ignore[no-untyped-def]
    return MLModelFactory(name="Solubility", assay=AssayFactory(name="logS", units="log mol/L"))


@pytest.fixture
def class_model(db):  # type: ignore[no-untyped-def]
    assay = AssayFactory(name="Sol class", task_type=TaskType.CLASSIFICATION, classes=["low", "medium", "high"], units="")
    return MLModelFactory(name="Sol class model", assay=assay)


@pytest.fixture
def cycle(model):  # type: ignore[no-untyped-def]
    return ActiveLearningCycle.objects.create(
        model=model, cycle_number=1, selection_strategy="hybrid", batch_size=5, status="labeling",
        strategy_params={"weights": {"uncertainty": 0.5, "margin": 0.3, "applicability": 0.2}},
    )


@pytest.fixture
def items(model, cycle):  # type: ignore[no-untyped-def]
    """Five open items of one cycle, best first."""
    return [
        LabelQueueItemFactory(
            model=model, cycle=cycle, priority_score=10.0 - i, prediction=-2.0 + i / 10, uncertainty=0.3,
            applicability_distance=0.2,
            score_components={"rank": i, "score": 10.0 - i, "uncertainty": 0.3, "uncertainty_normalized": 0.8},
        )
        for i in range(5)
    ]
