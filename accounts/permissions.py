"""The device maker role at the door of the management API and of the console.

`IsDeviceMaker` is the management API's default permission (REST_FRAMEWORK in
settings) and is also named on the base views, so neither a new view nor a
changed default opens the API to plain users. Console pages use
`maker_required`: every plain user gets the same 403 whether or not the
connector in the URL exists, so it tells them nothing about other tenants.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.services import is_device_maker

REFUSAL = "Only device makers may use this; an administrator grants the role."


class IsDeviceMaker(BasePermission):
    """Signed in (session or API token) and a device maker; anonymous callers get 401."""

    message = REFUSAL

    def has_permission(self, request, view):
        return is_device_maker(request.user)


def maker_required(view):
    """A console page: sign in first, then device makers only (403 for everyone else)."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if not is_device_maker(request.user):
            raise PermissionDenied(REFUSAL)
        return view(request, *args, **kwargs)

    return login_required(checked)
