from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from core.forms import refuse
from core.services.jobs import job_cancel, job_retry
from curation.models import Snapshot
from curation.services.storage import stored_file_open
from ml.forms import ModelCompareForm, PromoteForm, ScoreForm, TrainingRunForm
from ml.hardware import training_gpu
from ml.models import ModelVersion, TrainingRun
from ml.selectors.evaluations import (
    class_names_by_code,
    confusion_cell_images,
    confusion_table,
    model_evaluations,
    per_class_rows,
    shared_evaluation,
)
from ml.selectors.models import model_version_compare, model_version_list, production_model, training_run_list
from ml.services.models import model_version_promote
from ml.services.runs import training_run_request
from ml.services.scoring import NoProductionModel, scoring_job_request, scoring_job_request_production
from ml.training.config import PRESETS


@role_required(Role.CURATOR)
@require_http_methods(["GET", "POST"])
def runs(request):
    form = TrainingRunForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = refuse(request, form)
        else:
            try:
                run, created = training_run_request(
                    snapshot=form.cleaned_data["snapshot"],
                    preset=form.cleaned_data["preset"],
                    config=form.cleaned_data["config"],
                    cross_val=form.cleaned_data["cross_val"],
                    created_by=request.user,
                )
            except ValidationError as error:
                status = refuse(request, error)
            else:
                messages.success(
                    request,
                    f"Training run #{run.pk} queued."
                    if created
                    else f"The same training is already {run.status}: run #{run.pk}.",
                )
                return redirect("ml:run", run_id=run.pk)
    has_gpu, hardware = training_gpu()
    return render(
        request,
        "ml/runs.html",
        {
            "form": form,
            "runs": training_run_list()[:100],
            "snapshots": Snapshot.objects.order_by("-created_at")[:50],
            "presets": list(PRESETS),
            "default_preset": "seed" if has_gpu else "tiny",
            "hardware": hardware,
        },
        status=status,
    )


def _render_run(request, run_id: int, *, status: int = 200):
    return render(request, "ml/run.html", {"run": get_object_or_404(training_run_list(), pk=run_id)}, status=status)


@role_required(Role.CURATOR)
@require_GET
def run(request, run_id: int):
    return _render_run(request, run_id)


@role_required(Role.CURATOR)
@require_POST
def run_cancel(request, run_id: int):
    try:
        job_cancel(job=get_object_or_404(TrainingRun, pk=run_id), actor=request.user)
    except ValidationError as error:
        return _render_run(request, run_id, status=refuse(request, error))
    messages.success(request, f"Run #{run_id} will stop at its next batch.")
    return redirect("ml:run", run_id=run_id)


@role_required(Role.CURATOR)
@require_POST
def run_retry(request, run_id: int):
    try:
        job_retry(job=get_object_or_404(TrainingRun, pk=run_id), actor=request.user)
    except ValidationError as error:
        return _render_run(request, run_id, status=refuse(request, error))
    messages.success(request, f"Run #{run_id} is queued again.")
    return redirect("ml:run", run_id=run_id)


def _render_models(request, *, status: int = 200):
    versions = list(model_version_list()[:200])
    return render(request, "ml/models.html", {"versions": versions, "production": production_model()}, status=status)


@role_required(Role.CURATOR)
@require_GET
def models(request):
    return _render_models(request)


def _render_model(request, model_id: int, *, status: int = 200):
    version = get_object_or_404(model_version_list(), pk=model_id)
    production = production_model()
    shared = None
    if production is not None and production.pk != version.pk:
        shared = shared_evaluation(production, version)
    return render(
        request,
        "ml/model.html",
        {
            "version": version,
            "production": production,
            "shared": shared,
            "confusion": confusion_table(version),
            "per_class": per_class_rows(version.metrics),
            "evaluations": model_evaluations(version),
            "snapshots": Snapshot.objects.order_by("-created_at")[:50],
            "scoring_jobs": version.scoring_jobs.select_related("snapshot").order_by("-created_at")[:10],
        },
        status=status,
    )


@role_required(Role.CURATOR)
@require_GET
def model(request, model_id: int):
    return _render_model(request, model_id)


@role_required(Role.CURATOR)
@require_GET
def model_confusion_cell(request, model_id: int):
    """The test images of one confusion-matrix cell (?true=code&predicted=code), with their probabilities."""
    version = get_object_or_404(ModelVersion, pk=model_id)
    true_code, predicted_code = request.GET.get("true", ""), request.GET.get("predicted", "")
    known = set(version.class_map.values())
    if true_code not in known or predicted_code not in known:
        raise Http404("No such cell: both classes must be classes of this model.")
    names = class_names_by_code([true_code, predicted_code])
    return render(
        request,
        "ml/confusion_cell.html",
        {
            "version": version,
            "true_code": true_code,
            "predicted_code": predicted_code,
            "true_name": names.get(true_code, true_code),
            "predicted_name": names.get(predicted_code, predicted_code),
            "images": confusion_cell_images(version, true_code=true_code, predicted_code=predicted_code),
        },
    )


@role_required(Role.CURATOR)
@require_POST
def model_promote(request, model_id: int):
    version = get_object_or_404(ModelVersion, pk=model_id)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        return _render_model(request, model_id, status=refuse(request, form))
    try:
        model_version_promote(
            model_version=version,
            actor=request.user,
            force=form.cleaned_data["force"],
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as error:
        return _render_model(request, model_id, status=refuse(request, error))
    messages.success(request, f"Model v{version.pk} is now the production model.")
    return redirect("ml:model", model_id=model_id)


@role_required(Role.CURATOR)
@require_POST
def model_score(request, model_id: int):
    version = get_object_or_404(ModelVersion, pk=model_id)
    form = ScoreForm(request.POST)
    if not form.is_valid():
        return _render_model(request, model_id, status=refuse(request, form))
    snapshot = form.cleaned_data["snapshot"]
    try:
        job, created = scoring_job_request(model_version=version, snapshot=snapshot, created_by=request.user)
    except ValidationError as error:
        return _render_model(request, model_id, status=refuse(request, error))
    scope = f"{snapshot.name}'s test split" if snapshot else "every image not excluded"
    messages.success(
        request,
        f"Scoring job #{job.pk} queued: v{version.pk} on {scope}."
        if created
        else f"The same scoring job is already {job.status}: #{job.pk}.",
    )
    return redirect("ml:model", model_id=model_id)


@role_required(Role.CURATOR)
@require_POST
def score_production(request):
    """Score every image not excluded with the production model (refused when there is none)."""
    try:
        job, created = scoring_job_request_production(created_by=request.user)
    except NoProductionModel as error:
        return _render_models(request, status=refuse(request, str(error)))
    messages.success(
        request,
        f"Scoring job #{job.pk} queued: the production model v{job.model_version_id} on every image."
        if created
        else f"The same scoring job is already {job.status}: #{job.pk}.",
    )
    return redirect("ml:model", model_id=job.model_version_id)


@role_required(Role.CURATOR)
@require_GET
def models_compare(request):
    form = ModelCompareForm(request.GET)
    if not form.is_valid():
        return _render_models(request, status=refuse(request, form))
    first, second = form.cleaned_data["a"], form.cleaned_data["b"]
    shared = shared_evaluation(first, second)
    return render(
        request,
        "ml/compare.html",
        {
            "first": first,
            "second": second,
            "shared": shared,
            "comparison": model_version_compare(first, second, shared=shared),
        },
    )


@role_required(Role.CURATOR)
@require_GET
def model_file(request, model_id: int, kind: str):
    version = get_object_or_404(ModelVersion, pk=model_id)
    files = {
        "curves.png": version.curves_plot,
        "confusion.png": version.confusion_plot,
        "reliability.png": version.reliability_plot,
        "model.keras": version.artifact,
    }
    if kind not in files or not files[kind]:
        raise Http404("No such file.")
    try:
        handle, size = stored_file_open(files[kind].name)
    except FileNotFoundError as error:
        raise Http404("The file is missing from storage.") from error
    response = FileResponse(handle, as_attachment=kind.endswith(".keras"), filename=f"model-v{version.pk}-{kind}")
    response["Content-Length"] = size
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
