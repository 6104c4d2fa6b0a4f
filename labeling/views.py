from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from core.forms import refuse
from curation.models import Image
from curation.services.images import image_override
from labeling.forms import AdjudicationForm, AdjudicationUndoForm, AgreementFilterForm, HistorySearchForm, OverrideForm
from labeling.keys import class_buttons, reason_buttons
from labeling.selectors.adjudication import disputed_image_detail, disputed_images, image_history_detail
from labeling.selectors.agreement import CONFIDENCE_FILTERS, agreement_report
from labeling.selectors.audit_trail import readable_audit_trail
from labeling.selectors.history import reader_history, reader_skipped
from labeling.selectors.model_agreement import reader_model_agreement
from labeling.selectors.rereview import rereview_round_list
from labeling.services.reviews import adjudication_submit, adjudication_undo

HISTORY_PAGE_SIZE = 50
_LAST_ADJUDICATION = "labeling.last_adjudication"


@role_required(Role.REVIEWER, Role.ADJUDICATOR)
@require_GET
def review(request):
    """The review screen: a shell; images come from the queue API, so nothing about them is in this HTML.

    `?image=ID` opens an image from the reader's history first (the API checks it is theirs).
    """
    search = HistorySearchForm(request.GET)
    if not search.is_valid():
        return render(request, "labeling/bad_request.html", {"form": search}, status=400)
    return render(
        request,
        "labeling/review.html",
        {
            "classes": class_buttons(),
            "reasons": reason_buttons(),
            "open_image": search.cleaned_data.get("image") or "",
            # Only where the model's suggestion is shown after a decision; the page itself never carries it.
            "suggestion_seconds": settings.DERMCURATE_REVEAL_MODEL_SUGGESTION_SECONDS
            if settings.DERMCURATE_REVEAL_MODEL_SUGGESTION
            else None,
        },
    )


@role_required(Role.REVIEWER, Role.ADJUDICATOR)
@require_GET
def history(request):
    """My reviews, newest first, searchable by image id; the images I skipped, to reopen."""
    search = HistorySearchForm(request.GET)
    if not search.is_valid():
        return render(request, "labeling/history.html", {"search": search, "page": None}, status=400)
    image_id = search.cleaned_data.get("image")
    page = Paginator(reader_history(reader=request.user, image_id=image_id), HISTORY_PAGE_SIZE).get_page(
        search.cleaned_data.get("page")
    )
    return render(
        request,
        "labeling/history.html",
        {
            "search": search,
            "page": page,
            "image_id": image_id,
            "skipped": reader_skipped(reader=request.user) if image_id is None else [],
        },
    )


def _last_adjudication(request) -> dict | None:
    """The adjudicator's last decision while it can still be undone (shown with an Undo button)."""
    last = request.session.get(_LAST_ADJUDICATION)
    if not last:
        return None
    decided_at = parse_datetime(last.get("at", ""))
    if decided_at is None or timezone.now() - decided_at > timedelta(seconds=settings.DERMCURATE_UNDO_SECONDS):
        request.session.pop(_LAST_ADJUDICATION, None)
        return None
    return last


@role_required(Role.ADJUDICATOR)
@require_GET
def adjudicate(request):
    return render(
        request,
        "labeling/adjudicate_list.html",
        {"images": disputed_images(), "last_adjudication": _last_adjudication(request)},
    )


def _adjudication_page(request, image: Image, form: AdjudicationForm, status: int = 200):
    return render(
        request,
        "labeling/adjudicate_image.html",
        {
            "image": image,
            "form": form,
            "classes": class_buttons(),
            "reasons": reason_buttons(),
            "remaining": disputed_images().count(),
            "last_adjudication": _last_adjudication(request),
        },
        status=status,
    )


@role_required(Role.ADJUDICATOR)
@require_http_methods(["GET", "POST"])
def adjudicate_image(request, image_id: int):
    image = get_object_or_404(disputed_image_detail(), pk=image_id)
    if request.method == "POST":
        form = AdjudicationForm(request.POST)
        if not form.is_valid():
            return _adjudication_page(request, image, form, status=400)
        try:
            adjudication = adjudication_submit(
                adjudicator=request.user,
                image_id=image_id,
                label_code=form.cleaned_data["label"] or None,
                cannot_judge=form.cleaned_data["cannot_judge"],
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("labeling:adjudicate-image", image_id=image_id)
        if adjudication.label_id:
            decision = adjudication.label.name
        else:
            decision = f"Cannot be judged ({adjudication.get_reason_display()})"
        request.session[_LAST_ADJUDICATION] = {
            "image": image_id,
            "decision": decision,
            "at": adjudication.created_at.isoformat(),
        }
        following = disputed_images().exclude(pk=image_id).first()
        return (
            redirect("labeling:adjudicate-image", image_id=following.pk)
            if following
            else redirect("labeling:adjudicate")
        )
    if image.status != Image.Status.DISPUTED:
        messages.info(request, f"Image {image_id} is no longer in dispute.")
        return redirect("labeling:adjudicate")
    return _adjudication_page(request, image, AdjudicationForm())


@role_required(Role.ADJUDICATOR)
@require_POST
def adjudication_undo_view(request):
    form = AdjudicationUndoForm(request.POST)
    if not form.is_valid():
        return render(request, "labeling/bad_request.html", {"form": form}, status=400)
    image_id = form.cleaned_data["image"]
    try:
        adjudication_undo(adjudicator=request.user, image_id=image_id)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("labeling:adjudicate")
    request.session.pop(_LAST_ADJUDICATION, None)
    messages.success(request, f"Undone: image {image_id} is in dispute again.")
    return redirect("labeling:adjudicate-image", image_id=image_id)


@role_required(Role.CURATOR)
@require_GET
def agreement(request):
    form = AgreementFilterForm(request.GET)
    valid = form.is_valid()
    values = form.values() if valid else {"min_overlap": 10, "confidence": "all"}
    report = agreement_report(**values)
    peak = max((max(row) for row in report.confusion), default=0) or 1
    heat_rows = [
        {
            "name": name,
            "cells": [{"count": n, "alpha": round(n / peak, 3)} for n in row],
        }
        for name, row in zip(report.category_names, report.confusion, strict=True)
    ]
    return render(
        request,
        "labeling/agreement.html",
        {
            "form": form,
            "report": report,
            "heat_rows": heat_rows,
            "confidence_label": CONFIDENCE_FILTERS[values["confidence"]],
            "model": reader_model_agreement(),
            **values,
        },
        status=200 if valid else 400,
    )


@role_required(Role.CURATOR)
@require_http_methods(["GET", "POST"])
def image_history(request, image_id: int):
    """One image for curators: provenance, every review, adjudication, audit trail, and an override."""
    image = get_object_or_404(Image, pk=image_id)
    form = OverrideForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = refuse(request, form)
        else:
            try:
                image_override(
                    image=image,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    label_code=form.cleaned_data["label"] or None,
                    exclusion_reason=form.cleaned_data["exclusion_reason"] or None,
                )
            except ValidationError as error:
                status = refuse(request, error)
            else:
                messages.success(request, f"Image {image.pk} overridden.")
                return redirect("labeling:image-history", image_id=image.pk)
    return render(
        request,
        "labeling/image_history.html",
        {
            "image": get_object_or_404(image_history_detail(), pk=image_id),
            "audit_trail": readable_audit_trail(image_id=image_id),
            "form": form,
            "rereview_rounds": rereview_round_list(image_id=image_id),
        },
        status=status,
    )
