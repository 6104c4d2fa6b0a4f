from django.conf import settings
from django.db import models
from django.db.models import Q

from curation.models import CANNOT_JUDGE_REASONS, Image, LabelClass

# The exclusion reasons a reader may give (a duplicate is a curator's call).
CannotJudgeReason = models.TextChoices(
    "CannotJudgeReason", [(reason.name, (reason.value, reason.label)) for reason in CANNOT_JUDGE_REASONS]
)


class Confidence(models.TextChoices):
    SURE = "sure", "Sure"
    UNSURE = "unsure", "Unsure"


class ReviewQuerySet(models.QuerySet):
    def active(self):
        """Reviews that count: not retracted by their reader."""
        return self.filter(retracted_at__isnull=True)

    def by(self, reader):
        return self.filter(reader=reader)


class Review(models.Model):
    """One reader's blind decision on one image: a class, or "cannot be judged"
    with a reason. Never deleted; an undo marks it retracted."""

    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="reviews")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=32, choices=CannotJudgeReason.choices, blank=True)
    comment = models.TextField(blank=True)
    # The reader's own sense of the call (key U); agreement can be read for sure calls only.
    confidence = models.CharField(max_length=8, choices=Confidence.choices, default=Confidence.SURE)
    seconds_spent = models.FloatField(null=True, blank=True, help_text="from display to submission")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    retracted_at = models.DateTimeField(null=True, blank=True)
    # A changed decision (from the reader's history) retracts the old review and points back to it.
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by")
    # The re-review round the decision belongs to; none for the image's first read. Consensus counts one round.
    round = models.ForeignKey("RereviewRound", null=True, blank=True, on_delete=models.PROTECT, related_name="reviews")

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["image", "reader"], condition=Q(retracted_at__isnull=True), name="review_one_per_reader"
            ),
            models.CheckConstraint(
                condition=(Q(label__isnull=False) & Q(reason="")) | (Q(label__isnull=True) & ~Q(reason="")),
                name="review_label_xor_reason",
            ),
            models.CheckConstraint(condition=~Q(reason="other") | ~Q(comment=""), name="review_other_needs_comment"),
        ]
        indexes = [
            models.Index(
                fields=["reader", "created_at"], condition=Q(retracted_at__isnull=True), name="review_reader_active_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Review #{self.pk} of image {self.image_id} by {self.reader_id}"

    @property
    def cannot_judge(self) -> bool:
        return self.label_id is None

    @property
    def decision(self) -> str:
        """A comparable value: the class code, or "cannot_judge:<reason>"."""
        return self.label.code if self.label_id else f"cannot_judge:{self.reason}"


class ReviewLease(models.Model):
    """A reader's hold on an image in the queue; it expires so nothing gets stuck."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="lease")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    leased_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Lease of image {self.image_id} by {self.reader_id} until {self.expires_at:%H:%M:%S}"


class ReviewSkip(models.Model):
    """A reader passed on an image; it stays out of their queue for a while."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    skipped_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["reader", "skipped_at"], name="review_skip_reader_idx")]

    def __str__(self) -> str:
        return f"Image {self.image_id} skipped by {self.reader_id}"


class Adjudication(models.Model):
    """A senior reader's final decision on a disputed image, kept apart from reviews: one per read (the first,
    and each re-review round)."""

    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="adjudications")
    round = models.ForeignKey(
        "RereviewRound", null=True, blank=True, on_delete=models.PROTECT, related_name="adjudications"
    )
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    label = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=32, choices=CannotJudgeReason.choices, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(label__isnull=False) & Q(reason="")) | (Q(label__isnull=True) & ~Q(reason="")),
                name="adjudication_label_xor_reason",
            ),
            models.UniqueConstraint(
                fields=["image"], condition=Q(round__isnull=True), name="adjudication_one_per_first_read"
            ),
            models.UniqueConstraint(fields=["image", "round"], name="adjudication_one_per_round"),
        ]

    def __str__(self) -> str:
        return f"Adjudication of image {self.image_id}"


class RereviewRoundQuerySet(models.QuerySet):
    def open(self):
        return self.filter(closed_at__isnull=True)

    def closed(self):
        return self.filter(closed_at__isnull=False)


class RereviewRound(models.Model):
    """A curator sent a decided image back for a fresh blind read by readers who have not seen it.

    The image is pending again; only this round's reviews count for its consensus. The round closes when that
    consensus (or an adjudication) decides the image, and keeps the label before and after."""

    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="rereview_rounds")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    status_before = models.CharField(max_length=16, choices=Image.Status.choices)
    label_before = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Everyone who reviewed, skipped or adjudicated the image before the round: not asked again.
    excluded_readers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    status_after = models.CharField(max_length=16, choices=Image.Status.choices, blank=True)
    label_after = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    exclusion_reason_after = models.CharField(max_length=32, blank=True)
    changed = models.BooleanField(null=True, help_text="the round decided otherwise than before")

    objects = RereviewRoundQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["image"], condition=Q(closed_at__isnull=True), name="rereview_one_open_round_per_image"
            ),
        ]

    def __str__(self) -> str:
        return f"Re-review round #{self.pk} of image {self.image_id}"


class SuggestionReveal(models.Model):
    """The production model's top classes, shown to a reader right after their decision (with
    DERMCURATE_REVEAL_MODEL_SUGGESTION), and what the reader did next: whether they took the decision back
    (undo, or a change from their history) and decided otherwise."""

    review = models.OneToOneField(Review, on_delete=models.PROTECT, related_name="suggestion_reveal")
    # The ml app's ModelVersion id: kept as a number, so labeling's tables do not depend on ml's.
    model_version_id = models.PositiveIntegerField()
    suggested = models.JSONField(help_text="[{code, probability}], most probable first")
    agreed = models.BooleanField(help_text="the reader's class was the model's top class")
    shown_at = models.DateTimeField(auto_now_add=True)
    revised_by = models.OneToOneField(
        Review,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="revises_reveal",
        help_text="the reader's next decision on the image, after taking this one back",
    )
    label_changed = models.BooleanField(null=True, help_text="that next decision differs from this one")
    changed_to_suggestion = models.BooleanField(null=True, help_text="that next decision is the model's top class")

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"Suggestion shown after review #{self.review_id}"

    @property
    def top_code(self) -> str | None:
        return self.suggested[0]["code"] if self.suggested else None
