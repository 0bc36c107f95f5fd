import factory
from django.contrib.auth import get_user_model

from compounds import chemistry
from compounds.models import Assay, Compound, Dataset, Measurement, TaskType

# Small, distinct, valid molecules for factories (cycled through).
SMILES = [
    "CCO", "CCCO", "CCCCO", "c1ccccc1", "Cc1ccccc1", "CCc1ccccc1", "c1ccncc1", "c1ccc2ccccc2c1",
    "CC(=O)O", "CCC(=O)O", "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "CCN(CC)CC",
    "C1CCCCC1", "C1CCNCC1", "OC1CCCCC1", "Clc1ccccc1", "Brc1ccccc1", "Oc1ccccc1", "Nc1ccccc1",
    "CC(C)O", "CC(C)CO", "CCOC(=O)C", "COc1ccccc1", "CC#N", "O=C1CCCCC1", "c1ccoc1", "c1ccsc1",
    "CCCCCCO", "CCCCCCCO", "OCCO", "NCCO", "CNC", "CCNC", "CC(N)=O", "NC(=O)c1ccccc1",
]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password("pw-for-tests")


def _nth_smiles(n: int) -> str:
    if n < len(SMILES):
        return SMILES[n]
    # Beyond the list: distinct alkyl alcohols/ethers, valid and unique for n < 150.
    return "C" * (n % 40 + 2) + "O" * (n // 40 % 3 + 1)


class CompoundFactory(factory.django.DjangoModelFactory):
    """Builds a registered compound through the real chemistry (no faked fingerprints)."""

    class Meta:
        model = Compound

    smiles = factory.Sequence(_nth_smiles)
    name = factory.Sequence(lambda n: f"cmpd-{n}")

    @classmethod
    def _create(cls, model_class, *args, smiles: str, name: str = "", **kwargs):  # type: ignore[no-untyped-def]
        rec = chemistry.process_smiles(smiles)
        obj, _ = model_class.objects.get_or_create(
            inchikey=rec.inchikey,
            defaults=dict(
                smiles=rec.smiles,
                canonical_smiles=rec.canonical_smiles,
                fingerprint=rec.fingerprint,
                name=name,
                **rec.properties(),
                **kwargs,
            ),
        )
        return obj


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")


class AssayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assay

    name = factory.Sequence(lambda n: f"assay-{n}")
    task_type = TaskType.REGRESSION
    units = "logS"


class MeasurementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Measurement

    compound = factory.SubFactory(CompoundFactory)
    assay = factory.SubFactory(AssayFactory)
    value = 1.0


class ValidationSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "mlmodels.ValidationSet"

    assay = factory.SubFactory(AssayFactory)
    name = factory.Sequence(lambda n: f"validation-{n}")


class MLModelFactory(factory.django.DjangoModelFactory):
    """A model row without an artifact: enough for queue tests that never predict."""

    class Meta:
        model = "mlmodels.MLModel"

    name = factory.Sequence(lambda n: f"model-{n}")
    assay = factory.SubFactory(AssayFactory)
    validation_set = factory.SubFactory(ValidationSetFactory, assay=factory.SelfAttribute("..assay"))
    status = "active"


class LabelQueueItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "labeling.LabelQueueItem"

    compound = factory.SubFactory(CompoundFactory)
    model = factory.SubFactory(MLModelFactory)
    selection_strategy = "uncertainty"
    selection_batch = 1
    priority_score = factory.Sequence(lambda n: float(1000 - n))
    prediction = 0.5
    uncertainty = 0.2
