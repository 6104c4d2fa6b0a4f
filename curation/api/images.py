from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCurator
from core.limits import field_limits
from core.pagination import Pagination, paginated_response
from curation.api.classes import ClassCodeField
from curation.models import Image, Source
from curation.selectors.images import image_list

METADATA_FILTERS = ("modality", "sex", "body_site", "fitzpatrick", "lesion_id", "patient_id")


class ImageOutputSerializer(serializers.Serializer):
    """An image as curators and scripts see it (it carries source labels: never for readers)."""

    id = serializers.IntegerField()
    sha256 = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    original_format = serializers.CharField()
    file_size = serializers.IntegerField()
    status = serializers.CharField()
    label = serializers.CharField(source="label.code", allow_null=True, help_text="final class code")
    exclusion_reason = serializers.CharField()
    exclusion_comment = serializers.CharField()
    source_label = serializers.CharField(source="source_label.code", allow_null=True)
    conflicting_source_labels = serializers.BooleanField()
    source_paths = serializers.SerializerMethodField()
    provenance = serializers.SerializerMethodField()
    duplicate_group = serializers.IntegerField(source="duplicate_group_id", allow_null=True)
    metadata = serializers.JSONField(
        help_text="age, sex, body_site, fitzpatrick, modality, lesion_id, patient_id, and the file's other columns"
    )
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_source_paths(self, image: Image) -> list[str]:
        return [row.source_path for row in image.provenance.all()]

    def get_provenance(self, image: Image) -> list[dict]:
        return [
            {
                "source": row.source.name,
                "path": row.source_path,
                "label": row.source_label.code if row.source_label_id else None,
                "batch": row.batch_id,
            }
            for row in image.provenance.all()
        ]

    def _url(self, image: Image, kind: str) -> str:
        return self.context["request"].build_absolute_uri(reverse("curation:image-file", args=[image.pk, kind]))

    def get_image_url(self, image: Image) -> str:
        return self._url(image, "image")

    def get_thumbnail_url(self, image: Image) -> str:
        return self._url(image, "thumbnail")


class ImageListApi(APIView):
    permission_classes = [IsCurator]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):
        label = ClassCodeField(required=False, help_text="a class code")
        status = serializers.ChoiceField(choices=Image.Status.choices, required=False)
        source = serializers.CharField(required=False, **field_limits(Source, "name"))
        conflicts = serializers.BooleanField(required=False, allow_null=True, default=None)
        modality = serializers.ChoiceField(choices=["clinical", "dermoscopic"], required=False)
        sex = serializers.CharField(required=False, max_length=20)
        body_site = serializers.CharField(required=False, max_length=100)
        fitzpatrick = serializers.IntegerField(required=False, min_value=1, max_value=6)
        lesion_id = serializers.CharField(required=False, max_length=200)
        patient_id = serializers.CharField(required=False, max_length=200)

    @extend_schema(parameters=[FilterSerializer], responses=ImageOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        metadata = {key: values.pop(key) for key in METADATA_FILTERS if key in values}
        return paginated_response(
            request=request,
            view=self,
            queryset=image_list(**values, metadata=metadata),
            serializer_class=ImageOutputSerializer,
        )


class ImageDetailApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=ImageOutputSerializer)
    def get(self, request, image_id: int):
        image = get_object_or_404(image_list(), pk=image_id)
        return Response(ImageOutputSerializer(image, context={"request": request}).data)
