from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsReader
from core.limits import id_limits
from core.serializers import JSONInputSerializer
from curation.selectors.classes import label_classes_by_code
from labeling.services.suggestions import review_suggestion_reveal


class ReviewSuggestionApi(APIView):
    """The production model's top 3 for an image I have decided (only with DERMCURATE_REVEAL_MODEL_SUGGESTION):
    403 when the setting is off, 409 `not_decided` before my decision. `classes` is empty when the model has
    not scored the image."""

    permission_classes = [IsReader]
    conflict_answer = "You have not decided this image (`not_decided`): the suggestion comes after your decision."

    class InputSerializer(JSONInputSerializer):
        image = serializers.IntegerField(**id_limits())

    class OutputSerializer(serializers.Serializer):
        class SuggestedSerializer(serializers.Serializer):
            code = serializers.CharField()
            name = serializers.CharField()
            probability = serializers.FloatField(help_text="calibrated")

        image = serializers.IntegerField()
        model_version = serializers.IntegerField(allow_null=True)
        classes = SuggestedSerializer(many=True)
        agreed = serializers.BooleanField(allow_null=True, help_text="your class was the model's top class")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        image_id = data.validated_data["image"]
        reveal = review_suggestion_reveal(reader=request.user, image_id=image_id)
        classes = label_classes_by_code()
        suggested = reveal.suggested if reveal else []
        body = {
            "image": image_id,
            "model_version": reveal.model_version_id if reveal else None,
            "classes": [{**row, "name": getattr(classes.get(row["code"]), "name", row["code"])} for row in suggested],
            "agreed": reveal.agreed if reveal else None,
        }
        return Response(self.OutputSerializer(body).data)
