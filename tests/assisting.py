"""factory_boy factories for what a model says about images: a model version (no artifact needed to read its
scores) and its stored per-image scores, as the scoring job writes them."""

import itertools

import factory
from django.utils import timezone

from curation.models import Snapshot
from ml.models import ImageScore, ModelVersion, TrainingRun

_counter = itertools.count()


class EmptySnapshotFactory(factory.django.DjangoModelFactory):
    """A frozen snapshot row without items: what a model version must point at."""

    class Meta:
        model = Snapshot

    name = factory.LazyFunction(lambda: f"snapshot-{next(_counter)}")
    seed = 0
    ratios = [0.8, 0.1, 0.1]
    content_hash = factory.LazyFunction(lambda: f"{next(_counter):064x}")
    stats = factory.LazyFunction(dict)
    item_count = 0
    created_at = factory.LazyFunction(timezone.now)


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    snapshot = factory.SubFactory(EmptySnapshotFactory)
    preset = "tiny"
    config = factory.LazyFunction(dict)
    config_hash = factory.LazyFunction(lambda: f"run-{next(_counter)}")
    status = "succeeded"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A model version whose outputs are `codes`, in that order; `production=True` promotes it."""

    class Meta:
        model = ModelVersion

    class Params:
        codes = ("eczema", "melanoma", "melanocytic_nevi")
        production = factory.Trait(is_production=True, promoted_at=factory.LazyFunction(timezone.now))

    run = factory.SubFactory(TrainingRunFactory)
    snapshot = factory.SelfAttribute("run.snapshot")
    snapshot_hash = factory.SelfAttribute("snapshot.content_hash")
    config = factory.LazyFunction(dict)
    class_map = factory.LazyAttribute(lambda o: {str(index): code for index, code in enumerate(o.codes)})
    artifact = factory.LazyAttribute(lambda o: f"models/run-{o.run.pk}/model.keras")
    artifact_sha256 = "0" * 64
    artifact_size = 1
    metrics = factory.LazyAttribute(
        lambda o: {
            "macro_f1": 0.7,
            "per_class": [
                {"code": code, "precision": 0.5 + index / 20, "recall": 0.6 + index / 20, "f1": 0.55, "support": 10}
                for index, code in enumerate(o.codes)
            ],
        }
    )


def _top(calibrated) -> int:
    return max(range(len(calibrated)), key=lambda index: (calibrated[index], -index))


class ImageScoreFactory(factory.django.DjangoModelFactory):
    """`calibrated` in the version's output order; the top class follows from it."""

    class Meta:
        model = ImageScore

    model_version = factory.SubFactory(ModelVersionFactory)
    image = factory.SubFactory("tests.factories.ImageFactory")
    calibrated = (0.5, 0.3, 0.2)
    probabilities = factory.SelfAttribute("calibrated")
    top_index = factory.LazyAttribute(lambda o: _top(o.calibrated))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs["calibrated"] = [float(p) for p in kwargs["calibrated"]]
        kwargs["probabilities"] = [float(p) for p in kwargs["probabilities"]]
        return super()._create(model_class, *args, **kwargs)
