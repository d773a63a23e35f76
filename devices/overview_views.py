"""The connector overview, the first tab of a connector: its page and its live feed.

Both are for the connector's device makers (`maker_required`, then
`connectors_for`: anyone else's connector is a 404) and show the same data
(`devices.overview`): the page renders it, the feed returns it as JSON for
the page to redraw every few seconds.
"""

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.permissions import maker_required
from connectors.views import connector_context, get_connector
from devices import overview
from devices.console_forms import OverviewForm

LIVE_SECONDS = 5


def chosen_range(request) -> tuple[OverviewForm, str]:
    form = OverviewForm(request.GET)
    if form.is_valid() and form.cleaned_data["range"]:
        return form, form.cleaned_data["range"]
    return form, overview.DEFAULT_RANGE


@maker_required
@require_GET
def overview_page(request, connector_id):
    connector = get_connector(request, connector_id)
    form, range_key = chosen_range(request)
    data = overview.overview(connector, range_key)
    context = connector_context(request, connector, "overview")
    context.update(
        data=data,
        range_key=range_key,
        ranges=overview.RANGES.values(),
        range_errors=form.errors.get("range"),
        live_url=reverse("devices:overview-live", kwargs={"connector_id": connector.pk}),
        live_seconds=LIVE_SECONDS,
    )
    return render(request, "devices/overview.html", context)


@maker_required
@require_GET
def overview_live(request, connector_id):
    """The overview's numbers as JSON; a range the page does not offer is a 400."""
    connector = get_connector(request, connector_id)
    form = OverviewForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form.errors.get_json_data()}, status=400)
    range_key = form.cleaned_data["range"] or overview.DEFAULT_RANGE
    return JsonResponse(overview.overview(connector, range_key))
