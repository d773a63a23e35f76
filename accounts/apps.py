from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Connects the receiver that logs each locked-out sign-in.
        from accounts import lockout  # noqa: F401
