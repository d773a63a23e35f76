import json
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from connectors.models import Connector
from devices.models import Device


def new_public_id() -> str:
    """32 lowercase hex digits: the shape of rid, did and mid in the secure device API."""
    return uuid.uuid4().hex


class Registration(models.Model):
    """A secure registration request: a user pairs it by PIN, the device completes it."""

    PENDING_USER_CONFIRMATION = "PENDING_USER_CONFIRMATION"
    PENDING_DEVICE_COMPLETION = "PENDING_DEVICE_COMPLETION"
    REGISTERED = "REGISTERED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    STATUSES = [
        (PENDING_USER_CONFIRMATION, "Waiting for the user to pair it"),
        (PENDING_DEVICE_COMPLETION, "Waiting for the device to complete"),
        (REGISTERED, "Registered"),
        (EXPIRED, "Expired"),
        (REVOKED, "Revoked by a newer request"),
    ]
    PENDING = (PENDING_USER_CONFIRMATION, PENDING_DEVICE_COMPLETION)

    rid = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="registrations")
    # The vendor device id in the connector's identity format; it becomes the device identity.
    vendor_device_id = models.CharField(max_length=160)
    status = models.CharField(max_length=25, choices=STATUSES, default=PENDING_USER_CONFIRMATION)
    # A PIN holds about 40 bits: too few for a plain hash, so it is keyed (HMAC) with SECRET_KEY.
    pin_hash = models.CharField(max_length=64, editable=False)
    # The nonce's 128 random bits need no key or slow hash.
    nonce_hash = models.CharField(max_length=64, editable=False)
    certificate_fingerprint = models.CharField(max_length=64)
    certificate_serial = models.CharField(max_length=64)
    # The serial's last four hex digits, which the user types next to the PIN.
    serial_suffix = models.CharField(max_length=4)
    certificate_subject = models.CharField(max_length=300, blank=True)
    expires_at = models.DateTimeField()
    # Wrong PINs typed with this request's serial digits, from all accounts together.
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    # Wrong serial digits typed with this request's PIN: whoever types them saw the PIN.
    wrong_serial_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="registrations",
    )
    device_name = models.CharField(max_length=100, blank=True)
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="registrations"
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A new request revokes the earlier one, so a device has one live request at most.
            models.UniqueConstraint(
                fields=["connector", "vendor_device_id"],
                condition=Q(status__in=["PENDING_USER_CONFIRMATION", "PENDING_DEVICE_COMPLETION"]),
                name="one_pending_registration_per_device",
            ),
        ]
        indexes = [
            # Pairing finds a request by PIN or serial digits, whichever its device type.
            models.Index(fields=["serial_suffix"], name="registration_by_serial"),
            models.Index(fields=["pin_hash"], name="registration_by_pin"),
            # The expiry sweep's scan: pending requests ordered by deadline.
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=["PENDING_USER_CONFIRMATION", "PENDING_DEVICE_COMPLETION"]),
                name="registration_pending_expiry",
            ),
        ]

    def __str__(self):
        return f"registration {self.rid} of {self.vendor_device_id} ({self.status})"


class PairingGuess(models.Model):
    """One account's wrong pairing guesses at one registration: its share of the attempts."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="guesses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    wrong = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "user"], name="one_guess_count_per_user_and_registration"
            ),
        ]

    def __str__(self):
        return f"{self.wrong} wrong guesses at {self.registration_id} by {self.user_id}"


class SecureDevice(models.Model):
    """A device admitted by secure registration: its public id, certificate and access token."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="secure")
    did = models.CharField(max_length=32, unique=True, default=new_public_id)
    certificate_fingerprint = models.CharField(max_length=64)
    certificate_serial = models.CharField(max_length=64)
    # SHA-256 of the access token (128 random bits need no slow hash), unique so that
    # authentication is one indexed lookup; cleared when the owner releases the device.
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    registered_at = models.DateTimeField()
    # Set for an end node: the hub that created it and speaks for it. An end node has no
    # certificate or token of its own; cleared when the hub's credentials change, so a
    # hub reset, revoked or paired anew no longer speaks for the nodes it had.
    hub = models.ForeignKey(
        Device,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="end_nodes",
    )

    def __str__(self):
        return f"{self.did} ({self.device})"

    @property
    def is_end_node(self) -> bool:
        """Created by a hub: no certificate of its own (whether a hub still speaks for it)."""
        return not self.certificate_fingerprint


class HubPolicy(models.Model):
    """What a device type says about hubs: whether its devices are hubs, and which hub
    device types may create end nodes of it."""

    connector = models.OneToOneField(
        Connector, on_delete=models.CASCADE, primary_key=True, related_name="hub_policy"
    )
    # Its securely registered devices may create end nodes (of this type, and of the
    # types that trust it) and send messages for them.
    acts_as_hub = models.BooleanField(default=False)
    # Hubs of these device types may create end nodes of this type too.
    trusted_hub_types = models.ManyToManyField(
        Connector, blank=True, related_name="trusting_node_types"
    )

    class Meta:
        verbose_name_plural = "hub policies"

    def __str__(self):
        return f"hub policy of {self.connector_id}"


class HubMember(models.Model):
    """A user a hub's owner shares the hub with: it creates and speaks for their end nodes too."""

    hub = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="hub_members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shared_hubs"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hub", "user"], name="one_membership_per_hub_and_user"),
        ]

    def __str__(self):
        return f"{self.user_id} shares hub {self.hub_id}"


class Message(models.Model):
    """A message a securely registered device sent over HTTPS or its WebSocket."""

    REST = "rest"
    WEBSOCKET = "websocket"
    CHANNELS = [(REST, "HTTPS"), (WEBSOCKET, "WebSocket")]

    mid = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="messages")
    data = models.JSONField()
    channel = models.CharField(max_length=9, choices=CHANNELS)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the device says it sent the message, if it said.
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["device", "-id"], name="message_device_recent")]

    def __str__(self):
        return self.mid

    @property
    def data_text(self) -> str:
        """The data as the device sent it: JSON."""
        return json.dumps(self.data, ensure_ascii=False)
