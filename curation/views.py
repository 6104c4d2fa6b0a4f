from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.authentication import request_user
from accounts.permissions import role_required
from accounts.redirects import safe_next
from accounts.roles import IMAGE_VIEWER_ROLES, Role
from accounts.selectors import user_has_role
from core.forms import REFUSED, refuse
from core.services.jobs import job_cancel, job_retry
from curation.forms import (
    DuplicateListForm,
    ImageFilterForm,
    ImportUploadForm,
    KeepOneForm,
    MetadataFilterForm,
    NotDuplicatesForm,
    ResolveConflictsForm,
    SnapshotCreateForm,
)
from curation.models import (
    DuplicateGroup,
    ExclusionReason,
    Image,
    ImportBatch,
    LabelClass,
    RejectedFile,
    Snapshot,
    Source,
)
from curation.selectors.duplicates import duplicate_group_compare, duplicate_group_list, duplicate_group_next_open
from curation.selectors.images import (
    image_counts_per_class,
    image_counts_per_status,
    image_list,
    import_batch_list,
)
from curation.selectors.snapshots import snapshot_diff, snapshot_leakage_now, snapshot_list, snapshot_stale_items
from curation.services.conflicts import conflicts_open, conflicts_resolve
from curation.services.duplicates import duplicate_group_keep_one, duplicate_group_mark_not_duplicates
from curation.services.full_resolution import image_full_resolution
from curation.services.imports import import_batch_request
from curation.services.snapshots import snapshot_create
from curation.services.storage import stored_file_open

# Image files are named by their content, which never changes.
IMMUTABLE_CACHE = "private, max-age=31536000, immutable"


@require_GET
def image_file(request, image_id: int, kind: str):
    """The sanitized image, its thumbnail or its full-resolution copy, to signed-in users with a role
    (session or token).

    Originals are never served: they may carry EXIF and GPS metadata.
    """
    user = request_user(request)
    if user is None:
        return HttpResponse("Sign in to see images.", status=401, content_type="text/plain")
    if not user_has_role(user, *IMAGE_VIEWER_ROLES):
        return HttpResponse("Your account has no role that may see images.", status=403, content_type="text/plain")
    fields = {"image": "sanitized", "thumbnail": "thumbnail", "full": "sanitized"}
    if kind not in fields:
        raise Http404("No such image file.")
    image = get_object_or_404(Image.objects.only("sha256", fields[kind]), pk=image_id)
    etag = f'"{image.sha256}-{kind}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    else:
        try:
            name = getattr(image, fields[kind]).name
            if kind == "full":
                name = image_full_resolution(image=Image.objects.get(pk=image_id))
            handle, size = stored_file_open(name)
        except FileNotFoundError as error:
            raise Http404("The image file is missing from storage.") from error
        response = FileResponse(handle, content_type="image/jpeg")
        response["Content-Length"] = size
        response["Content-Disposition"] = f'inline; filename="{image.sha256[:16]}-{kind}.jpg"'
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE_CACHE
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _render_images(request, query: QueryDict, *, status: int = 200):
    form = ImageFilterForm(query)
    metadata_form = MetadataFilterForm(query)
    if not form.is_valid():
        status = refuse(request, form)
    if not metadata_form.is_valid():
        status = refuse(request, metadata_form)
    filters = form.filters()
    metadata_filters = metadata_form.cleaned_data if metadata_form.is_valid() else {}
    filters["metadata"] = {key: value for key, value in metadata_filters.items() if value not in (None, "")}
    page = Paginator(image_list(**filters), 60).get_page(query.get("page"))
    query = query.copy()
    query.pop("page", None)
    return render(
        request,
        "curation/images.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "classes": LabelClass.objects.order_by("index"),
            "sources": Source.objects.order_by("name"),
            "statuses": Image.Status.values,
            "exclusion_reasons": ExclusionReason.choices,
            "counts": image_counts_per_class(),
            "status_counts": image_counts_per_status(),
            "batches": import_batch_list()[:10],
            "metadata_form": metadata_form,
            "open_conflicts": conflicts_open().count(),
            "resolve_form": ResolveConflictsForm(),
        },
        status=status,
    )


@role_required(Role.CURATOR)
@require_GET
def images(request):
    return _render_images(request, request.GET)


@role_required(Role.CURATOR)
@require_POST
def conflicts_resolve_page(request):
    """Resolve every open conflict by one rule; a refused rule shows the conflicts again (400)."""
    form = ResolveConflictsForm(request.POST)
    conflicts_page = QueryDict("conflicts=1")
    if not form.is_valid():
        return _render_images(request, conflicts_page, status=refuse(request, form))
    try:
        result = conflicts_resolve(prefer=form.cleaned_data["prefer"], actor=request.user)
    except ValidationError as error:
        return _render_images(request, conflicts_page, status=refuse(request, error))
    messages.success(
        request,
        f"Conflicts: {len(result.labeled)} labeled from {result.prefer!r}, {len(result.excluded)} excluded, "
        f"{len(result.left_open)} left open.",
    )
    return redirect(f"{reverse('curation:images')}?conflicts=1")


@role_required(Role.CURATOR)
@require_http_methods(["GET", "POST"])
def import_new(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                batch = import_batch_request(
                    upload=data["zip"],
                    source_name=data["source"],
                    trusted=data["trusted"],
                    map_file=data["map_file"],
                    metadata_file=data["metadata"],
                    unmapped=data["unmapped"],
                    label_column=data["label_column"],
                    created_by=request.user,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Import #{batch.pk} is queued.")
                return redirect("curation:import-batch", batch_id=batch.pk)
        status = REFUSED
    return render(
        request, "curation/import_new.html", {"form": form, "sources": Source.objects.order_by("name")}, status=status
    )


def _render_import_batch(request, batch_id: int, *, status: int = 200):
    batch = get_object_or_404(import_batch_list(), pk=batch_id)
    return render(
        request,
        "curation/import_batch.html",
        {
            "batch": batch,
            "rejected": batch.rejected_files.filter(kind=RejectedFile.Kind.REJECTED)[:1000],
            "skipped": batch.rejected_files.filter(kind=RejectedFile.Kind.SKIPPED)[:1000],
            "report": batch.report,
        },
        status=status,
    )


@role_required(Role.CURATOR)
@require_GET
def import_batch(request, batch_id: int):
    return _render_import_batch(request, batch_id)


@role_required(Role.CURATOR)
@require_POST
def import_batch_retry(request, batch_id: int):
    try:
        job_retry(job=get_object_or_404(ImportBatch, pk=batch_id), actor=request.user)
    except ValidationError as error:
        return _render_import_batch(request, batch_id, status=refuse(request, error))
    messages.success(request, f"Import #{batch_id} is queued again.")
    return redirect("curation:import-batch", batch_id=batch_id)


@role_required(Role.CURATOR)
@require_POST
def import_batch_cancel(request, batch_id: int):
    try:
        job_cancel(job=get_object_or_404(ImportBatch, pk=batch_id), actor=request.user)
    except ValidationError as error:
        return _render_import_batch(request, batch_id, status=refuse(request, error))
    messages.success(request, f"Import #{batch_id} will stop after its current chunk.")
    return redirect("curation:import-batch", batch_id=batch_id)


@role_required(Role.CURATOR)
@require_GET
def import_batch_status(request, batch_id: int):
    batch = get_object_or_404(ImportBatch, pk=batch_id)
    return JsonResponse(
        {
            "status": batch.status,
            "total_files": batch.progress_total,
            "processed_files": batch.progress_done,
            "imported": batch.imported,
            "already_present": batch.already_present,
            "duplicates_exact": batch.duplicates_exact,
            "rejected": batch.rejected_count,
            "error": batch.error,
            "seconds": batch.seconds,
            "progress": batch.progress_fraction,
        }
    )


def _render_duplicates(request, query: QueryDict, *, status: int = 200):
    form = DuplicateListForm(query)
    if not form.is_valid():
        status = refuse(request, form)
    show = form.show_value()
    page = Paginator(duplicate_group_list(open_only=show == "open"), 20).get_page(query.get("page"))
    return render(request, "curation/duplicates.html", {"page": page, "show": show}, status=status)


def _duplicates_return(request) -> tuple[str, QueryDict]:
    """Where a duplicate decision returns to (its `next`, when on this site), and that page's query."""
    target = safe_next(request, reverse("curation:duplicates"))
    _, _, query = target.partition("?")
    return target, QueryDict(query.partition("#")[0])


@role_required(Role.CURATOR)
@require_GET
def duplicates(request):
    return _render_duplicates(request, request.GET)


@role_required(Role.CURATOR)
@require_GET
def duplicate_compare(request, group_id: int):
    """One group large, side by side, with every pair's distances; keys decide it (static/js/compare.js)."""
    group = get_object_or_404(duplicate_group_list(), pk=group_id)
    following = duplicate_group_next_open(after=group.pk)
    next_url = (
        reverse("curation:duplicate-compare", args=[following.pk]) if following else reverse("curation:duplicates")
    )
    return render(request, "curation/duplicate_compare.html", {**duplicate_group_compare(group), "next_url": next_url})


@role_required(Role.CURATOR)
@require_POST
def duplicate_not_duplicates(request, group_id: int):
    group = get_object_or_404(DuplicateGroup, pk=group_id)
    target, query = _duplicates_return(request)
    form = NotDuplicatesForm(request.POST)
    if not form.is_valid():
        return _render_duplicates(request, query, status=refuse(request, form))
    image = form.cleaned_data["image"]
    try:
        pairs = duplicate_group_mark_not_duplicates(group=group, actor=request.user, image=image)
    except ValidationError as error:
        return _render_duplicates(request, query, status=refuse(request, error))
    who = f"Image {image.pk}" if image else f"Group #{group.pk}"
    messages.success(request, f"{who}: marked not duplicates ({pairs} pairs); the groups were recomputed.")
    return redirect(target)


@role_required(Role.CURATOR)
@require_POST
def duplicate_keep_one(request, group_id: int):
    group = get_object_or_404(DuplicateGroup, pk=group_id)
    target, query = _duplicates_return(request)
    form = KeepOneForm(request.POST)
    if not form.is_valid():
        return _render_duplicates(request, query, status=refuse(request, form))
    keep = form.cleaned_data["keep"]
    try:
        excluded = duplicate_group_keep_one(group=group, keep=keep, actor=request.user)
    except ValidationError as error:
        return _render_duplicates(request, query, status=refuse(request, error))
    messages.success(request, f"Group #{group.pk}: kept image {keep.pk}, excluded {len(excluded)} as duplicates.")
    return redirect(target)


@role_required(Role.CURATOR)
@require_http_methods(["GET", "POST"])
def snapshots(request):
    form = SnapshotCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = refuse(request, form)
        else:
            try:
                snapshot = snapshot_create(**form.service_arguments(), created_by=request.user)
            except ValidationError as error:
                status = refuse(request, error)
            else:
                messages.success(request, f"Snapshot {snapshot.name!r} frozen with {snapshot.item_count} images.")
                return redirect("curation:snapshot", snapshot_id=snapshot.pk)
    return render(
        request,
        "curation/snapshots.html",
        {
            "form": form,
            "snapshots": snapshot_list(),
            "classes": LabelClass.objects.order_by("index"),
            "labeled": Image.objects.labeled().count(),
        },
        status=status,
    )


@role_required(Role.CURATOR)
@require_GET
def snapshot(request, snapshot_id: int):
    frozen = get_object_or_404(snapshot_list(), pk=snapshot_id)
    classes = {label.code: label for label in LabelClass.objects.all()}
    per_class = [{"label": classes[code], **counts} for code, counts in frozen.stats.get("per_class", {}).items()]
    return render(
        request,
        "curation/snapshot.html",
        {
            "snapshot": frozen,
            "per_class": per_class,
            "exclusions": [
                (ExclusionReason(reason).label if reason in ExclusionReason.values else reason, count)
                for reason, count in frozen.stats.get("exclusions", {}).items()
            ],
            "stale": snapshot_stale_items(frozen)[:200],
            "stale_count": snapshot_stale_items(frozen).count(),
            "leakage_now": snapshot_leakage_now(frozen),
            "others": snapshot_list().exclude(pk=frozen.pk),
            "splits": ("train", "val", "test", "all"),
        },
    )


@role_required(Role.CURATOR)
@require_GET
def snapshot_diff_page(request, snapshot_id: int, other_id: int):
    base = get_object_or_404(Snapshot, pk=snapshot_id)
    other = get_object_or_404(Snapshot, pk=other_id)
    if (base.created_at, base.pk) > (other.created_at, other.pk):
        # Differences read forward in time: from the older snapshot to the newer one.
        return redirect("curation:snapshot-diff", snapshot_id=other.pk, other_id=base.pk)
    diff = snapshot_diff(base, other)
    labels = {label.code: label.name for label in LabelClass.objects.all()}
    for row in diff["relabeled"]:
        row["from_name"], row["to_name"] = labels.get(row["from"], row["from"]), labels.get(row["to"], row["to"])
    return render(request, "curation/snapshot_diff.html", {"base": base, "other": other, "diff": diff, "shown": 500})
