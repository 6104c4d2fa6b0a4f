from django.contrib import admin

from accounts.admin import CuratorReadOnlyAdmin
from core.models import AuditEvent
from labeling.models import Adjudication, Review


@admin.register(Review)
class ReviewAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "image", "reader", "label", "reason", "seconds_spent", "created_at", "retracted_at")
    list_filter = ("label", "reason")
    list_select_related = ("label", "reader")


@admin.register(Adjudication)
class AdjudicationAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "image", "adjudicator", "label", "reason", "created_at")


@admin.register(AuditEvent)
class AuditEventAdmin(CuratorReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target", "image_id", "reason", "before", "after")
    list_filter = ("action",)
    list_select_related = ("actor",)
