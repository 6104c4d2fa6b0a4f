"""Curator pages of the model-assisted workflow: re-review rounds and the per-class quality dashboard."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from core.forms import refuse
from curation.models import Image, LabelClass
from labeling.forms import DisagreementListForm, RereviewListForm, RereviewRequestForm
from labeling.selectors.quality import STATUSES, QualityRow, quality_dashboard
from labeling.selectors.rereview import rereview_outcomes, rereview_round_list
from labeling.services.rereview import rereview_request
from ml.selectors.assist import production_confident_disagreements, production_model_id

ROUNDS_PAGE_SIZE = 50


def _rereviews_page(request, *, request_form: RereviewRequestForm | None = None, status: int = 200):
    listing = RereviewListForm(request.GET)
    if not listing.is_valid():
        status = refuse(request, listing)
    state = listing.cleaned_data.get("state") if listing.is_valid() else ""
    page = Paginator(rereview_round_list(state=state or None), ROUNDS_PAGE_SIZE).get_page(
        listing.cleaned_data.get("page") if listing.is_valid() else None
    )
    return render(
        request,
        "labeling/rereviews.html",
        {
            "page": page,
            "state": state,
            "query": f"state={state}" if state else "",
            "outcomes": rereview_outcomes(),
            "form": request_form or RereviewRequestForm(),
        },
        status=status,
    )


@role_required(Role.CURATOR)
@require_GET
def rereviews(request):
    return _rereviews_page(request)


@role_required(Role.CURATOR)
@require_POST
def rereview_request_view(request):
    """Images (repeated `images` fields, or ids in one) back to the readers; then `next`, else the rounds."""
    form = RereviewRequestForm(request.POST)
    if not form.is_valid():
        return _rereviews_page(request, request_form=form, status=refuse(request, form))
    try:
        rounds = rereview_request(
            requested_by=request.user, image_ids=form.cleaned_data["images"], reason=form.cleaned_data["reason"]
        )
    except ValidationError as error:
        return _rereviews_page(request, request_form=form, status=refuse(request, error))
    messages.success(request, f"Sent {len(rounds)} image{'s' if len(rounds) != 1 else ''} for a fresh blind read.")
    target = form.cleaned_data["next"]
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(target)
    return redirect("labeling:rereviews")


DISAGREEMENTS_PAGE_SIZE = 60


def _cell(value, url: str | None = None, *, kind: str = "count") -> dict:
    return {"value": value, "url": url, "kind": kind}


def _images_url(**filters) -> str:
    return f"{reverse('curation:images')}?{urlencode({key: value for key, value in filters.items() if value != ''})}"


def _quality_cells(row: QualityRow, dashboard) -> list[dict]:
    """The row's numbers in the table's column order, each with the page that lists its images."""
    record = {"record_label": row.code} if row.code else {}
    cells = [_cell(row.images, _images_url(**record))]
    cells += [_cell(row.by_status.get(status, 0), _images_url(**record, status=status)) for status in STATUSES[:3]]
    cells += [
        _cell(row.excluded_by_reason.get(reason, 0), _images_url(**record, status="excluded", exclusion_reason=reason))
        for reason, _name in dashboard.exclusion_reasons
    ]
    cells.append(_cell(row.kappa, reverse("labeling:agreement") if row.code else None, kind="ratio"))
    cells.append(_cell(row.duplicates, _images_url(**record, duplicates="1")))
    model_url = reverse("ml:model", args=[dashboard.model_version]) if dashboard.model_version else None
    cells.append(_cell(row.recall, model_url if row.code else None, kind="ratio"))
    cells.append(_cell(row.precision, model_url if row.code else None, kind="ratio"))
    disagreements_url = f"{reverse('labeling:quality-disagreements')}?{urlencode({'label': row.code})}"
    cells.append(_cell(row.disagreements, disagreements_url if dashboard.model_version else None))
    return cells


@role_required(Role.CURATOR)
@require_GET
def quality(request):
    """One row per class: curation state, double-read κ, duplicates and the production model's view."""
    dashboard = quality_dashboard(min_probability=settings.DERMCURATE_DISAGREEMENT_MIN_PROBABILITY)
    return render(
        request,
        "labeling/quality.html",
        {
            "dashboard": dashboard,
            "rows": [{"row": row, "cells": _quality_cells(row, dashboard)} for row in dashboard.rows],
            "total": {"row": dashboard.total, "cells": _quality_cells(dashboard.total, dashboard)},
        },
    )


@role_required(Role.CURATOR)
@require_GET
def quality_disagreements(request):
    """Images whose class of record the production model contradicts with high confidence, most confident
    first, to send back for a fresh read."""
    form = DisagreementListForm(request.GET)
    status = 200 if form.is_valid() else refuse(request, form)
    label = (form.cleaned_data.get("label") if form.is_valid() else "") or None
    threshold = settings.DERMCURATE_DISAGREEMENT_MIN_PROBABILITY
    found = production_confident_disagreements(min_probability=threshold, label_code=label)
    page = Paginator(found, DISAGREEMENTS_PAGE_SIZE).get_page(
        form.cleaned_data.get("page") if form.is_valid() else None
    )
    names = dict(LabelClass.objects.values_list("code", "name"))
    page.object_list = [
        {**row, "label": names[row["label"]], "suggested": names[row["suggested"]]} for row in page.object_list
    ]
    return render(
        request,
        "labeling/quality_disagreements.html",
        {
            "form": form,
            "page": page,
            "label": label or "",
            "query": urlencode({"label": label}) if label else "",
            "model_version": production_model_id(),
            "min_probability": threshold,
            "sendable": (Image.Status.LABELED, Image.Status.DISPUTED),
        },
        status=status,
    )
