import pytest

from tests.samples import labeled_demo_snapshot

# Small and quick: one epoch per stage at the tiny preset's 32 px.
QUICK = {"stage1_epochs": 1, "stage2_epochs": 1, "batch_size": 4}


@pytest.fixture
def trainable_snapshot(tmp_path):
    """A real snapshot of imported, labeled pictures of three classes (files in storage)."""
    return labeled_demo_snapshot(
        tmp_path / "set", name="train-me", per_class=8, size=(64, 64), classes=[1, 2, 5], ratios=[0.5, 0.25, 0.25]
    )


# Classes of the demo drawings the trained test models know, in output order (their taxonomy index order).
MODEL_CLASSES = ["eczema", "melanoma", "melanocytic_nevi"]
MODEL_CLASS_INDEXES = [1, 2, 5]


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory):
    """Two tiny models, made once per session, whose probabilities differ: {"a": TrainingResult, "b": ...}.

    "a" is trained through the library on drawn lesions. "b" is "a" with its output units in reverse order (a real,
    loadable Keras model, at no second training's cost). Tests store them as model versions."""
    import dataclasses

    import keras

    from curation.demo_images import write_demo_dataset
    from ml.training import config_from_preset, train

    folder = tmp_path_factory.mktemp("lesions")
    paths = write_demo_dataset(folder, per_class=10, size=(80, 64), classes=MODEL_CLASS_INDEXES)
    by_class = [[str(path) for path in paths if f"demo_{index:02d}_" in path.name] for index in MODEL_CLASS_INDEXES]
    splits = {"train": [], "val": [], "test": []}
    for label, class_paths in enumerate(by_class):
        splits["train"] += [(path, label) for path in class_paths[:6]]
        splits["val"] += [(path, label) for path in class_paths[6:8]]
        splits["test"] += [(path, label) for path in class_paths[8:]]
    first = train(
        config_from_preset("tiny", {**QUICK, "stage2_epochs": 0, "seed": 1}),  # one stage: half the tracing
        train_items=splits["train"],
        val_items=splits["val"],
        test_items=splits["test"],
        class_names=MODEL_CLASSES,
        output_dir=tmp_path_factory.mktemp("model_a"),
        base_weights="none",
    )
    model = keras.models.load_model(first.model_path)
    output = model.get_layer("predictions")
    kernel, bias = output.get_weights()
    output.set_weights([kernel[:, ::-1], bias[::-1]])
    second_path = tmp_path_factory.mktemp("model_b") / "model.keras"
    model.save(second_path)
    return {"a": first, "b": dataclasses.replace(first, model_path=second_path)}


def store_model_version(result, *, snapshot, macro_f1: float | None = None, production: bool = False):
    """A ModelVersion row for a trained library result, its file in storage (no training run needed)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from ml.models import ModelVersion, TrainingRun
    from ml.services.models import file_sha256

    run = TrainingRun.objects.create(
        snapshot=snapshot,
        preset="tiny",
        config=result.config,
        config_hash=f"test-{TrainingRun.objects.count()}",
        status="succeeded",
    )
    artifact = default_storage.save(f"models/run-{run.pk}/model.keras", ContentFile(result.model_path.read_bytes()))
    metrics = dict(result.metrics)
    if macro_f1 is not None:
        metrics["macro_f1"] = macro_f1
    return ModelVersion.objects.create(
        run=run,
        snapshot=snapshot,
        snapshot_hash=snapshot.content_hash,
        config=result.config,
        class_map={str(i): code for i, code in enumerate(result.class_names)},
        artifact=artifact,
        artifact_sha256=file_sha256(result.model_path),
        artifact_size=result.model_path.stat().st_size,
        metrics=metrics,
        temperature=result.temperature,
        calibration=result.calibration,
        is_production=production,
    )
