"""GET /healthz: 200 while the database, the cache and (with queued writes) the
ingest are fine; 503 naming what is not."""

import pytest
from django.test import override_settings

from devices.ingest import Ingest
from devices.services import write_queue

pytestmark = pytest.mark.django_db


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
    assert "no-store" in response["Cache-Control"]


def test_only_reads(client):
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            # Nothing listens on the discard port: a real refused connection.
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
)
def test_a_cache_that_cannot_be_reached_is_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "failing",
        "checks": {"database": "ok", "cache": "unavailable"},
    }


@pytest.mark.redis
def test_an_ingest_that_falls_behind_is_503_until_the_queue_is_stored(
    client, settings, device_client, connector, whitelist
):
    settings.DEVICE_WRITE_QUEUE = True
    write_queue.forget_all()
    whitelist(connector, "00000001")
    authorization = "Token " + device_client.activate("00000001").content.decode()
    for value in ("1", "2"):
        assert device_client.write(f"myalias={value}", authorization).status_code == 204

    ingest = client.get("/healthz").json()["checks"]["ingest"]
    assert ingest["status"] == "ok" and ingest["queued"] == 2

    settings.INGEST_STALE_SECONDS = 0  # anything queued is now overdue
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["ingest"]["status"] == "behind"

    assert Ingest().drain() == 2
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["ingest"] == {
        "status": "ok",
        "queued": 0,
        "oldest_seconds": 0.0,
    }
    write_queue.forget_all()
