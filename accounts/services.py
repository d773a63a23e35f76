"""Roles: device makers get the console and the management API; every other
account pairs devices and sees its own, nothing else.

A device maker is an active user holding the `accounts.device_maker` permission,
directly or through a group (the "Device makers" group holds it); superusers are
makers implicitly. Admins grant it in the Django admin or with
`manage.py grant_device_maker`.
"""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from accounts.models import ApiToken

DEVICE_MAKER = "accounts.device_maker"
DEVICE_MAKER_CODENAME = "device_maker"
DEVICE_MAKERS_GROUP = "Device makers"


def is_device_maker(user) -> bool:
    """Whether `user` may use the console and the management API."""
    return bool(user is not None and user.is_authenticated and user.has_perm(DEVICE_MAKER))


def device_maker_permission() -> Permission:
    # Normally created by the migration; a flushed test database gets it back here.
    content_type = ContentType.objects.get_for_model(ApiToken)
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename=DEVICE_MAKER_CODENAME,
        defaults={"name": "Is a device maker: uses the console and the management API"},
    )
    return permission


def device_makers_group() -> Group:
    """The group an admin puts device makers in; it always holds the permission."""
    group, _ = Group.objects.get_or_create(name=DEVICE_MAKERS_GROUP)
    group.permissions.add(device_maker_permission())
    return group


def _fresh(user):
    # has_perm caches what it read on the instance; a new instance reads the grants again.
    return type(user)._default_manager.get(pk=user.pk)


@transaction.atomic
def grant_device_maker(user) -> bool:
    """Put `user` in the device makers group; False when they were a maker already."""
    was_maker = is_device_maker(_fresh(user))
    device_makers_group().user_set.add(user)
    return not was_maker


@transaction.atomic
def revoke_device_maker(user) -> list[str]:
    """Take the role from `user` where it can be taken: the group and a direct grant.

    Returns why `user` is still a maker (empty when they are not): superusers are
    makers implicitly, and another group an admin gave the permission still grants it.
    """
    permission = device_maker_permission()
    user.groups.remove(*Group.objects.filter(name=DEVICE_MAKERS_GROUP))
    user.user_permissions.remove(permission)
    user = _fresh(user)
    if not is_device_maker(user):
        return []
    reasons = ["superuser"] if user.is_superuser else []
    reasons += [
        f"member of group {name!r}"
        for name in user.groups.filter(permissions=permission).values_list("name", flat=True)
    ]
    return reasons
