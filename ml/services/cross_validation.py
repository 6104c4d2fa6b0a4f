"""Cross-validation runs: K fold models give every train and val item of a snapshot a probability from a model that
never saw it, the final model (a plain run's) gives the test items theirs, and confident learning ranks the items
whose label looks wrong (``LabelIssue``)."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from core.services.jobs import JobCancelled, JobExecution
from curation.models import LabelClass, Snapshot, SnapshotItem, Split
from curation.selectors.split_units import snapshot_item_group_keys
from curation.services.storage import stored_files_local
from ml.models import CrossValPrediction, LabelIssue, ModelVersion, TrainingRun
from ml.training.folds import MAX_FOLDS, fold_refusals

INSERT_BATCH = 1000


@dataclass(frozen=True)
class SnapshotRow:
    image_id: int
    label_id: int
    position: int  # the label's output index (class_names order)
    split: str
    group_keys: tuple[str, ...]


def snapshot_rows(snapshot: Snapshot) -> tuple[list[str], list[LabelClass], list[SnapshotRow]]:
    """Class codes in index order (model output order), the classes, and every item with its grouping keys."""
    label_ids = set(SnapshotItem.objects.filter(snapshot=snapshot).values_list("label_id", flat=True).distinct())
    classes = list(LabelClass.objects.filter(pk__in=label_ids).order_by("index"))
    position = {label.pk: i for i, label in enumerate(classes)}
    keys = snapshot_item_group_keys(snapshot)
    rows = [
        SnapshotRow(image_id, label_id, position[label_id], split, tuple(keys.get(image_id, ())))
        for image_id, label_id, split in SnapshotItem.objects.filter(snapshot=snapshot)
        .order_by("pk")
        .values_list("image_id", "label_id", "split")
    ]
    return [label.code for label in classes], classes, rows


def cross_val_refusals(*, snapshot: Snapshot, k: int) -> list[str]:
    """Why this snapshot's train and val items cannot be cut into k grouped folds (checked before queuing)."""
    if not 2 <= k <= MAX_FOLDS:
        return [f"The number of folds must lie between 2 and {MAX_FOLDS}; got {k}."]
    class_names, _, rows = snapshot_rows(snapshot)
    folded = [row for row in rows if row.split != Split.TEST]
    return fold_refusals([row.position for row in folded], [row.group_keys for row in folded], k, class_names)


class _CrossValReporter:
    """Epochs of the K fold trainings and the final one, as one progress bar and one history on the run."""

    def __init__(self, run: TrainingRun, execution: JobExecution, trainings: int):
        self.run = run
        self.execution = execution
        self.trainings = trainings

    def on_epoch_end(self, epoch: dict) -> None:
        fold = epoch.get("fold")
        training = (fold - 1) if fold else self.trainings - 1
        per_training = epoch.get("epochs_total") or 1
        self.run.history = [
            *self.run.history,
            {**{k: v for k, v in epoch.items() if k not in ("epochs_total", "stage_epochs", "folds")}, "fold": fold},
        ]
        self.execution.progress(
            done=training * per_training + epoch.get("epoch", 0),
            total=self.trainings * per_training,
            fields={"history": self.run.history},
            stage=epoch.get("stage"),
            epoch=epoch.get("epoch"),
            fold=fold,
            folds=self.trainings - 1,
            training="final model" if not fold else f"fold {fold} of {self.trainings - 1}",
            loss=epoch.get("loss"),
            val_loss=epoch.get("val_loss"),
            val_accuracy=epoch.get("val_accuracy"),
        )


def cross_validation_execute(*, run: TrainingRun, execution: JobExecution) -> None:
    """The work of a claimed cross-validation run, inside its ``job_running``: K fold models, then the final model;
    everything is stored in one transaction at the end (a failed or killed run leaves no partial predictions)."""
    from ml.services.models import model_version_create
    from ml.services.runs import model_version_record_test_evaluations
    from ml.training import TrainingCancelled, config_from_dict, train
    from ml.training.crossval import CrossValItem, cross_validate

    class_names, _, rows = snapshot_rows(run.snapshot)
    names = dict(SnapshotItem.objects.filter(snapshot=run.snapshot).values_list("image_id", "image__sanitized"))
    try:
        paths = stored_files_local(
            [names[row.image_id] for row in rows], cache=Path(settings.ML_WORK_DIR) / "image-cache"
        )
    except FileNotFoundError as error:
        image_id = next(row.image_id for row in rows if names[row.image_id] == error.filename)
        raise FileNotFoundError(f"Image {image_id} is missing from storage ({error.filename}).") from error
    path_of = {row.image_id: path for row, path in zip(rows, paths, strict=True)}
    folded = [row for row in rows if row.split != Split.TEST]
    config = config_from_dict(run.config)
    reporter = _CrossValReporter(run, execution, trainings=run.cross_val + 1)
    common = {
        "class_names": class_names,
        "base_weights": settings.ML_BASE_WEIGHTS,
        "on_epoch_end": reporter.on_epoch_end,
        "should_stop": execution.should_stop,
    }
    try:
        folds = cross_validate(
            config,
            items=[CrossValItem(path_of[r.image_id], r.position, r.split, r.group_keys) for r in folded],
            k=run.cross_val,
            output_dir=execution.scratch / "folds",
            **common,
        )
        by_split = {split: [(path_of[r.image_id], r.position) for r in rows if r.split == split] for split in Split}
        final = train(
            config,
            train_items=by_split[Split.TRAIN],
            val_items=by_split[Split.VAL],
            test_items=by_split[Split.TEST],
            output_dir=execution.scratch / "final",
            extra_metadata={"snapshot": run.snapshot_id, "snapshot_hash": run.snapshot.content_hash, "run": run.pk},
            **common,
        )
    except TrainingCancelled as cancelled:
        raise JobCancelled(str(cancelled)) from cancelled
    from ml.training.calibrate import apply_temperature

    tested = [row for row in rows if row.split == Split.TEST]
    test_calibrated = apply_temperature(final.test_probabilities, final.temperature)
    predictions = [
        CrossValPrediction(
            run=run,
            image_id=row.image_id,
            split=row.split,
            fold=fold + 1,
            given_label_id=row.label_id,
            probabilities=[float(p) for p in raw],
            calibrated=[float(p) for p in calibrated],
        )
        for row, fold, raw, calibrated in zip(folded, folds.folds, folds.probabilities, folds.calibrated, strict=True)
    ] + [
        CrossValPrediction(
            run=run,
            image_id=row.image_id,
            split=row.split,
            fold=None,
            given_label_id=row.label_id,
            probabilities=[float(p) for p in raw],
            calibrated=[float(p) for p in calibrated],
        )
        for row, raw, calibrated in zip(tested, final.test_probabilities, test_calibrated, strict=True)
    ]
    with transaction.atomic():
        version = model_version_create(run=run, result=final)
        model_version_record_test_evaluations(version=version, result=final, execution=execution)
        CrossValPrediction.objects.bulk_create(predictions, batch_size=INSERT_BATCH)
        label_issues_store(run=run)
        TrainingRun.objects.filter(pk=run.pk).update(cross_val_report=folds.fold_reports)
        execution.succeed()


@transaction.atomic
def label_issues_store(*, run: TrainingRun) -> int:
    """Rank the run's suspected label errors (cleanlab over the calibrated probabilities of every item) and store
    them, replacing any the run had. Worker side: imports cleanlab. Returns how many were found."""
    from ml.training.label_errors import find_label_errors

    codes = ModelVersion.objects.get(run=run).class_map
    predictions = list(run.cross_val_predictions.order_by("pk").values_list("image_id", "given_label_id", "calibrated"))
    if not predictions:
        return 0
    classes = {label.code: label for label in LabelClass.objects.all()}
    ordered = [classes[codes[str(index)]] for index in range(len(codes))]
    position = {label.pk: index for index, label in enumerate(ordered)}
    labels = [position[label_id] for _, label_id, _ in predictions]
    found = find_label_errors(labels, [calibrated for _, _, calibrated in predictions])
    LabelIssue.objects.filter(run=run).delete()
    LabelIssue.objects.bulk_create(
        [
            LabelIssue(
                run=run,
                snapshot_id=run.snapshot_id,
                image_id=predictions[issue.index][0],
                label_id=predictions[issue.index][1],
                suggested=ordered[issue.suggested],
                score=issue.score,
                rank=rank,
            )
            for rank, issue in enumerate(found, start=1)
        ],
        batch_size=INSERT_BATCH,
    )
    return len(found)
