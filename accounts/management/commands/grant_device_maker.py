from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import audit, services
from audit.events import Actor


class Command(BaseCommand):
    help = (
        "Make a user a device maker (the console and the management API), "
        "or with --revoke take the role away."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--revoke", action="store_true", help="Take the role away instead of granting it."
        )

    def handle(self, *args, username, revoke, **options):
        users = get_user_model()._default_manager
        try:
            user = users.get_by_natural_key(username)
        except users.model.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r}.") from exc
        actor = Actor(None, "manage.py grant_device_maker")
        if revoke:
            was_maker = services.is_device_maker(user)
            still = services.revoke_device_maker(user)
            if was_maker:
                audit.log_role_revoked(user, still, actor=actor)
            if still:
                # Exit non-zero: a script that meant to lock the user out must notice.
                raise CommandError(
                    f"{username} is still a device maker ({', '.join(still)}); "
                    "change that in the admin."
                )
            self.stdout.write(f"{username} is no longer a device maker.")
        elif services.grant_device_maker(user):
            audit.log_role_granted(user, actor=actor)
            self.stdout.write(f"{username} is now a device maker.")
        else:
            self.stdout.write(f"{username} was already a device maker.")
        if not user.is_active:
            self.stderr.write(f"{username} is inactive and cannot sign in until reactivated.")
