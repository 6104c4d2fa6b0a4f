"""Training runs: requested by a curator, claimed and run by a worker on the `training` queue."""

import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.services.jobs import JobCancelled, JobExecution, job_claim, job_enqueue, job_queue_check, job_running
from curation.models import LabelClass, Snapshot, SnapshotItem
from curation.services.storage import stored_files_local
from ml.models import TrainingRun
from ml.services.cross_validation import cross_val_refusals, cross_validation_execute
from ml.training.config import PRESETS, ConfigError, config_from_dict, config_from_preset, config_hash

logger = logging.getLogger(__name__)


def training_run_request(
    *,
    snapshot: Snapshot,
    preset: str = "seed",
    config: dict | None = None,
    cross_val: int | None = None,
    created_by=None,
    sync: bool = False,
) -> tuple[TrainingRun, bool]:
    """Queue a run (returns it and True), or return the run already queued or running for the
    same snapshot, config and folds (and False). With `sync` the caller runs it itself (no task is sent).

    With `cross_val` K (2 or more) it is a cross-validation run: K fold models on the train and val items, then the
    final model as a plain run trains it (see ``ml.services.cross_validation``)."""
    if preset not in PRESETS:
        raise ValidationError(f"Unknown preset {preset!r}. Known: {', '.join(PRESETS)}.")
    try:
        resolved = config_from_preset(preset, config or {})
    except ConfigError as error:
        raise ValidationError(str(error)) from error
    _check_snapshot_trainable(snapshot)
    folds = cross_val or 0
    if cross_val is not None:
        refusals = cross_val_refusals(snapshot=snapshot, k=cross_val)
        if refusals:
            raise ValidationError(refusals)
    digest = config_hash(resolved)
    same = {"snapshot": snapshot, "config_hash": digest, "cross_val": folds}
    existing = TrainingRun.objects.active().filter(**same).first()
    if existing:
        return existing, False
    if not sync:
        job_queue_check()  # no row while the broker is down
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                snapshot=snapshot,
                preset=preset,
                config=resolved.to_dict(),
                config_hash=digest,
                cross_val=folds,
                created_by=created_by,
                # A run the caller trains itself is never sent to the queue (nor by the beat task).
                dispatched_at=timezone.now() if sync else None,
            )
            if not sync:
                job_enqueue(run)
    except IntegrityError:
        # Another request for the same run won the race.
        return TrainingRun.objects.active().get(**same), False
    return run, True


def _check_snapshot_trainable(snapshot: Snapshot) -> None:
    per_split = snapshot.stats.get("per_split", {})
    classes_in_train = [code for code, row in snapshot.stats.get("per_class", {}).items() if row.get("train")]
    problems = []
    if len(classes_in_train) < 2:
        problems.append("at least two classes in the train split")
    for split in ("val", "test"):
        if not per_split.get(split):
            problems.append(f"images in the {split} split")
    if problems:
        raise ValidationError(f"Snapshot {snapshot.name!r} cannot be trained on: it needs {' and '.join(problems)}.")


class _RunReporter:
    """Epoch progress and history onto the run row, in one UPDATE per epoch."""

    def __init__(self, run: TrainingRun, execution: JobExecution):
        self.run = run
        self.execution = execution

    def on_epoch_end(self, epoch: dict) -> None:
        self.run.history = [
            *self.run.history,
            {k: v for k, v in epoch.items() if k not in ("epochs_total", "stage_epochs")},
        ]
        self.execution.progress(
            done=epoch.get("epoch", 0),
            total=epoch.get("epochs_total") or 1,
            fields={"history": self.run.history},
            stage=epoch.get("stage"),
            epoch=epoch.get("epoch"),
            eta_seconds=epoch.get("eta_seconds"),
            learning_rate=epoch.get("learning_rate"),
            loss=epoch.get("loss"),
            accuracy=epoch.get("accuracy"),
            val_loss=epoch.get("val_loss"),
            val_accuracy=epoch.get("val_accuracy"),
        )


def snapshot_training_items(snapshot: Snapshot) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Class codes in index order (model output order) and (local image path, class position) per split.

    Files come from storage: on a local disk they are used where they lie; from a bucket they are
    downloaded once into ML_WORK_DIR, many at a time. A file missing from storage stops the run with
    its name.
    """
    label_ids = set(SnapshotItem.objects.filter(snapshot=snapshot).values_list("label_id", flat=True).distinct())
    classes = list(LabelClass.objects.filter(pk__in=label_ids).order_by("index"))
    position = {label.pk: i for i, label in enumerate(classes)}
    rows = list(
        SnapshotItem.objects.filter(snapshot=snapshot)
        .order_by("pk")
        .values_list("image_id", "image__sanitized", "label_id", "split")
    )
    try:
        paths = stored_files_local([name for _, name, _, _ in rows], cache=Path(settings.ML_WORK_DIR) / "image-cache")
    except FileNotFoundError as error:
        image_id = next(image_id for image_id, name, _, _ in rows if name == error.filename)
        raise FileNotFoundError(f"Image {image_id} is missing from storage ({error.filename}).") from error
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for (_, _, label_id, split), path in zip(rows, paths, strict=True):
        splits[split].append((path, position[label_id]))
    return [label.code for label in classes], splits


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Claim and run a training run to its end; the row records the outcome whatever happens.

    None when the run is not queued (a redelivered task).
    """
    run = job_claim(model=TrainingRun, job_id=run_id)
    if run is None:
        return None
    try:
        with job_running(run) as execution:
            if run.cross_val:
                cross_validation_execute(run=run, execution=execution)
            else:
                _train_plain(run, execution)
    except Exception:  # recorded on the run, with its traceback, for the curator; the worker goes on
        logger.info("training run %s failed; see its row", run.pk)
    run.refresh_from_db()
    return run


def _train_plain(run: TrainingRun, execution: JobExecution) -> None:
    from ml.services.models import model_version_create
    from ml.training import TrainingCancelled, train

    reporter = _RunReporter(run, execution)
    class_names, splits = snapshot_training_items(run.snapshot)
    try:
        result = train(
            config_from_dict(run.config),
            train_items=splits["train"],
            val_items=splits["val"],
            test_items=splits["test"],
            class_names=class_names,
            output_dir=execution.scratch / "output",
            base_weights=settings.ML_BASE_WEIGHTS,
            on_epoch_end=reporter.on_epoch_end,
            should_stop=execution.should_stop,
            extra_metadata={
                "snapshot": run.snapshot_id,
                "snapshot_hash": run.snapshot.content_hash,
                "run": run.pk,
            },
        )
    except TrainingCancelled as cancelled:
        raise JobCancelled(str(cancelled)) from cancelled
    with transaction.atomic():
        version = model_version_create(run=run, result=result)
        model_version_record_test_evaluations(version=version, result=result, execution=execution)
        execution.succeed()


def model_version_record_test_evaluations(*, version, result, execution: JobExecution | None = None) -> None:
    """Store a new version's per-image test probabilities and its evaluations: on its own snapshot's test split
    (the library's metrics) and on the lineage's protected test split, scoring the lineage's test images that its
    own snapshot does not hold (older snapshots' test images, labels as the newest snapshot has them)."""
    from curation.selectors.snapshots import lineage_test_labels, snapshot_test_labels
    from ml.models import EvaluationKind
    from ml.services.evaluations import image_scores_store, judged_labels, model_evaluation_create
    from ml.services.scoring import score_images

    own = snapshot_test_labels(version.snapshot)
    # The library's test items are the test split's items in item order (snapshot_training_items).
    image_scores_store(model_version=version, image_ids=list(own), probabilities=result.test_probabilities)
    model_evaluation_create(
        model_version=version,
        kind=EvaluationKind.OWN_TEST,
        snapshot=version.snapshot,
        labels=judged_labels(version, own),
        metrics=result.metrics,
    )
    lineage = judged_labels(version, lineage_test_labels())
    score_images(model_version=version, image_ids=list(lineage))
    if execution is not None:
        execution.progress()  # a beat after scoring the extra images
    model_evaluation_create(model_version=version, kind=EvaluationKind.LINEAGE_TEST, labels=lineage)
