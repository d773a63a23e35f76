from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import tokens
from accounts.models import ApiToken
from accounts.services import is_device_maker
from audit.events import Actor


class Command(BaseCommand):
    help = "Issue a management API token for a device maker and print it (stored only hashed)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to tell tokens apart.")

    def handle(self, *args, username, name, **options):
        users = get_user_model()._default_manager
        try:
            user = users.get_by_natural_key(username)
        except users.model.DoesNotExist as exc:
            raise CommandError(f"No user named {username!r}.") from exc
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; its tokens would not work.")
        if not is_device_maker(user):
            # The management API refuses anyone else, so such a token would be a dead key.
            raise CommandError(
                f"User {username!r} is not a device maker; "
                f"grant the role first: manage.py grant_device_maker {username}"
            )
        if len(name) > ApiToken._meta.get_field("name").max_length:
            raise CommandError("The name is longer than 100 characters.")
        _, token = tokens.issue_api_token(
            user, name, actor=Actor(None, "manage.py create_api_token")
        )
        # Only the token on stdout, so scripts can capture it; the warning goes to stderr.
        self.stdout.write(token)
        self.stderr.write("Store this token now: Gatehouse keeps only its hash.")
