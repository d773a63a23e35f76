"""The device page's MQTT line: `{% mqtt_presence device %}` (mqtt.presence keeps it)."""

from django import template

from mqtt.models import BrokerClient, Session

register = template.Library()


@register.inclusion_tag("mqtt/_presence.html")
def mqtt_presence(device):
    """Whether the device is connected over MQTT, since when, from where, and its
    broker username."""
    return {
        "session": Session.objects.filter(device_id=device.pk).order_by("-connected_at").first(),
        "usernames": list(
            BrokerClient.objects.filter(device_id=device.pk)
            .order_by("username")
            .values_list("username", flat=True)
        ),
    }
