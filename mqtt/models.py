from django.db import models

from devices.models import Device


class BrokerChange(models.Model):
    """A device, or a whole connector, whose broker clients must be brought in step."""

    reason = models.CharField(max_length=40)
    connector_id = models.CharField(max_length=34)
    # No foreign key: the change of a deleted device outlives it, to delete its client.
    device_id = models.BigIntegerField(null=True, blank=True)
    identity = models.CharField(max_length=160, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.reason} {self.connector_id}/{self.identity}"


class PendingSecret(models.Model):
    """A device's new secret, sealed (mqtt.vault), until the sync hands it to the broker."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    # The device's credential version the secret belongs to: a reset since makes it void.
    credential_version = models.PositiveIntegerField()
    sealed = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"pending broker secret of device {self.device_id}"


class BrokerClient(models.Model):
    """A broker client Gatehouse made for a device: which username it holds.

    The username is unique across the broker, so two certificate devices whose
    certificates carry the same CN cannot both be admitted (the second is refused).
    """

    username = models.CharField(max_length=400, unique=True)
    # No foreign key: the row outlives a deleted device until its client is deleted.
    device_id = models.BigIntegerField(db_index=True)
    connector_id = models.CharField(max_length=34)
    identity = models.CharField(max_length=160)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.username


class IngestReceipt(models.Model):
    """The last message an ingest stored under each packet id of its broker session.

    Written in the transaction that stores the message, so a message the broker
    delivers again (DUP, same packet id) after the ingest died between storing it
    and acknowledging it is recognised and not stored twice (mqtt.ingest).
    """

    client_id = models.CharField(max_length=200)
    packet_id = models.PositiveIntegerField()
    # The ingest's count of stored messages when this one was stored: a receipt far
    # behind the count is of an earlier message the broker has since numbered anew.
    sequence = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "packet_id"], name="ingest_receipt_unique")
        ]

    def __str__(self):
        return f"{self.client_id} #{self.packet_id}"


class Session(models.Model):
    """A device's live MQTT session, as the broker's log tells it (mqtt.presence).

    One row per broker username while it is connected; the row goes when the
    session ends. The service clients (sync, ingest) have no device and no row.
    """

    username = models.CharField(max_length=400, unique=True)
    client_id = models.CharField(max_length=400, db_index=True)
    device_id = models.BigIntegerField(db_index=True)
    connector_id = models.CharField(max_length=34)
    identity = models.CharField(max_length=160)
    address = models.CharField(max_length=64)
    connected_at = models.DateTimeField()

    def __str__(self):
        return f"{self.username} as {self.client_id}"


class LogPosition(models.Model):
    """How far `manage.py mqtt_presence` has read a broker's log file."""

    path = models.CharField(max_length=500, unique=True)
    inode = models.BigIntegerField()
    offset = models.BigIntegerField()

    def __str__(self):
        return f"{self.path} at {self.offset}"
