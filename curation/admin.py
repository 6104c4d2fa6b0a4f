from django.contrib import admin

from accounts.admin import CuratorReadOnlyAdmin
from curation.models import DuplicateGroup, Image, ImageSource, ImportBatch, LabelClass, Snapshot, Source


@admin.register(LabelClass)
class LabelClassAdmin(CuratorReadOnlyAdmin):
    list_display = ("index", "code", "name")


@admin.register(Source)
class SourceAdmin(CuratorReadOnlyAdmin):
    list_display = ("name", "trusted", "created_at")


@admin.register(ImportBatch)
class ImportBatchAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "source", "status", "imported", "already_present", "rejected_count", "created_at")
    list_filter = ("status", "source")


class ImageSourceInline(admin.TabularInline):
    model = ImageSource
    extra = 0
    can_delete = False
    readonly_fields = ("source", "source_label", "source_path", "batch")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Image)
class ImageAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "sha256", "status", "label", "source_label", "conflicting_source_labels", "duplicate_group")
    list_filter = ("status", "label", "conflicting_source_labels")
    search_fields = ("sha256",)
    list_select_related = ("label", "source_label")
    inlines = [ImageSourceInline]


@admin.register(DuplicateGroup)
class DuplicateGroupAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "created_at", "updated_at")


@admin.register(Snapshot)
class SnapshotAdmin(CuratorReadOnlyAdmin):
    list_display = ("pk", "name", "item_count", "content_hash", "created_by", "created_at")
