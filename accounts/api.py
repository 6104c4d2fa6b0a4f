from django.contrib.auth import authenticate, get_user_model, user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_roles
from core.parsers import JSONParser


class TokenCreateApi(APIView):
    """Exchange a username and password for the user's API token."""

    authentication_classes = []
    permission_classes = [AllowAny]
    # Scripts send JSON; `curl -d username=… -d password=…` sends a form.
    parser_classes = [JSONParser, FormParser]
    # Guarded by the login lockout (django-axes) rather than a rate: see accounts.lockout.
    throttle_classes = []

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=get_user_model()._meta.get_field("username").max_length)
        # Hashing a megabyte-long "password" would only burn CPU.
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, max_length=4096)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    def get_authenticate_header(self, request) -> str:
        return "Token"

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # django-axes marks the Django request it is given; AxesMiddleware turns a lockout into a 429.
        user = authenticate(request._request, **data.validated_data)
        if user is None:
            raise AuthenticationFailed("Wrong username or password.")
        roles = sorted(user_roles(user))
        if not roles:
            raise PermissionDenied("This user holds no role; a curator must give it one first.")
        # A token login is a login: last_login is updated and django-axes forgets earlier failures.
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key, "roles": roles}).data, status=status.HTTP_200_OK)
