"""The /v1.1/ views: each parses, calls one service and shapes ARTIK's answer.

Registration calls are authenticated by the client certificate alone (the
services check it); every other call by the device's access token with that
certificate (`DeviceView`), and a device reads only itself.
"""

from datetime import UTC, datetime

from rest_framework import exceptions, serializers
from rest_framework.response import Response

from registrations import services
from registrations.artik.api import ArtikView, DeviceView
from registrations.artik.errors import quota_headers
from registrations.models import Message, Registration
from registrations.services.registration import public_user_id

# Every device's messages keep one manifest: the JSON the device sent.
MANIFEST_VERSION = 1
# Milliseconds since the epoch of 9999-12-31T23:59:59.999Z, the last a datetime holds.
LAST_MILLISECOND = 253_402_300_799_999


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def moment(ms: int) -> datetime:
    """The time ARTIK gives in milliseconds since 1970."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def message_stored(message: Message, quota) -> Response:
    """The answer to a stored message, device or app: its id and the sender's quota.
    Without a charset, as ARTIK answers a stored message."""
    response = Response({"data": {"mid": message.mid}}, content_type="application/json")
    quota_headers(response, quota)
    return response


class RegistrationsView(ArtikView):
    def post(self, request, **route):
        registration, pin, nonce = services.initiate_registration(
            request.data.get("deviceTypeId"),
            request.data.get("vendorDeviceId"),
            self.certificate,
            self.ip,
        )
        return Response(
            {
                "data": {
                    "rid": registration.rid,
                    "pin": pin,
                    "nonce": nonce,
                    "expiresOn": milliseconds(registration.expires_at),
                }
            }
        )


class RegistrationStatusView(ArtikView):
    def get(self, request, rid, **route):
        registration = services.registration_status(rid, self.certificate, self.ip)
        payload = {"status": registration.status}
        secure = getattr(registration.device, "secure", None)
        if registration.status == Registration.REGISTERED and secure is not None:
            payload["did"] = secure.did
        return Response({"data": payload})


class RegistrationView(ArtikView):
    def put(self, request, rid, **route):
        registration, secure, token = services.complete_registration(
            rid, request.data.get("nonce"), self.certificate, self.ip
        )
        uid = public_user_id(registration.user) if registration.user else None
        return Response({"data": {"accessToken": token, "uid": uid, "did": secure.did}})


class MessageIn(serializers.Serializer):
    """What a message says besides its `sdid` and `data` (which the service judges)."""

    type = serializers.ChoiceField(["message"], default="message")
    ts = serializers.IntegerField(min_value=0, max_value=LAST_MILLISECOND, required=False)


class LastMessagesQuery(serializers.Serializer):
    sdids = serializers.CharField(max_length=33 * 100)
    count = serializers.IntegerField(
        min_value=1, max_value=services.messaging.MOST_RECENT, default=1
    )
    fieldPresence = serializers.CharField(max_length=200, required=False)  # noqa: N815


class MessagesView(DeviceView):
    """POST /message and /messages: a device sends a message; GET is not offered."""

    def post(self, request, **route):
        extra = MessageIn(data=request.data)
        extra.is_valid(raise_exception=True)
        ts = extra.validated_data.get("ts")
        message, quota = services.post_message(
            request.auth,
            request.data.get("sdid"),
            request.data.get("data"),
            Message.REST,
            self.ip,
            sent_at=None if ts is None else moment(ts),
        )
        return message_stored(message, quota)


def normalized(message: Message) -> dict:
    """A message as ARTIK's "normalized message"."""
    device = message.device
    created = milliseconds(message.created_at)
    shape = {
        "cts": created,
        "ts": milliseconds(message.sent_at) if message.sent_at else created,
        "mid": message.mid,
        "sdid": device.secure.did,
        "sdtid": device.connector_id,
        "mv": MANIFEST_VERSION,
        "data": message.data,
    }
    if device.owner_id is not None:
        shape["uid"] = public_user_id(device.owner)
    return shape


class LastMessagesView(DeviceView):
    def get(self, request, **route):
        query = LastMessagesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        sdids = query.validated_data["sdids"]
        count = query.validated_data["count"]
        field = query.validated_data.get("fieldPresence")
        device = request.auth
        messages = services.latest_messages(
            device, [did.strip() for did in sdids.split(",")], count, field, self.ip
        )
        envelope = {"sdids": sdids, "count": count, "size": len(messages)}
        if field:
            envelope["fieldPresence"] = field
        envelope["data"] = [normalized(message) for message in messages]
        return Response(envelope)


def device_shape(device) -> dict:
    """A device as ARTIK's "device"."""
    shape = {
        "id": device.secure.did,
        "dtid": device.connector_id,
        "name": device.name or device.identity,
        "manifestVersion": MANIFEST_VERSION,
        "manifestVersionPolicy": "LATEST",
        "needProviderAuth": False,
        "properties": {},
        "createdOn": milliseconds(device.secure.registered_at),
    }
    if device.owner_id is not None:
        shape["uid"] = public_user_id(device.owner)
    return shape


class DeviceDetailView(DeviceView):
    """A device reads itself; a hub reads and deletes its end nodes."""

    def get(self, request, did, **route):
        return Response({"data": device_shape(services.own_device(request.auth, did, self.ip))})

    def delete(self, request, did, **route):
        node = services.delete_end_node(request.auth, did, self.ip)
        return Response({"data": device_shape(node)})


class EndNodesQuery(serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)
    count = serializers.IntegerField(min_value=1, max_value=100, default=100)


class EndNodesView(DeviceView):
    """A hub creates an end node (POST) and lists its end nodes (GET)."""

    def post(self, request, **route):
        body = request.data
        node = services.create_end_node(
            request.auth,
            body.get("dtid"),
            body.get("name"),
            body.get("uid"),
            body.get("vendorDeviceId"),
            self.ip,
        )
        return Response({"data": device_shape(node)})

    def get(self, request, **route):
        query = EndNodesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset, count = query.validated_data["offset"], query.validated_data["count"]
        nodes = services.end_nodes(request.auth, self.ip)
        page = list(nodes[offset : offset + count])
        return Response(
            {
                "data": {"devices": [device_shape(node) for node in page]},
                "total": nodes.count(),
                "offset": offset,
                "count": len(page),
            }
        )


def device_type_shape(connector) -> dict:
    """A connector as ARTIK's "device type"."""
    return {
        "id": connector.pk,
        "uniqueName": connector.pk,
        "name": connector.name,
        "description": "",
        "latestVersion": MANIFEST_VERSION,
        "lastUpdated": milliseconds(connector.created_at),
        "hasCloudConnector": False,
        "approved": True,
        "published": False,
        "protected": True,
        "inStore": False,
        "ownedByCurrentUser": False,
        "rsp": False,
        "tags": [],
    }


class DeviceTypeView(DeviceView):
    def get(self, request, dtid, **route):
        connector = services.own_connector(request.auth, dtid, self.ip)
        return Response({"data": device_type_shape(connector)})


class NotFoundView(ArtikView):
    """Any other path under /v1.1/: ARTIK's JSON 404, whatever the method."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound("no such call")
