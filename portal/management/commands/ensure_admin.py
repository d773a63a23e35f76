"""Create the first administrator, once, with a random password printed a single time."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create a superuser with a random password if none of that name exists "
        "(the password is printed once and never stored in clear)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(
                f"Administrator {username!r} exists. Forgot the password? "
                f"Run: python manage.py changepassword {username}"
            )
            return
        password = secrets.token_urlsafe(15)
        users.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(f"Created administrator {username!r} with password: {password}")
        )
        self.stdout.write(
            "It is shown only this once; change it any time with "
            f"python manage.py changepassword {username}"
        )
