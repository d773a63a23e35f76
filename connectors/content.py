"""The content area: files device makers upload per connector, which its devices
list and download (device_api.content serves them).

Uploads and deletes come from the portal and the management API; both call
these, so each leaves the same line in the connector's log. A file's bytes are
stored under a random name in the CONTENT_STORAGE backend, hashed while they are
read (the SHA-256 is the download's ETag); replacing or deleting a file removes
its old bytes once the change is committed.
"""

import hashlib
import mimetypes

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import Actor, record_event
from audit.models import Event
from connectors.models import (
    CONTENT_DESCRIPTION_MAX,
    CONTENT_TYPE_MAX,
    CONTENT_TYPE_PATTERN,
    Connector,
    ContentFile,
    content_name_problem,
    content_storage,
)
from core.errors import Refusal
from core.inputs import text_problem

DEFAULT_TYPE = "application/octet-stream"
_CHUNK = 1024 * 1024


class ContentError(Refusal):
    pass


class InvalidContent(ContentError):
    """A bad name, content type, description or file (400)."""


class ContentTooLarge(ContentError):
    """The file is larger than CONTENT_MAX_BYTES (413)."""


class ContentNotFound(ContentError):
    """No file of that name in the connector's content area (404)."""

    default_message = "no such content"


def too_large_message() -> str:
    return f"the file is larger than CONTENT_MAX_BYTES ({settings.CONTENT_MAX_BYTES} bytes)"


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Spools an upload to a temporary file and stops reading past CONTENT_MAX_BYTES,
    so a body without (or with a false) Content-Length costs no more than the limit."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.CONTENT_MAX_BYTES:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)


def limit_uploads(request) -> LimitedUploadHandler:
    """Install the limited handler on a Django request before its body is read."""
    handler = LimitedUploadHandler(request)
    # A request whose body something read already (a session's CSRF check) keeps its
    # handlers; upload() still refuses a file past the limit.
    if not hasattr(request, "_files"):
        request.upload_handlers = [handler]
    return handler


def check_name(name) -> str:
    if not isinstance(name, str):
        raise InvalidContent("the name is text")
    problem = content_name_problem(name)
    if problem:
        raise InvalidContent(problem)
    return name


def check_content_type(value: str | None, name: str, uploaded_type: str | None = None) -> str:
    """The type given, else the one the upload came with, else one guessed from the name."""
    if value:
        if len(value) > CONTENT_TYPE_MAX or not CONTENT_TYPE_PATTERN.fullmatch(value):
            raise InvalidContent(
                "content_type is a media type such as application/octet-stream "
                f"(at most {CONTENT_TYPE_MAX} characters, no commas)"
            )
        return value
    for candidate in (uploaded_type, mimetypes.guess_type(name, strict=False)[0]):
        if (
            candidate
            and len(candidate) <= CONTENT_TYPE_MAX
            and CONTENT_TYPE_PATTERN.fullmatch(candidate)
        ):
            return candidate
    return DEFAULT_TYPE


def check_description(value: str | None) -> str:
    value = value or ""
    if len(value) > CONTENT_DESCRIPTION_MAX:
        raise InvalidContent(f"the description is at most {CONTENT_DESCRIPTION_MAX} characters")
    if text_problem(value) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidContent("the description is one line of text")
    return value


def _by(actor: Actor | None) -> str:
    return f" by {actor}" if actor else ""


def _digest(upload) -> str:
    sha = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(_CHUNK):
        sha.update(chunk)
    upload.seek(0)
    return sha.hexdigest()


def upload(
    connector: Connector,
    uploaded,
    *,
    name: str | None = None,
    content_type: str | None = None,
    description: str | None = "",
    actor: Actor | None,
    ip=None,
) -> tuple[ContentFile, bool]:
    """Store `uploaded` (a Django UploadedFile) as `name` (default: its own file name),
    replacing a file of that name. Returns the row and whether it is new."""
    name = check_name(name if name else (uploaded.name or ""))
    content_type = check_content_type(content_type, name, getattr(uploaded, "content_type", None))
    description = check_description(description)
    if uploaded.size > settings.CONTENT_MAX_BYTES:
        raise ContentTooLarge(too_large_message())
    sha256 = _digest(uploaded)
    storage = content_storage()
    fresh = ContentFile(connector=connector, name=name)
    # upload_to picks a random name; the maker's name never reaches the storage.
    stored = storage.save(fresh.file.field.generate_filename(fresh, "content"), uploaded)
    fields = {
        "content_type": content_type,
        "description": description,
        "size": uploaded.size,
        "sha256": sha256,
        "file": stored,
        "uploaded_at": timezone.now(),
        "uploaded_by": actor.user if actor is not None else None,
    }
    try:
        try:
            content, created = _save(connector, name, fields)
        except IntegrityError:
            # Another upload created the same name meanwhile: this one replaces it.
            content, created = _save(connector, name, fields)
    except BaseException:
        storage.delete(stored)
        raise
    verb = "uploaded" if created else "replaced"
    record_event(
        connector.pk,
        "",
        Event.CREATE if created else Event.CHANGE,
        f"content “{name}” {verb} ({content.size} bytes, {content_type}, "
        f"sha256 {sha256}){_by(actor)}",
        ip,
        actor=actor,
    )
    return content, created


def _save(connector: Connector, name: str, fields: dict) -> tuple[ContentFile, bool]:
    with transaction.atomic():
        current = (
            ContentFile.objects.select_for_update().filter(connector=connector, name=name).first()
        )
        if current is None:
            return ContentFile.objects.create(connector=connector, name=name, **fields), True
        old = current.file.name
        for field, value in fields.items():
            setattr(current, field, value)
        current.save()
        if old and old != current.file.name:
            transaction.on_commit(lambda: content_storage().delete(old))
        return current, False


def delete(content: ContentFile, *, actor: Actor | None, ip=None) -> None:
    """Remove a file from the content area; its bytes go once the delete commits."""
    with transaction.atomic():
        record_event(
            content.connector_id,
            "",
            Event.DELETE,
            f"content “{content.name}” deleted ({content.size} bytes){_by(actor)}",
            ip,
            actor=actor,
        )
        content.delete()


def files_of(connector_id: str):
    return ContentFile.objects.filter(connector_id=connector_id)


def find(connector_id: str, name: str) -> ContentFile:
    """The connector's file called `name`, or ContentNotFound (also for names no file
    could have, which never reach the database)."""
    if content_name_problem(name):
        raise ContentNotFound()
    content = files_of(connector_id).filter(name=name).first()
    if content is None:
        raise ContentNotFound()
    return content
