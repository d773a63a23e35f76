"""The admin device page's secure registration card: `{% secure_device_card device %}`."""

from django import template

from registrations.models import Message, SecureDevice

register = template.Library()
SHOWN_MESSAGES = 20


@register.inclusion_tag("registrations/_device_card.html")
def secure_device_card(device):
    """Device id, certificate and latest messages of a securely registered device."""
    secure = SecureDevice.objects.filter(device=device).first()
    messages = list(Message.objects.filter(device=device).order_by("-id")[:SHOWN_MESSAGES])
    return {"device": device, "secure": secure, "device_messages": messages}
