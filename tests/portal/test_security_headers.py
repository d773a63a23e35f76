"""Headers and cookies: a Content-Security-Policy on every page, HSTS and Secure cookies
whenever the request came over TLS (as the proxy says, with its secret), and
`manage.py check --deploy` clean on the production settings README.md documents."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.clients import through_proxy

HSTS = "max-age=31536000; includeSubDomains"
OVER_TLS = {"HTTP_X_FORWARDED_PROTO": "https"}


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/admin/login/", "/connectors/", "/pair/"])
def test_portal_pages_allow_scripts_and_styles_from_gatehouse_only(client, owner, path):
    if path != "/login/":
        client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]


@pytest.mark.django_db
def test_the_api_docs_load_swagger_ui_without_inline_script(client, owner):
    client.force_login(owner)  # the docs are for device makers
    page = client.get("/api/docs/")
    assert page.status_code == 200
    policy = directives(page)
    assert policy["script-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    html = page.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html
    start_up = re.search(r'<script src="([^"]*\?[^"]*script[^"]*)"', html).group(1)
    script = client.get(start_up.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


def test_templates_hold_no_inline_script_style_or_event_handler():
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.I
    )
    found = []
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for number, line in enumerate(template.read_text().splitlines(), 1):
            if inline.search(line):
                found.append(f"{template}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.django_db
def test_over_tls_from_the_proxy_cookies_are_secure_and_hsts_is_sent(client, owner):
    page = client.get("/login/", **through_proxy(**OVER_TLS))
    assert page["Strict-Transport-Security"] == HSTS
    assert page.cookies["csrftoken"]["secure"] is True
    signed_in = client.post(
        "/login/",
        {"username": "owner", "password": "owner-pass-123"},
        HTTP_REFERER="https://testserver/login/",
        **through_proxy(**OVER_TLS),
    )
    assert signed_in.status_code == 302
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] is True and session["httponly"] is True


@pytest.mark.django_db
def test_over_plain_http_there_is_no_hsts_and_cookies_are_not_secure(client):
    page = client.get("/login/", **through_proxy(HTTP_X_FORWARDED_PROTO="http"))
    assert "Strict-Transport-Security" not in page
    assert not page.cookies["csrftoken"]["secure"]


@pytest.mark.django_db
def test_a_forwarded_proto_without_the_proxy_secret_is_not_believed(client, settings):
    for configured in (settings.PROXY_SHARED_SECRET, ""):
        settings.PROXY_SHARED_SECRET = configured
        page = client.get("/login/", **OVER_TLS)
        assert "Strict-Transport-Security" not in page
        assert not page.cookies["csrftoken"]["secure"]
        wrong = client.get("/login/", HTTP_X_GATEHOUSE_PROXY_SECRET="guess", **OVER_TLS)
        assert "Strict-Transport-Security" not in wrong


@pytest.mark.django_db
def test_localhost_over_tls_gets_secure_cookies_but_no_hsts(client):
    """make run serves http://localhost:8000 too; HSTS for the name would lock it out."""
    page = client.get("/login/", HTTP_HOST="localhost:8443", **through_proxy(**OVER_TLS))
    assert page.cookies["csrftoken"]["secure"] is True
    assert "Strict-Transport-Security" not in page


@pytest.mark.django_db(transaction=True)
def test_make_runs_https_port_signs_in_with_a_secure_session_cookie(nginx_proxy, owner):
    """deploy/nginx/local.conf.template, as `make run` renders it, in front of the app."""
    page = nginx_proxy.request("GET", "/login/")
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie
    csrf = re.search(r"csrftoken=([^;]+)", cookie).group(1)
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = nginx_proxy.request(
        "POST",
        "/login/",
        body=f"username=owner&password=owner-pass-123&csrfmiddlewaretoken={form_token}",
        headers={
            "Cookie": f"csrftoken={csrf}",
            "Referer": f"https://localhost:{nginx_proxy.port}/login/",
            "Origin": f"https://localhost:{nginx_proxy.port}",
        },
    )
    assert signed_in.status == 302, signed_in.text
    session = signed_in.headers["Set-Cookie"]
    assert session.startswith(f"{settings.SESSION_COOKIE_NAME}=")
    assert "Secure" in session and "HttpOnly" in session


# --- manage.py check --deploy -------------------------------------------------------


def documented_production_environment(tmp_path) -> dict[str, str]:
    """README.md's production environment file, its secret files made with fresh secrets."""
    readme = Path(settings.BASE_DIR, "README.md").read_text()
    block = re.search(r"```sh\n# /etc/gatehouse/gatehouse\.env\n(.*?)```", readme, re.S)
    assert block, "README.md documents no /etc/gatehouse/gatehouse.env"
    environment = {}
    for line in block.group(1).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, value = line.split("=", 1)
        if name.endswith("_FILE"):
            secret_file = tmp_path / Path(value).name
            secret_file.write_text(secrets.token_urlsafe(50))
            value = str(secret_file)
        environment[name] = value
    return environment


def check_deploy(tmp_path, environment) -> subprocess.CompletedProcess:
    # Nothing from this test run's own environment: only what the README says.
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    base["GATEHOUSE_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env={**base, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_on_the_documented_production_settings(tmp_path):
    result = check_deploy(tmp_path, documented_production_environment(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_no_proxy_secret_is_set(tmp_path):
    environment = documented_production_environment(tmp_path)
    del environment["PROXY_SHARED_SECRET_FILE"]
    result = check_deploy(tmp_path, environment)
    assert result.returncode != 0
    assert "gatehouse.W001" in result.stderr


def test_check_deploy_warns_about_a_short_proxy_secret(tmp_path):
    environment = documented_production_environment(tmp_path)
    Path(environment["PROXY_SHARED_SECRET_FILE"]).write_text("short-secret")
    result = check_deploy(tmp_path, environment)
    assert result.returncode != 0
    assert "gatehouse.W002" in result.stderr
