"""Gatehouse settings, all read from the environment (see README "Settings").

Defaults give a laptop setup with nothing but Python: SQLite, a file-based
cache shared by local processes, and a filesystem Celery broker. Set
DATABASE_URL, REDIS_URL and CELERY_BROKER_URL to grow into production.
"""

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from portal import setup_local
from portal.configuration import Environment

BASE_DIR = Path(__file__).resolve().parent.parent

# Importing the settings only reads: the keys and folders of the laptop setup are
# made by `python -m portal.setup_local` (make run and the test suite run it first).
env = setup_local.read_env()
# Every value below is parsed here: a bad one stops the start, naming the variable.
config = Environment(env)
VAR_DIR = setup_local.var_dir(env)
# Django's signing key; in production set it (SECRET_KEY_FILE), identical on every host.
SECRET_KEY = setup_local.read_key(env, VAR_DIR, "SECRET_KEY")
# Seals connector CA private keys at rest; set it in production and back it up.
CA_KEY_ENCRYPTION_KEY = setup_local.read_key(env, VAR_DIR, "CA_KEY_ENCRYPTION_KEY")
DEBUG = config.boolean("DEBUG", default=False)

# Devices reach their connector at <connector-id>.<DEVICE_DOMAIN>.
DEVICE_DOMAIN = config.domain("DEVICE_DOMAIN", default="devices.localhost")
# Device hosts first: they carry nearly every request, and Django checks each
# request's Host against this list in order (twice per request).
ALLOWED_HOSTS = [f".{DEVICE_DOMAIN}"] + config.names(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = config.origins("CSRF_TRUSTED_ORIGINS", default=[])
# The TLS proxy (nginx, deploy/nginx/) is recognised by a secret it sends in
# X-Gatehouse-Proxy-Secret, from an address in TRUSTED_PROXIES. Only then are its
# headers believed: client certificate, X-Real-IP / X-Forwarded-For, X-Forwarded-Proto.
# Without a secret no proxy is trusted and those headers are dropped; `make run`
# generates one for its own nginx. PROXY_SHARED_SECRET_FILE works too.
PROXY_SHARED_SECRET = config.secret("PROXY_SHARED_SECRET")
# IP addresses the proxy connects from: loopback by default once there is a secret.
# Listing proxies without a secret is refused at start (portal/checks.py).
TRUSTED_PROXIES = config.addresses(
    "TRUSTED_PROXIES", default=["127.0.0.1", "::1"] if PROXY_SHARED_SECRET else []
)
# The proxy terminates TLS and always overwrites this header (deploy/nginx/); from
# anyone else it is dropped first (portal.middleware.ProxyHeadersMiddleware).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "connectors",
    "devices",
    "certificates",
    "registrations",
    # Project-wide management commands (runlocal, ensure_admin).
    "portal",
]

MIDDLEWARE = [
    # First: headers only the proxy may set are dropped before anything reads them.
    "portal.middleware.ProxyHeadersMiddleware",
    # Outside the middleware that set cookies and HSTS, so it sees what they added.
    "portal.middleware.TlsResponseMiddleware",
    "portal.csp.ContentSecurityPolicyMiddleware",
    # A NUL in a URL is refused before any lookup could pass it to the database.
    "portal.middleware.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Under ASGI, WhiteNoise's files (and any streaming view) are read from a thread.
    "portal.streaming.AsyncStreamingMiddleware",
    # Serves collected static files from the web processes, so no separate file server is needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A view that meets a Redis or database outage answers 503 with Retry-After.
    "portal.outage.BackendOutageMiddleware",
    "portal.middleware.DeviceHostMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": config.database(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'gatehouse.sqlite3'}"
    ),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", config.integer("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend with a health check that needs no round trip (portal/db/).
    DATABASES["default"]["ENGINE"] = "portal.db.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several local processes (web, worker, scheduler) share one file: wait for locks
    # instead of failing, and use WAL so readers do not block the writer.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so test-started worker processes see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = config.url("REDIS_URL", default="", schemes={"redis", "rediss", "unix"})
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Shared by every local process, so rate limits hold across web processes.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
PASSWORD_HASHERS = config.dotted_paths(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = config.time_zone("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(config.text("STATIC_ROOT", default=str(VAR_DIR / "static")))
MEDIA_ROOT = Path(config.text("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# CSV whitelist imports. Uploads and error reports live under MEDIA_ROOT,
# which web and worker processes must share. A million rows with tags and no
# certificates is about 100 MB.
IMPORT_MAX_BYTES = config.integer("IMPORT_MAX_BYTES", default=512 * 1024 * 1024, minimum=1)
# Files up to this size are imported during the upload request; larger ones on a worker.
IMPORT_INLINE_MAX_BYTES = config.integer("IMPORT_INLINE_MAX_BYTES", default=1024 * 1024)
# Rows per whitelist lookup, progress update and write batch.
IMPORT_BATCH_SIZE = config.integer("IMPORT_BATCH_SIZE", default=5000, minimum=1)
# Errors kept on the import row; the full list is in the downloadable report.
IMPORT_MAX_STORED_ERRORS = config.integer("IMPORT_MAX_STORED_ERRORS", default=1000)
# An import without progress this long lost its worker and is failed; a pending
# one no worker took is queued again. Progress arrives every IMPORT_BATCH_SIZE rows.
IMPORT_STALL_SECONDS = config.integer("IMPORT_STALL_SECONDS", default=900, minimum=1)

# Cookies set over TLS are always Secure (TlsResponseMiddleware); this makes them
# Secure on plain HTTP too, for a deployment that is HTTPS only.
SESSION_COOKIE_SECURE = config.boolean("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HSTS on every response to a request that came over TLS, except on localhost names
# (TlsResponseMiddleware), where the laptop setup serves plain HTTP too.
SECURE_HSTS_SECONDS = config.integer("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = config.boolean("SECURE_HSTS_PRELOAD", default=False)
# Preloading commits the whole registrable domain to HTTPS in browsers for months:
# the operator's choice for their domain, not a warning while they have not made it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Redirect plain HTTP to HTTPS in the app too (nginx already does, deploy/nginx/).
# /healthz stays reachable over plain HTTP for load balancers that probe the app port.
SECURE_SSL_REDIRECT = config.boolean("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Pages load scripts, styles, images and fetches from their own origin only: no
# inline script or style, no plugins, no framing, forms post back to Gatehouse.
# The API docs page adds data: images for Swagger UI (portal/urls.py).
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The management API is for device makers only; the base views name it too.
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsDeviceMaker"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Newest first by primary key, with forged cursors refused (DRF's default orders by a
    # "created" column no model here has).
    "DEFAULT_PAGINATION_CLASS": "connectors.api.pagination.IdCursorPagination",
    # Management API bodies are JSON, which the schema can describe exactly (nested tags,
    # true/false); the CSV import and the Foundry dialect name their own form parsers.
    "DEFAULT_PARSER_CLASSES": ["connectors.api.parsers.JSONParser"],
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse management API",
    "DESCRIPTION": "Connectors, whitelists, devices, events and data.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs pages describe the management API, so they are for the
    # same callers: device makers signed in with an API token or a session.
    "SERVE_PERMISSIONS": ["accounts.permissions.IsDeviceMaker"],
    "SERVE_AUTHENTICATION": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The docs pages load Swagger UI and ReDoc from our own static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies get components of their own, with the constraints (minLength,
    # required) that only input has.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # 400/401/403/404/409 with their bodies, on every operation that can give them.
        "portal.openapi.document_refusals",
    ],
}

# Device API limits. A rate is "<count>/<seconds>".
RATE_LIMIT_ACTIVATE = config.rate("RATE_LIMIT_ACTIVATE", default="10/60")  # per identity
RATE_LIMIT_ACTIVATE_IP = config.rate("RATE_LIMIT_ACTIVATE_IP", default="1200/60")  # per source IP
RATE_LIMIT_WRITE = config.rate("RATE_LIMIT_WRITE", default="600/60")  # per device
RATE_LIMIT_AUTH_FAILURES = config.rate("RATE_LIMIT_AUTH_FAILURES", default="30/60")  # per source IP
DEVICE_MAX_BODY_BYTES = config.integer("DEVICE_MAX_BODY_BYTES", default=64 * 1024, minimum=1)
LONG_POLL_MAX_SECONDS = config.number("LONG_POLL_MAX_SECONDS", default=60.0)
LONG_POLL_INTERVAL_SECONDS = config.number("LONG_POLL_INTERVAL_SECONDS", default=0.25, minimum=0.01)
# How long a verified device password is remembered (keyed by a hash of what was sent).
CREDENTIAL_CACHE_SECONDS = config.integer("CREDENTIAL_CACHE_SECONDS", default=300)
# Queued device writes: a Token or Basic write whose credential a web process has
# verified before is accepted in one Redis round trip and stored in batches by
# `manage.py ingest`, which must then run (make run starts it). Needs REDIS_URL.
DEVICE_WRITE_QUEUE = config.boolean("DEVICE_WRITE_QUEUE", default=False)
# Past this many queued writes (an ingest that is down or behind), writes are stored directly.
DEVICE_WRITE_QUEUE_MAX = config.integer("DEVICE_WRITE_QUEUE_MAX", default=1_000_000, minimum=1)
INGEST_BATCH_SIZE = config.integer("INGEST_BATCH_SIZE", default=1000, minimum=1)
# The ingest's pause after a batch that was not full: longer pauses make fewer,
# larger transactions; queued values are readable by devices meanwhile.
INGEST_INTERVAL_MS = config.integer("INGEST_INTERVAL_MS", default=250)
# /healthz answers 503 once the oldest queued write has waited longer than this:
# the ingest is not running or cannot keep up.
INGEST_STALE_SECONDS = config.integer("INGEST_STALE_SECONDS", default=60, minimum=1)
if DEVICE_WRITE_QUEUE and not REDIS_URL:
    raise ImproperlyConfigured("DEVICE_WRITE_QUEUE needs Redis: set REDIS_URL")
EXPIRY_SWEEP_SECONDS = config.number("EXPIRY_SWEEP_SECONDS", default=60.0, minimum=1.0)
EXPIRY_BATCH_SIZE = config.integer("EXPIRY_BATCH_SIZE", default=1000, minimum=1)
# Retention in days for the event log and device data; 0 keeps them forever.
EVENT_RETENTION_DAYS = config.integer("EVENT_RETENTION_DAYS", default=90)
DATA_RETENTION_DAYS = config.integer("DATA_RETENTION_DAYS", default=365)

# Secure registration and messages.
REGISTRATION_WINDOW_SECONDS = config.integer(
    "REGISTRATION_WINDOW_SECONDS", default=15 * 60, minimum=1
)
# After the user pairs, the device has at least this long to complete.
REGISTRATION_COMPLETION_SECONDS = config.integer(
    "REGISTRATION_COMPLETION_SECONDS", default=10 * 60, minimum=1
)
RATE_LIMIT_REGISTRATION = config.rate("RATE_LIMIT_REGISTRATION", default="10/60")  # per certificate
# Wrong guesses one account may make at one request (and wrong serial digits typed with a
# request's right PIN, from all accounts together) before they stop counting or lock it.
PAIRING_MAX_ATTEMPTS = config.integer("PAIRING_MAX_ATTEMPTS", default=5, minimum=1)
# Wrong PINs from all accounts together before a request is locked: 1000 of 31**8 PINs
# (docs/secure-registration.md says why this many).
PAIRING_MAX_ATTEMPTS_TOTAL = config.integer("PAIRING_MAX_ATTEMPTS_TOTAL", default=1000, minimum=1)
if max(PAIRING_MAX_ATTEMPTS, PAIRING_MAX_ATTEMPTS_TOTAL) > 30_000:
    # The counters are small integers in the database.
    config.refuse("PAIRING_MAX_ATTEMPTS_TOTAL", str(PAIRING_MAX_ATTEMPTS_TOTAL), "at most 30000")
RATE_LIMIT_PAIRING_FAILURES = config.rate(
    "RATE_LIMIT_PAIRING_FAILURES", default="5/900"
)  # per user
RATE_LIMIT_MESSAGES = config.rate("RATE_LIMIT_MESSAGES", default="100/60")  # per device
RATE_LIMIT_MESSAGES_DAILY = config.rate("RATE_LIMIT_MESSAGES_DAILY", default="1000/86400")
WEBSOCKET_MAX_ERRORS = config.integer(
    "WEBSOCKET_MAX_ERRORS", default=3, minimum=1
)  # then the socket is closed
# WebSocket groups: Redis when there is one, so every ASGI process reaches every socket.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis in production; with nothing configured, a broker kept in files
# under var/ so a laptop runs the real worker and scheduler with no server.
CELERY_BROKER_URL = config.url(
    "CELERY_BROKER_URL",
    default=REDIS_URL or "filesystem://",
    schemes={"redis", "rediss", "filesystem", "amqp", "amqps", "pyamqp", "sqs", "memory"},
)
if CELERY_BROKER_URL == "filesystem://":
    # The folders are made by portal.setup_local (make run) or by whoever points here.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (remote control) exchanges; kombu's default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = config.boolean("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-registrations": {
        "task": "registrations.tasks.expire_registrations",
        "schedule": EXPIRY_SWEEP_SECONDS,
    },
    "purge-secure-records": {
        "task": "registrations.tasks.purge_old_records",
        "schedule": 24 * 3600.0,
    },
    "expire-whitelist": {
        "task": "devices.tasks.expire_whitelist",
        "schedule": EXPIRY_SWEEP_SECONDS,
    },
    "fail-stalled-imports": {
        "task": "devices.tasks.fail_stalled_imports",
        "schedule": 300.0,
    },
    "purge-old-records": {
        "task": "devices.tasks.purge_old_records",
        "schedule": 24 * 3600.0,
    },
}

LOG_LEVEL = config.log_level("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# --- Sign-in lockout (django-axes; accounts/lockout.py) ------------------------------
# Failed sign-ins on /login/ and /admin/login/ are counted per username and address, per
# address, and per username from every address (a higher limit); past a limit that lock
# refuses (429, Retry-After) until its failures are older than the cool-off. Counted in
# the database every web process shares: axes' cache handler cannot reset every lock
# (`axes_reset`), shows nothing in the admin, and axes itself refuses the file cache the
# laptop setup uses (check axes.W001).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out sign-in before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "accounts.lockout.SignInAttempts"
AXES_FAILURE_LIMIT = config.integer("LOGIN_FAILURE_LIMIT", default=10, minimum=1)
AXES_COOLOFF_TIME = timedelta(
    minutes=config.integer("LOGIN_LOCKOUT_MINUTES", default=15, minimum=1)
)
# An account from one address (a stranger locks only their own address out of it) and
# one address over any accounts (one password sprayed), each at AXES_FAILURE_LIMIT.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
# An account from every address: guesses spread over many addresses stay bounded, high
# enough that a stranger cannot easily lock its owner out (judged in accounts/lockout.py).
LOGIN_ACCOUNT_FAILURE_LIMIT = config.integer(
    "LOGIN_ACCOUNT_FAILURE_LIMIT", default=10 * AXES_FAILURE_LIMIT, minimum=1
)
# Refused attempts do not extend a lock: it lifts on time however often a stranger
# keeps trying, and to set it again they must fail again (each an event).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# portal.net.client_ip, an IPv6 client counted by its /64.
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.counted_address"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
# Masked in axes' log lines and in the form data it keeps with each attempt.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
