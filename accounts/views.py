"""Portal pages for companion apps: a device maker's apps (register, list, delete),
and every user's granted apps (see, revoke).

The OAuth endpoints themselves are the toolkit's (accounts/oauth_views.py).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import oauth
from accounts.forms import AppForm
from accounts.permissions import maker_required
from audit.events import Actor
from core.net import client_ip

VIA = "portal"


@maker_required
def apps(request):
    return render(request, "accounts/apps.html", {"apps": oauth.makers_apps(request.user)})


@maker_required
@never_cache
@require_http_methods(["GET", "POST"])
def app_new(request):
    form = AppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            app, secret = oauth.register_app(
                request.user,
                data["name"],
                data["kind"],
                data["redirect_uri_list"],
                actor=Actor.of(request, VIA),
                ip=client_ip(request),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error("redirect_uris" if field == "redirect_uris" else None, errors)
        except oauth.AppError as exc:
            form.add_error(None, exc.message)
        else:
            # The secret is shown on this answer only: never stored in the clear, and
            # no page can show it again.
            return render(request, "accounts/app_created.html", {"app": app, "secret": secret})
    return render(request, "accounts/app_new.html", {"form": form})


@maker_required
@require_POST
def app_delete(request, app_id):
    try:
        oauth.delete_app(request.user, app_id, actor=Actor.of(request, VIA), ip=client_ip(request))
    except oauth.AppError:
        messages.error(request, "No such app.")
    else:
        messages.success(request, "App deleted: its tokens no longer work.")
    return redirect("accounts:apps")


@login_required
def granted(request):
    return render(request, "accounts/granted.html", {"granted": oauth.granted_apps(request.user)})


@login_required
@require_POST
def revoke(request, app_id):
    try:
        app = oauth.revoke_app(
            request.user, app_id, actor=Actor.of(request, VIA), ip=client_ip(request)
        )
    except oauth.AppError:
        messages.error(request, "No such app.")
    else:
        messages.success(request, f"{app.name} no longer has access to your account.")
    return redirect("accounts:granted")
