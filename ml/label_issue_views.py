"""The suspected label errors page, /curation/label-issues/: served by ml, which computes them."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from core.forms import refuse
from ml.forms import LabelIssueDismissForm, LabelIssuesForm
from ml.models import LabelIssue
from ml.selectors.label_issues import cross_val_run_of, label_issue_list, snapshots_with_label_issues
from ml.services.label_issues import label_issue_dismiss

PAGE_SIZE = 50
# The labeling app's re-review request (a fresh blind read of the chosen images), where it is installed.
REREVIEW_URL_NAME = "labeling:rereview-request"


def rereview_url() -> str | None:
    try:
        return reverse(REREVIEW_URL_NAME)
    except NoReverseMatch:
        return None


def _render(request, form: LabelIssuesForm, *, status: int = 200):
    snapshot = form.cleaned_data.get("snapshot") if form.is_valid() else None
    run = cross_val_run_of(snapshot) if snapshot else None
    page = None
    if run is not None:
        issues = label_issue_list(run, open_only=form.cleaned_data.get("open", False))
        page = Paginator(issues, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "ml/label_issues.html",
        {
            "form": form,
            "snapshot": snapshot,
            "run": run,
            "page": page,
            "query": query.urlencode(),
            "snapshots": snapshots_with_label_issues()[:100],
            "rereview_url": rereview_url(),
        },
        status=status,
    )


@role_required(Role.CURATOR)
@require_GET
def label_issues(request):
    form = LabelIssuesForm(request.GET)
    if not form.is_valid():
        return _render(request, LabelIssuesForm(), status=refuse(request, form))
    return _render(request, form)


@role_required(Role.CURATOR)
@require_POST
def label_issue_dismiss_page(request, issue_id: int):
    issue = get_object_or_404(LabelIssue, pk=issue_id)
    back = f"{reverse('ml:label-issues')}?snapshot={issue.snapshot_id}"
    form = LabelIssueDismissForm(request.POST)
    if not form.is_valid():
        refuse(request, form)
        return _render(request, LabelIssuesForm({"snapshot": issue.snapshot_id}), status=400)
    try:
        label_issue_dismiss(issue=issue, actor=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        status = refuse(request, error)
        return _render(request, LabelIssuesForm({"snapshot": issue.snapshot_id}), status=status)
    messages.success(request, f"Marked the suggestion for image {issue.image_id} wrong; its label stands.")
    return redirect(back)
