"""The laptop setup's state: `python -m portal.setup_local`.

Gatehouse keeps its secrets in the environment (`SECRET_KEY` or
`SECRET_KEY_FILE`, ...). A laptop has none set, so this step generates each key
named in KEYS once into GATEHOUSE_VAR_DIR (`var/` in the checkout) and creates
the folders the laptop defaults use. `make run` runs it before migrating, and
the test suite before it starts. Importing the settings only reads: a key that
is neither configured nor generated stops the start with a message naming it.

Run it again at any time: what exists is kept, so keys never change under data
they protect (CA private keys sealed under CA_KEY_ENCRYPTION_KEY).
"""

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
COMMAND = "python -m portal.setup_local"


@dataclass(frozen=True)
class GeneratedKey:
    """A secret setting that the laptop setup generates into a file under var/."""

    setting: str  # the environment variable (and Django setting) that overrides the file
    filename: str  # under GATEHOUSE_VAR_DIR
    nbytes: int = 32  # of randomness, written URL-safe base64


# Every secret the laptop setup makes. A new one: add it here and read it in the
# settings with read_key(); `make run` and the test suite then generate it.
KEYS = (
    # Django's signing key (sessions, CSRF, PIN and credential-cache hashes).
    GeneratedKey("SECRET_KEY", "secret_key", nbytes=50),
    # Seals connector CA private keys at rest (core.crypto).
    GeneratedKey("CA_KEY_ENCRYPTION_KEY", "ca_key_encryption_key"),
    # What make run's nginx sends and its web processes check (runlocal hands it to
    # both). The settings never read this file: a process given no PROXY_SHARED_SECRET
    # trusts no proxy, so a bare gunicorn believes no forwarded header.
    GeneratedKey("PROXY_SHARED_SECRET", "proxy_shared_secret"),
)


def read_env() -> environ.FileAwareEnv:
    """The environment as the settings see it: variables, `<NAME>_FILE`, then `.env`."""
    if (BASE_DIR / ".env").exists():
        environ.FileAwareEnv.read_env(BASE_DIR / ".env")
    return environ.FileAwareEnv()


def var_dir(env: environ.FileAwareEnv) -> Path:
    return Path(env.str("GATEHOUSE_VAR_DIR", default=str(BASE_DIR / "var")))


def _key(setting: str) -> GeneratedKey:
    return next(key for key in KEYS if key.setting == setting)


def read_key(env: environ.FileAwareEnv, folder: Path, setting: str) -> str:
    """A key from the environment, else from its file under `folder`; never generated here."""
    configured = env.str(setting, default="")
    if configured:
        return configured
    path = folder / _key(setting).filename
    try:
        generated = path.read_text().strip()
    except FileNotFoundError:
        generated = ""
    if not generated:
        raise ImproperlyConfigured(
            f"{setting} is not set and {path} does not exist. Set {setting} (or "
            f"{setting}_FILE naming a file that holds it), or run `{COMMAND}` "
            "to generate the laptop setup's keys (make run does)."
        )
    return generated


def generate_keys(env: environ.FileAwareEnv, folder: Path) -> list[Path]:
    """Write each key neither configured nor generated yet; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key in KEYS:
        if env.str(key.setting, default=""):
            continue
        path = folder / key.filename
        try:
            # Created private and only if absent: a concurrent run keeps the first key.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(key.nbytes))
        written.append(path)
    return written


def create_folders() -> list[Path]:
    """Folders the configured laptop defaults expect (static files, filesystem broker)."""
    from django.conf import settings

    folders = [settings.VAR_DIR, settings.STATIC_ROOT, settings.MEDIA_ROOT]
    if settings.CELERY_BROKER_URL == "filesystem://":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [
            Path(options[name])
            for name in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
        ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def prepare() -> list[Path]:
    """Keys, then folders (the settings can be read once the keys exist)."""
    env = read_env()
    written = generate_keys(env, var_dir(env))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    create_folders()
    return written


def main() -> int:
    try:
        written = prepare()
    except ImproperlyConfigured as exc:
        print(f"setup_local: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"Generated {path} (keep it private; back it up with the database)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
