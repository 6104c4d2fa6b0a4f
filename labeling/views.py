from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import role_required
from accounts.roles import Role
from core.selectors.audit import audit_events_for_image
from curation.models import ExclusionReason, Image
from curation.services.images import image_override
from labeling.keys import class_buttons, reason_buttons
from labeling.selectors.adjudication import disputed_image_detail, disputed_images, image_history_detail
from labeling.selectors.agreement import agreement_report
from labeling.services.reviews import adjudication_submit


@role_required(Role.REVIEWER, Role.ADJUDICATOR)
@require_GET
def review(request):
    """The review screen: a shell; images come from the queue API, so nothing about them is in this HTML."""
    return render(request, "labeling/review.html", {"classes": class_buttons(), "reasons": reason_buttons()})


@role_required(Role.ADJUDICATOR)
@require_GET
def adjudicate(request):
    return render(request, "labeling/adjudicate_list.html", {"images": disputed_images()})


@role_required(Role.ADJUDICATOR)
@require_http_methods(["GET", "POST"])
def adjudicate_image(request, image_id: int):
    if request.method == "POST":
        try:
            adjudication_submit(
                adjudicator=request.user,
                image_id=image_id,
                label_code=request.POST.get("label") or None,
                cannot_judge=request.POST.get("cannot_judge") == "1",
                reason=request.POST.get("reason", ""),
                note=request.POST.get("note", ""),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("labeling:adjudicate-image", image_id=image_id)
        messages.success(request, f"Image {image_id} decided.")
        following = disputed_images().exclude(pk=image_id).first()
        return (
            redirect("labeling:adjudicate-image", image_id=following.pk)
            if following
            else redirect("labeling:adjudicate")
        )
    image = get_object_or_404(disputed_image_detail(), pk=image_id)
    if image.status != Image.Status.DISPUTED:
        messages.info(request, f"Image {image_id} is no longer in dispute ({image.status}).")
        return redirect("labeling:adjudicate")
    return render(
        request,
        "labeling/adjudicate_image.html",
        {
            "image": image,
            "classes": class_buttons(),
            "reasons": reason_buttons(),
            "remaining": disputed_images().count(),
        },
    )


@role_required(Role.CURATOR)
@require_GET
def agreement(request):
    try:
        min_overlap = max(2, int(request.GET.get("min_overlap", 10)))
    except ValueError:
        min_overlap = 10
    report = agreement_report(min_overlap=min_overlap)
    peak = max((max(row) for row in report.confusion), default=0) or 1
    heat_rows = [
        {"category": category, "cells": [{"count": n, "alpha": round(n / peak, 3)} for n in row]}
        for category, row in zip(report.categories, report.confusion, strict=True)
    ]
    return render(
        request,
        "labeling/agreement.html",
        {
            "report": report,
            "heat_rows": heat_rows,
            "min_overlap": min_overlap,
        },
    )


@role_required(Role.CURATOR)
@require_http_methods(["GET", "POST"])
def image_history(request, image_id: int):
    """One image for curators: provenance, every review, adjudication, audit trail, and an override."""
    image = get_object_or_404(Image, pk=image_id)
    if request.method == "POST":
        try:
            image_override(
                image=image,
                actor=request.user,
                label_code=request.POST.get("label") or None,
                exclusion_reason=request.POST.get("exclusion_reason") or None,
                comment=request.POST.get("comment", ""),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Image {image.pk} overridden.")
        return redirect("labeling:image-history", image_id=image.pk)
    return render(
        request,
        "labeling/image_history.html",
        {
            "image": get_object_or_404(image_history_detail(), pk=image_id),
            "audit_events": audit_events_for_image(image_id=image_id),
            "classes": class_buttons(),
            "reasons": ExclusionReason.choices,
        },
    )
