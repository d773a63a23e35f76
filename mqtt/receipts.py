"""Storing each message an ingest receives exactly once, across its crashes.

QoS 1 alone stores twice what was stored and not yet acknowledged when the
ingest died: the broker keeps the ingest's session and delivers those messages
again, marked DUP, under the same packet ids. So the ingest writes, in the
transaction that stores a message, a receipt: (its client id, the packet id) ->
the count of messages it had stored then. A message marked DUP whose packet id
has a receipt among the most recent ones was stored already; it is acknowledged
and not stored again.

"Most recent" because the broker numbers a session's messages in turn
(1, 2, … 65535, 1, …) and reuses a number only once its message is
acknowledged: an old receipt under the same number belongs to an earlier
message. The ingest lets at most RECEIVE_MAXIMUM messages be unacknowledged
(MQTT 5's Receive Maximum), so the receipt of a message delivered again is
among the last RECEIVE_MAXIMUM, far inside RECENT, and one 65,535 numbers old
is far outside it.
"""

from django.db.models import Max

from mqtt.models import IngestReceipt

RECEIVE_MAXIMUM = 1000
RECENT = 20_000


class Receipts:
    """One ingest session's receipts; `sequence` is its count of stored messages."""

    def __init__(self, client_id: str):
        self.client_id = client_id
        self.sequence = (
            IngestReceipt.objects.filter(client_id=client_id).aggregate(last=Max("sequence"))[
                "last"
            ]
            or 0
        )

    def fresh(self, messages: list) -> list:
        """The messages not stored before (paho messages: `mid`, `dup`), in order."""
        redelivered = {message.mid for message in messages if message.dup}
        stored = {}
        if redelivered:
            stored = dict(
                IngestReceipt.objects.filter(
                    client_id=self.client_id, packet_id__in=redelivered
                ).values_list("packet_id", "sequence")
            )
        fresh, seen = [], set()
        for message in messages:
            if message.dup and (
                message.mid in seen
                or (message.mid in stored and self.sequence - stored[message.mid] < RECENT)
            ):
                continue
            seen.add(message.mid)
            fresh.append(message)
        return fresh

    def note(self, messages: list) -> int:
        """Write the receipts of `messages` (inside the storing transaction); the new
        sequence, which the caller keeps (`sequence`) once that transaction commits."""
        sequence = self.sequence
        latest = {}
        for message in messages:
            sequence += 1
            latest[message.mid] = sequence
        if latest:
            IngestReceipt.objects.bulk_create(
                [
                    IngestReceipt(client_id=self.client_id, packet_id=mid, sequence=number)
                    for mid, number in latest.items()
                ],
                update_conflicts=True,
                unique_fields=["client_id", "packet_id"],
                update_fields=["sequence"],
            )
        return sequence
