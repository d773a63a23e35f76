"""The /v1.1/ calls of companion apps, with the OAuth 2.0 access token a user granted
them (docs/apps-and-hubs.md): the user, their devices and device types, their
devices' messages, and pairing by PIN. Each parses, calls one service of
`registrations.services.apps` and shapes ARTIK's answer as the device views do."""

from rest_framework import serializers
from rest_framework.response import Response

from registrations.artik.api import AppView
from registrations.artik.views import (
    LAST_MILLISECOND,
    LastMessagesQuery,
    MessageIn,
    device_shape,
    device_type_shape,
    message_stored,
    milliseconds,
    moment,
    normalized,
)
from registrations.services import apps
from registrations.services.registration import public_user_id

DID_LENGTH = 32


class SelfView(AppView):
    def get(self, request, **route):
        user = apps.the_user(request.auth, apps.USERS_READ)
        return Response(
            {
                "data": {
                    "id": public_user_id(user),
                    "name": user.get_username(),
                    "email": user.email,
                    "fullName": user.get_full_name(),
                    "createdOn": milliseconds(user.date_joined),
                }
            }
        )


class UserDevicesQuery(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)
    count = serializers.IntegerField(min_value=1, max_value=100, default=100)
    dtid = serializers.CharField(max_length=64, required=False)
    owner = serializers.ChoiceField(["ALL", "OWNED", "SHARED"], default="ALL")
    # Accepted as the SDK sends them; Gatehouse's devices carry no properties or shares.
    includeProperties = serializers.BooleanField(required=False)  # noqa: N815
    includeShareInfo = serializers.BooleanField(required=False)  # noqa: N815


class UserDevicesView(AppView):
    """The user's devices, a page at a time, as ARTIK's devices envelope."""

    def get(self, request, uid, **route):
        query = UserDevicesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset, count = query.validated_data["offset"], query.validated_data["count"]
        devices = apps.user_devices(
            request.auth, uid, query.validated_data.get("dtid"), query.validated_data["owner"]
        )
        page = list(devices[offset : offset + count])
        return Response(
            {
                "data": {"devices": [device_shape(device) for device in page]},
                "total": devices.count(),
                "offset": offset,
                "count": len(page),
            }
        )


class AppDeviceView(AppView):
    def get(self, request, did, **route):
        return Response({"data": device_shape(apps.user_device(request.auth, did, shared=True))})


class AppDeviceTypeView(AppView):
    def get(self, request, dtid, **route):
        return Response({"data": device_type_shape(apps.user_device_type(request.auth, dtid))})


class AppLastMessagesView(AppView):
    def get(self, request, **route):
        query = LastMessagesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        sdids = query.validated_data["sdids"]
        count = query.validated_data["count"]
        field = query.validated_data.get("fieldPresence")
        dids = [did.strip() for did in sdids.split(",") if did.strip()]
        messages = apps.latest_messages(request.auth, dids, count, field)
        envelope = {"sdids": sdids, "count": count, "size": len(messages)}
        if field:
            envelope["fieldPresence"] = field
        envelope["data"] = [normalized(message) for message in messages]
        return Response(envelope)


class MessagesQuery(serializers.Serializer):
    sdid = serializers.CharField(max_length=DID_LENGTH, required=False)
    uid = serializers.CharField(max_length=DID_LENGTH, required=False)
    startDate = serializers.IntegerField(min_value=0, max_value=LAST_MILLISECOND)  # noqa: N815
    endDate = serializers.IntegerField(min_value=0, max_value=LAST_MILLISECOND)  # noqa: N815
    count = serializers.IntegerField(min_value=1, max_value=100, default=100)
    order = serializers.ChoiceField(["asc", "desc"], default="asc")
    offset = serializers.CharField(max_length=DID_LENGTH, required=False)
    fieldPresence = serializers.CharField(max_length=200, required=False)  # noqa: N815

    def validate(self, attrs):
        if attrs["startDate"] > attrs["endDate"]:
            raise serializers.ValidationError("startDate is after endDate")
        for unsupported in ("mid", "filter"):
            if unsupported in self.initial_data:
                raise serializers.ValidationError(f"{unsupported} is not supported")
        return attrs


class AppMessagesView(AppView):
    """GET: the messages of the user's devices stored in a time range; POST: a
    message for one of the user's devices."""

    def get(self, request, **route):
        query = MessagesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        given = query.validated_data
        apps.the_user(request.auth, apps.DEVICES_READ, given.get("uid"))
        sdid, count, order = given.get("sdid"), given["count"], given["order"]
        messages = apps.messages_between(
            request.auth,
            sdid,
            moment(given["startDate"]),
            moment(given["endDate"]),
            count=count,
            newest_first=order == "desc",
            after=given.get("offset"),
            field=given.get("fieldPresence"),
        )
        envelope = {"uid": public_user_id(request.user)}
        if sdid is not None:
            envelope["sdid"] = sdid
        envelope.update(
            startDate=given["startDate"], endDate=given["endDate"], order=order, count=count
        )
        if len(messages) == count:
            envelope["next"] = messages[-1].mid
        envelope.update(size=len(messages), data=[normalized(message) for message in messages])
        return Response(envelope)

    def post(self, request, **route):
        extra = MessageIn(data=request.data)
        extra.is_valid(raise_exception=True)
        ts = extra.validated_data.get("ts")
        message, quota = apps.send_message(
            request.auth,
            request.data.get("sdid"),
            request.data.get("data"),
            self.ip,
            sent_at=None if ts is None else moment(ts),
        )
        return message_stored(message, quota)


class PinPairingIn(serializers.Serializer):
    """ARTIK's names, and the SDK's (`DeviceRegConfirmUserRequest`: `deviceName`)."""

    deviceTypeId = serializers.CharField(max_length=64, required=False)  # noqa: N815
    pin = serializers.CharField(max_length=64, trim_whitespace=False)
    name = serializers.CharField(max_length=200, required=False, trim_whitespace=False)
    deviceName = serializers.CharField(max_length=200, required=False, trim_whitespace=False)  # noqa: N815

    def validate(self, attrs):
        if "deviceId" in self.initial_data:
            raise serializers.ValidationError(
                "deviceId is not used: the device gets its id when it completes"
            )
        if "name" in attrs and "deviceName" in attrs:
            raise serializers.ValidationError("give the name once, as name or deviceName")
        return attrs


class PinPairingView(AppView):
    """PUT /devices/registrations/pin: the app pairs a waiting device to its user."""

    def put(self, request, **route):
        body = PinPairingIn(data=request.data)
        body.is_valid(raise_exception=True)
        given = body.validated_data
        registration = apps.pair_by_pin(
            request.auth,
            given.get("deviceTypeId"),
            given["pin"],
            given.get("name", given.get("deviceName")),
            self.ip,
        )
        return Response({"data": {"rid": registration.rid}})
