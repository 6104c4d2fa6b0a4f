"""Suspected label errors as curators see them: ranked, with what changed since the snapshot froze."""

from django.db.models import BooleanField, Case, Exists, F, OuterRef, Q, QuerySet, Value, When

from curation.models import Image, Snapshot
from ml.models import LabelIssue, TrainingRun


def cross_val_run_of(snapshot: Snapshot) -> TrainingRun | None:
    """The newest finished cross-validation run on the snapshot (whose suspected label errors are shown)."""
    return (
        TrainingRun.objects.filter(snapshot=snapshot, cross_val__gt=0, status=TrainingRun.Status.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .first()
    )


def snapshots_with_label_issues() -> QuerySet[Snapshot]:
    finished = TrainingRun.objects.filter(snapshot=OuterRef("pk"), cross_val__gt=0, status=TrainingRun.Status.SUCCEEDED)
    return Snapshot.objects.filter(Exists(finished)).order_by("-created_at", "-pk")


def label_issue_list(run: TrainingRun, *, open_only: bool = False) -> QuerySet[LabelIssue]:
    """The run's suspected label errors, worst first, each annotated with ``stale``: its image's curated label is no
    longer the one the snapshot froze (relabeled since, excluded, or back in review)."""
    issues = (
        LabelIssue.objects.filter(run=run)
        .select_related("image", "image__label", "label", "suggested", "dismissed_by")
        .annotate(
            stale=Case(
                When(Q(image__status=Image.Status.LABELED) & Q(image__label_id=F("label_id")), then=Value(False)),
                default=Value(True),
                output_field=BooleanField(),
            )
        )
        .order_by("rank")
    )
    return issues.filter(dismissed_at__isnull=True) if open_only else issues


def label_issues_for_images(image_ids: list[int]) -> QuerySet[LabelIssue]:
    """The open suspected label errors of these images, from each snapshot's newest cross-validation run (what a
    re-review request starts from)."""
    return (
        LabelIssue.objects.filter(image_id__in=image_ids, dismissed_at__isnull=True)
        .select_related("image", "label", "suggested", "run")
        .order_by("image_id", "-run_id")
    )
