from django.contrib import admin

from accounts.admin import CuratorReadOnlyAdmin
from core.models import AuditEvent
from labeling.models import Adjudication, RereviewRound, Review, SuggestionReveal


@admin.register(Review)
class ReviewAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "image", "reader", "label", "reason", "seconds_spent", "created_at", "retracted_at")
    list_filter = ("label", "reason")
    list_select_related = ("label", "reader")


@admin.register(Adjudication)
class AdjudicationAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "image", "adjudicator", "label", "reason", "created_at")


@admin.register(RereviewRound)
class RereviewRoundAdmin(CuratorReadOnlyAdmin):
    list_display = (
        "pk", "image", "requested_by", "status_before", "label_before", "closed_at", "label_after", "changed"
    )  # fmt: skip
    list_filter = ("changed",)
    list_select_related = ("requested_by", "label_before", "label_after")


@admin.register(SuggestionReveal)
class SuggestionRevealAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "review", "model_version_id", "agreed", "shown_at", "label_changed", "changed_to_suggestion")


@admin.register(AuditEvent)
class AuditEventAdmin(CuratorReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target", "image_id", "reason", "before", "after")
    list_filter = ("action",)
    list_select_related = ("actor",)
