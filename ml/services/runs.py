"""Training runs: requested by a curator, claimed and run by a worker on the `training` queue."""

import logging
import os
import socket
import threading
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from curation.models import LabelClass, Snapshot, SnapshotItem
from ml.models import TrainingRun
from ml.training.config import PRESETS, ConfigError, config_from_dict, config_from_preset, config_hash

logger = logging.getLogger(__name__)
CANCEL_CHECK_SECONDS = 2.0


def training_run_request(
    *, snapshot: Snapshot, preset: str = "seed", config: dict | None = None, created_by=None, sync: bool = False
) -> tuple[TrainingRun, bool]:
    """Queue a run (returns it and True), or return the run already queued or running for the
    same snapshot and config (and False). With `sync` the caller runs it itself (no task is sent)."""
    if preset not in PRESETS:
        raise ValidationError(f"Unknown preset {preset!r}. Known: {', '.join(PRESETS)}.")
    try:
        resolved = config_from_preset(preset, config or {})
    except ConfigError as error:
        raise ValidationError(str(error)) from error
    _check_snapshot_trainable(snapshot)
    digest = config_hash(resolved)
    training_runs_fail_stale()
    existing = TrainingRun.objects.active().filter(snapshot=snapshot, config_hash=digest).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                snapshot=snapshot,
                preset=preset,
                config=resolved.to_dict(),
                config_hash=digest,
                created_by=created_by,
                progress={"stage": None, "epoch": 0, "fraction": 0.0},
            )
    except IntegrityError:
        # Another request for the same run won the race.
        return TrainingRun.objects.active().get(snapshot=snapshot, config_hash=digest), False
    if not sync:
        transaction.on_commit(lambda: _dispatch(run.pk))
    return run, True


def _dispatch(run_id: int) -> None:
    from ml.tasks import training_run_execute_task

    training_run_execute_task.delay(run_id)


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


def training_run_cancel(*, run: TrainingRun, actor=None) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next batch."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status == TrainingRun.Status.QUEUED:
            run.status = TrainingRun.Status.CANCELLED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])
        elif run.status == TrainingRun.Status.RUNNING:
            run.cancel_requested = True
            run.save(update_fields=["cancel_requested"])
        else:
            raise ValidationError(f"Training run {run.pk} has already finished ({run.status}).")
    return run


def training_runs_fail_stale() -> int:
    """Runs whose worker died (no heartbeat for ML_STALE_AFTER_SECONDS) become failed, never running for ever."""
    cutoff = timezone.now() - timedelta(seconds=settings.ML_STALE_AFTER_SECONDS)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    return stale.update(
        status=TrainingRun.Status.FAILED,
        finished_at=timezone.now(),
        error=f"The worker stopped: no heartbeat for more than {settings.ML_STALE_AFTER_SECONDS} seconds "
        f"(killed, out of memory, or the machine went down). Start the run again.",
    )


def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Atomically move a queued run to running; None when it is not queued (e.g. a redelivered task)."""
    now = timezone.now()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker
    )
    return TrainingRun.objects.select_related("snapshot").get(pk=run_id) if claimed else None


class _Heartbeat(threading.Thread):
    """Beats while the run trains, even through a long first compile, in its own connection."""

    def __init__(self, run_id: int):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.ML_HEARTBEAT_SECONDS):
                TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


class _RunReporter:
    """Epoch progress onto the run row, and the cancel flag read back (at most every few seconds)."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self._checked_at = 0.0
        self._cancel = False

    def on_epoch_end(self, epoch: dict) -> None:
        history = [*self.run.history, {k: v for k, v in epoch.items() if k not in ("epochs_total", "stage_epochs")}]
        total = epoch.get("epochs_total") or 1
        progress = {
            "stage": epoch.get("stage"),
            "epoch": epoch.get("epoch"),
            "epochs_total": total,
            "fraction": min(1.0, epoch.get("epoch", 0) / total),
            "eta_seconds": epoch.get("eta_seconds"),
            "learning_rate": epoch.get("learning_rate"),
            "loss": epoch.get("loss"),
            "accuracy": epoch.get("accuracy"),
            "val_loss": epoch.get("val_loss"),
            "val_accuracy": epoch.get("val_accuracy"),
        }
        self.run.history, self.run.progress = history, progress
        TrainingRun.objects.filter(pk=self.run.pk).update(
            history=history, progress=progress, heartbeat_at=timezone.now()
        )

    def should_stop(self) -> bool:
        now = timezone.now().timestamp()
        if now - self._checked_at >= CANCEL_CHECK_SECONDS:
            self._checked_at = now
            self._cancel = TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        return self._cancel


def snapshot_training_items(snapshot: Snapshot) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Class codes in index order (model output order) and (local image path, class position) per split.

    Files come from storage; on a local disk they are used where they lie, otherwise
    downloaded once into ML_WORK_DIR. A file missing from storage stops the run with its name.
    """
    label_ids = set(SnapshotItem.objects.filter(snapshot=snapshot).values_list("label_id", flat=True).distinct())
    classes = list(LabelClass.objects.filter(pk__in=label_ids).order_by("index"))
    position = {label.pk: i for i, label in enumerate(classes)}
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    rows = (
        SnapshotItem.objects.filter(snapshot=snapshot)
        .order_by("pk")
        .values_list("image_id", "image__sanitized", "label_id", "split")
    )
    cache = Path(settings.ML_WORK_DIR) / "image-cache"
    for image_id, name, label_id, split in rows.iterator(chunk_size=2000):
        splits[split].append((_local_path(image_id, name, cache), position[label_id]))
    return [label.code for label in classes], splits


def _local_path(image_id: int, name: str, cache: Path) -> str:
    if not default_storage.exists(name):
        raise FileNotFoundError(f"Image {image_id} is missing from storage ({name}).")
    try:
        return default_storage.path(name)
    except NotImplementedError:
        target = cache / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with default_storage.open(name, "rb") as source:
                target.write_bytes(source.read())
        return str(target)


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Claim and run a training run to its end; stores the outcome on the row whatever happens."""
    from ml.services.models import model_version_create
    from ml.training import TrainingCancelled, train

    run = training_run_claim(run_id=run_id)
    if run is None:
        logger.info("training run %s is not queued; nothing to do", run_id)
        return None
    heartbeat = _Heartbeat(run.pk)
    heartbeat.start()
    reporter = _RunReporter(run)
    work_dir = Path(settings.ML_WORK_DIR) / f"run-{run.pk}"
    try:
        class_names, splits = snapshot_training_items(run.snapshot)
        result = train(
            config_from_dict(run.config),
            train_items=splits["train"],
            val_items=splits["val"],
            test_items=splits["test"],
            class_names=class_names,
            output_dir=work_dir,
            base_weights=settings.ML_BASE_WEIGHTS,
            on_epoch_end=reporter.on_epoch_end,
            should_stop=reporter.should_stop,
            extra_metadata={"snapshot": run.snapshot_id, "snapshot_hash": run.snapshot.content_hash, "run": run.pk},
        )
        with transaction.atomic():
            model_version_create(run=run, result=result)
            _finish(run, TrainingRun.Status.SUCCEEDED)
    except TrainingCancelled:
        _finish(run, TrainingRun.Status.CANCELLED, error="Cancelled by a curator; the history so far is kept.")
    except Exception as error:  # stored for the curator; the worker goes on
        logger.exception("training run %s failed", run.pk)
        _finish(run, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}", trace=traceback.format_exc())
    finally:
        heartbeat.stop()
    run.refresh_from_db()
    return run


def _finish(run: TrainingRun, status: str, *, error: str = "", trace: str = "") -> None:
    TrainingRun.objects.filter(pk=run.pk).update(
        status=status, error=error, traceback=trace, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
