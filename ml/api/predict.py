from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CanPredict
from ml.services.predictions import InferenceUnavailable, NoProductionModel, prediction_make


class PredictedClassSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    index = serializers.IntegerField()
    probability = serializers.FloatField()


class PredictApi(APIView):
    """The production model's likely classes for one skin photo (tele-dermatology clients and curators).

    The photo is validated and sanitized as an import is (EXIF and GPS stripped); nothing is stored unless the
    deployment sets ML_KEEP_PREDICTION_IMAGES. Probabilities are calibrated; `abstain` is true when the top one is
    below ML_ABSTAIN_BELOW.
    """

    permission_classes = [CanPredict]
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        image = serializers.FileField(allow_empty_file=True)
        top_k = serializers.IntegerField(required=False, default=3, min_value=1, max_value=11)

    class OutputSerializer(serializers.Serializer):
        model_version = serializers.IntegerField()
        classes = PredictedClassSerializer(many=True)  # most likely first
        abstain = serializers.BooleanField()
        abstain_reason = serializers.CharField(allow_blank=True)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(
                response=inline_serializer(
                    "PredictUnavailable", {"detail": serializers.CharField(), "code": serializers.CharField()}
                ),
                description="No production model (`no_production_model`), or no inference worker answered in time "
                "(`inference_unavailable`).",
            ),
        },
    )
    def post(self, request):
        from django.conf import settings

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["image"]
        if upload.size > settings.ML_PREDICT_MAX_BYTES:
            raise serializers.ValidationError(
                {"image": f"The image is {upload.size} bytes; the limit is {settings.ML_PREDICT_MAX_BYTES}."}
            )
        try:
            result = prediction_make(image=upload.read(), top_k=data.validated_data["top_k"], requested_by=request.user)
        except DjangoValidationError as refused:
            return Response({"detail": refused.messages[0], "code": "bad_image"}, status=status.HTTP_400_BAD_REQUEST)
        except NoProductionModel:
            return Response(
                {"detail": "no production model", "code": "no_production_model"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        except InferenceUnavailable as error:
            return Response(
                {"detail": str(error), "code": "inference_unavailable"}, status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
        return Response(result.response)
