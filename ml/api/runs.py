from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCurator
from core.limits import id_limits
from core.pagination import Pagination, paginated_response
from core.serializers import JSONInputSerializer
from core.services.jobs import job_cancel, job_retry
from curation.models import Snapshot
from ml.models import ModelVersion, ScoringJob, TrainingRun
from ml.selectors.models import model_version_list, training_run_list
from ml.selectors.scores import scoring_job_list
from ml.services.models import model_version_promote
from ml.services.runs import training_run_request
from ml.services.scoring import NoProductionModel, scoring_job_request, scoring_job_request_production
from ml.training.config import PRESETS
from ml.training.folds import MAX_FOLDS


class TrainingRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    snapshot = serializers.IntegerField(source="snapshot_id")
    preset = serializers.CharField()
    config = serializers.JSONField()
    cross_val = serializers.IntegerField(help_text="folds of a cross-validation run; 0: a plain run")
    cross_val_report = serializers.JSONField(help_text="per fold: sizes, temperature, held-out accuracy, macro F1")
    status = serializers.CharField()
    progress = serializers.JSONField()
    history = serializers.JSONField()
    error = serializers.CharField()
    cancel_requested = serializers.BooleanField()
    attempts = serializers.IntegerField()
    model_version = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)

    def get_model_version(self, run: TrainingRun) -> int | None:
        try:
            return run.model_version.pk
        except ModelVersion.DoesNotExist:
            return None


class ModelVersionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    run = serializers.IntegerField(source="run_id")
    snapshot = serializers.IntegerField(source="snapshot_id")
    snapshot_hash = serializers.CharField()
    config = serializers.JSONField()
    class_map = serializers.JSONField()
    is_production = serializers.BooleanField()
    metrics = serializers.JSONField()
    artifact_sha256 = serializers.CharField()
    artifact_size = serializers.IntegerField()
    code_version = serializers.CharField()
    temperature = serializers.FloatField()
    calibration = serializers.JSONField()
    evaluations = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    promoted_at = serializers.DateTimeField(allow_null=True)

    def get_evaluations(self, version: ModelVersion) -> list[dict]:
        from ml.selectors.evaluations import model_evaluations

        return [
            {
                "id": evaluation.pk,
                "kind": evaluation.kind,
                "snapshot": evaluation.snapshot_id,
                "image_count": evaluation.image_count,
                "macro_f1": evaluation.metrics.get("macro_f1"),
                "accuracy": evaluation.metrics.get("accuracy"),
                "created_at": evaluation.created_at,
            }
            for evaluation in model_evaluations(version)
        ]


class TrainingRunListCreateApi(APIView):
    permission_classes = [IsCurator]
    pagination_class = Pagination

    class InputSerializer(JSONInputSerializer):
        snapshot = serializers.IntegerField(**id_limits())
        preset = serializers.ChoiceField(
            choices=list(PRESETS),
            required=False,
            default="seed",
            error_messages={"invalid_choice": f"Unknown preset '{{input}}'. Known: {', '.join(PRESETS)}."},
        )
        config = serializers.DictField(
            required=False, default=dict, help_text='config overrides, e.g. {"stage1_epochs": 10}'
        )
        cross_val = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=2,
            max_value=MAX_FOLDS,
            help_text="K: a cross-validation run (K fold models, out-of-fold probabilities, suspected label errors)",
        )

    @extend_schema(responses=TrainingRunOutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=training_run_list(), serializer_class=TrainingRunOutputSerializer
        )

    @extend_schema(
        request=InputSerializer, responses={201: TrainingRunOutputSerializer, 200: TrainingRunOutputSerializer}
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = Snapshot.objects.filter(pk=data.validated_data["snapshot"]).first()
        if snapshot is None:
            raise serializers.ValidationError({"snapshot": f"There is no snapshot {data.validated_data['snapshot']}."})
        run, created = training_run_request(
            snapshot=snapshot,
            preset=data.validated_data["preset"],
            config=data.validated_data["config"],
            cross_val=data.validated_data.get("cross_val"),
            created_by=request.user,
        )
        return Response(
            TrainingRunOutputSerializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TrainingRunDetailApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=TrainingRunOutputSerializer)
    def get(self, request, run_id: int):
        return Response(TrainingRunOutputSerializer(get_object_or_404(training_run_list(), pk=run_id)).data)


class TrainingRunCancelApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(request=None, responses=TrainingRunOutputSerializer)
    def post(self, request, run_id: int):
        run = job_cancel(job=get_object_or_404(TrainingRun, pk=run_id), actor=request.user)
        return Response(TrainingRunOutputSerializer(run).data)


class TrainingRunRetryApi(APIView):
    """Queue a failed or cancelled run again (the same run, its attempts counted)."""

    permission_classes = [IsCurator]

    @extend_schema(request=None, responses={202: TrainingRunOutputSerializer})
    def post(self, request, run_id: int):
        run = job_retry(job=get_object_or_404(TrainingRun, pk=run_id), actor=request.user)
        return Response(TrainingRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionListApi(APIView):
    permission_classes = [IsCurator]
    pagination_class = Pagination

    @extend_schema(responses=ModelVersionOutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=model_version_list(), serializer_class=ModelVersionOutputSerializer
        )


class ModelVersionDetailApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=ModelVersionOutputSerializer)
    def get(self, request, model_id: int):
        return Response(ModelVersionOutputSerializer(get_object_or_404(model_version_list(), pk=model_id)).data)


class ModelVersionPromoteApi(APIView):
    """Make this the production model. Refused below ML_PROMOTION_MIN_MACRO_F1, with fewer than
    ML_PROMOTION_MIN_TEST_PER_CLASS test images in a class, or when worse than production on the test images both
    were scored on, unless `force` with a `reason` (kept in the audit log)."""

    permission_classes = [IsCurator]

    class InputSerializer(JSONInputSerializer):
        force = serializers.BooleanField(required=False, default=False)
        reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)

    @extend_schema(request=InputSerializer, responses=ModelVersionOutputSerializer)
    def post(self, request, model_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = model_version_promote(
            model_version=get_object_or_404(ModelVersion, pk=model_id),
            actor=request.user,
            force=data.validated_data["force"],
            reason=data.validated_data["reason"],
        )
        return Response(ModelVersionOutputSerializer(version).data)


class ScoringJobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model_version = serializers.IntegerField(source="model_version_id")
    scope = serializers.ChoiceField(choices=ScoringJob.Scope.choices)
    snapshot = serializers.IntegerField(source="snapshot_id", allow_null=True)
    status = serializers.CharField()
    progress = serializers.JSONField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    evaluation = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_evaluation(self, job: ScoringJob) -> dict | None:
        if job.evaluation is None:
            return None
        return {"id": job.evaluation.pk, "image_count": job.evaluation.image_count, "metrics": job.evaluation.metrics}


class ModelVersionScoreApi(APIView):
    """Score this version (a scoring job on the `scoring` queue): on a snapshot's test split, or with no `snapshot`
    on every image not excluded (a retry of that job goes on where it stopped)."""

    permission_classes = [IsCurator]

    class InputSerializer(JSONInputSerializer):
        snapshot = serializers.IntegerField(
            **id_limits(), required=False, allow_null=True, help_text="omit to score every image not excluded"
        )

    @extend_schema(
        request=InputSerializer, responses={202: ScoringJobOutputSerializer, 200: ScoringJobOutputSerializer}
    )
    def post(self, request, model_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = get_object_or_404(ModelVersion, pk=model_id)
        snapshot = None
        if data.validated_data.get("snapshot") is not None:
            snapshot = Snapshot.objects.filter(pk=data.validated_data["snapshot"]).first()
            if snapshot is None:
                raise serializers.ValidationError(
                    {"snapshot": f"There is no snapshot {data.validated_data['snapshot']}."}
                )
        job, created = scoring_job_request(model_version=version, snapshot=snapshot, created_by=request.user)
        return Response(
            ScoringJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )


NO_PRODUCTION_MODEL = inline_serializer(
    "NoProductionModel", {"detail": serializers.CharField(), "code": serializers.CharField()}
)


class ScoringJobListCreateApi(APIView):
    """GET: scoring jobs, newest first. POST (no body): score every image not excluded with the production model;
    409 `no_production_model` when there is none."""

    permission_classes = [IsCurator]
    pagination_class = Pagination

    @extend_schema(responses=ScoringJobOutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request, view=self, queryset=scoring_job_list(), serializer_class=ScoringJobOutputSerializer
        )

    @extend_schema(
        request=None,
        responses={
            202: ScoringJobOutputSerializer,
            200: ScoringJobOutputSerializer,
            409: OpenApiResponse(NO_PRODUCTION_MODEL, description="no model is in production"),
        },
    )
    def post(self, request):
        try:
            job, created = scoring_job_request_production(created_by=request.user)
        except NoProductionModel as error:
            return Response({"detail": str(error), "code": "no_production_model"}, status=status.HTTP_409_CONFLICT)
        return Response(
            ScoringJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )


class ScoringJobDetailApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=ScoringJobOutputSerializer)
    def get(self, request, job_id: int):
        return Response(ScoringJobOutputSerializer(get_object_or_404(ScoringJob, pk=job_id)).data)


class ScoringJobCancelApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(request=None, responses=ScoringJobOutputSerializer)
    def post(self, request, job_id: int):
        job = job_cancel(job=get_object_or_404(ScoringJob, pk=job_id), actor=request.user)
        return Response(ScoringJobOutputSerializer(job).data)


class ScoringJobRetryApi(APIView):
    """Queue a failed or cancelled scoring job again; it resumes where it stopped (scored images are kept)."""

    permission_classes = [IsCurator]

    @extend_schema(request=None, responses={202: ScoringJobOutputSerializer})
    def post(self, request, job_id: int):
        job = job_retry(job=get_object_or_404(ScoringJob, pk=job_id), actor=request.user)
        return Response(ScoringJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
