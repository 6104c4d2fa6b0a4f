"""Curator pages of the model-assisted workflow: re-review rounds and the per-class quality dashboard."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from core.forms import refuse
from labeling.forms import RereviewListForm, RereviewRequestForm
from labeling.selectors.rereview import rereview_outcomes, rereview_round_list
from labeling.services.rereview import rereview_request

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
