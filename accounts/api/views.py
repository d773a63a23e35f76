"""The caller's own management API tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts import tokens
from accounts.api.serializers import ApiTokenSerializer, IssuedApiTokenSerializer
from accounts.models import ApiToken
from accounts.permissions import IsDeviceMaker
from audit.events import Actor
from core.net import client_ip


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """List, issue and delete the caller's API tokens; other users' tokens are 404.

    Device makers only: a token is a way into the management API, which is theirs.
    """

    serializer_class = ApiTokenSerializer
    permission_classes = [IsDeviceMaker]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(responses={201: IssuedApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, token = tokens.issue_api_token(
            request.user,
            serializer.validated_data.get("name", ""),
            actor=Actor.of(request, "API"),
            ip=client_ip(request),
        )
        row.token = token
        return Response(IssuedApiTokenSerializer(row).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        tokens.delete_api_token(
            instance, actor=Actor.of(self.request, "API"), ip=client_ip(self.request)
        )
