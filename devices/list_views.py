"""The Devices tab at scale: status chips with counts, sorts, page sizes, and bulk actions.

Every page is for device makers (`maker_required`) and every lookup goes
through `connectors_for` (get_connector), so another maker's connector is a
404, and picked ids are only ever looked up among the connector's own
devices, so an id of another connector's device changes nothing.
"""

from django.contrib import messages
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import maker_required
from connectors.views import connector_context, get_connector
from core.net import client_ip
from devices import bulk, counting, imports, listing, tasks
from devices.console_forms import PAGE_SIZES, BulkActionForm, DeviceListForm
from devices.models import BulkAction, Device
from devices.views import actor, status_view

LIST_COLUMNS = ("id", "identity", "status", "tags", "name", "last_seen_at", "created_at")
# How many of the devices a bulk action will change its confirmation names.
NAMED_ON_CONFIRM = 10
DONE_WORDS = {
    "revoke": "revoked",
    "reset": "reset",
    "delete": "deleted",
    "tag": "tagged",
    "untag": "untagged",
}


def filters_of(data: dict) -> dict:
    return {"status": data.get("status") or "", "tag": data.get("tag"), "q": data.get("q") or ""}


def query_of(filters: dict, **extra) -> str:
    """A query string for the Devices tab with these filters (and sort, size...)."""
    params = {}
    if filters.get("status"):
        params["status"] = filters["status"]
    if filters.get("tag"):
        name, value = filters["tag"]
        params["tag"] = name if value is None else f"{name}={value}"
    if filters.get("q"):
        params["q"] = filters["q"]
    params.update({key: value for key, value in extra.items() if value not in (None, "")})
    return urlencode(params)


@maker_required
@require_GET
def device_list(request, connector_id):
    connector = get_connector(request, connector_id)
    form = DeviceListForm(request.GET)
    context = connector_context(request, connector, "devices")
    context.update(
        form=form,
        statuses=[status_view(status) for status, _ in Device.STATUSES],
        page_sizes=PAGE_SIZES,
        bulk_actions=BulkAction.ACTIONS,
    )
    if not form.is_valid():
        context.update(devices=[], filtered=True, invalid=True)
        return render(request, "devices/list.html", context, status=400)
    data = form.cleaned_data
    filters = filters_of(data)
    sort, descending, size = data["sort"], data["dir"] == "desc", data["size"]
    devices = bulk.matching(connector, filters)
    page = listing.page(
        devices.only(*LIST_COLUMNS),
        sort,
        descending,
        size,
        after=data["after"],
        before=data["before"],
        last=data["at"] == "last",
    )
    counts = listing.status_counts(
        bulk.matching(connector, {**filters, "status": ""}),
        narrowed=bool(filters["tag"] or filters["q"]),
    )
    everything = listing.total(counts)
    matching = counts[filters["status"]] if filters["status"] else everything
    view = {"sort": sort.key, "dir": data["dir"], "size": size if size != 50 else None}
    context.update(
        devices=page.rows,
        filtered=any(filters.values()),
        filters=filters,
        sort=sort,
        descending=descending,
        size=size,
        matching=matching,
        shown=shown_range(page, data, matching),
        chips=chips(filters, counts, everything, view),
        sort_links=sort_links(filters, sort, descending, size),
        filter_query=query_of(filters),
        view_query=query_of(filters, **view),
        first_query=query_of(filters, **view) if page.has_previous else None,
        last_query=query_of(filters, **view, at="last") if page.has_next else None,
        previous_query=query_of(filters, **view, before=page.previous_cursor)
        if page.has_previous
        else None,
        next_query=query_of(filters, **view, after=page.next_cursor) if page.has_next else None,
        inline_max=bulk.inline_limit(),
    )
    return render(request, "devices/list.html", context)


def shown_range(page: listing.Page, data: dict, matching: counting.Count) -> str:
    """ "1–50 of 52,018" where the position is known, else how many rows are shown."""
    count = len(page.rows)
    if not count:
        return ""
    total = str(matching)
    first_page = not page.has_previous
    if first_page:
        return f"1–{count:,} of {total}"
    if not page.has_next and matching.exact:
        return f"{matching.value - count + 1:,}–{matching.value:,} of {total}"
    return f"{count:,} of {total}"


def chips(filters: dict, counts: dict, everything: counting.Count, view: dict) -> list[dict]:
    """One chip for every status and one for all, each linking to its filter."""
    kept = {key: value for key, value in view.items() if key != "size"}
    result = [
        {
            "status": "",
            "label": "All",
            "count": everything,
            "query": query_of({**filters, "status": ""}, **kept),
            "current": not filters["status"],
        }
    ]
    for status, label in Device.STATUSES:
        result.append(
            {
                "status": status,
                "label": label,
                "count": counts[status],
                "query": query_of({**filters, "status": status}, **kept),
                "current": filters["status"] == status,
            }
        )
    return result


def sort_links(filters: dict, sort: listing.Sort, descending: bool, size: int) -> dict:
    """Each column heading's link: its sort, or the current one turned round."""
    links = {}
    for key, each in listing.SORTS.items():
        if key == sort.key:
            direction = "asc" if descending else "desc"
            state = "descending" if descending else "ascending"
        else:
            direction, state = each.first_direction, "none"
        links[key] = {
            "query": query_of(filters, sort=key, dir=direction, size=size if size != 50 else None),
            "state": state,
            "label": each.label,
        }
    return links


# --- bulk actions -------------------------------------------------------------------


def carried_fields(request) -> list[tuple[str, str]]:
    """The POST's fields the confirmation sends again, as they came."""
    skip = {"csrfmiddlewaretoken", "confirmed"}
    return [
        (key, value)
        for key in request.POST
        if key not in skip
        for value in request.POST.getlist(key)
    ]


@maker_required
@require_POST
def bulk_action(request, connector_id):
    """Confirm, then apply, a bulk action to picked devices or to all a filter matches."""
    connector = get_connector(request, connector_id)
    form = BulkActionForm(request.POST)
    context = connector_context(request, connector, "devices")
    context["form"] = form
    if not form.is_valid():
        context["back_query"] = ""
        return render(request, "devices/bulk_confirm.html", context, status=400)
    data = form.cleaned_data
    filters = filters_of(data)
    action, scope = data["action"], data["scope"]
    if scope == "selected":
        devices = Device.objects.filter(connector=connector, pk__in=data["ids"])
    else:
        devices = bulk.matching(connector, filters)
    if action == "export":
        return export(connector, devices)
    targets = bulk.affected(devices, action)
    back = reverse("devices:list", kwargs={"connector_id": connector.pk})
    back_query = query_of(filters)
    if not data["confirmed"]:
        count = counting.count(targets) if scope == "all" else counting.Count(targets.count(), True)
        context.update(
            action=action,
            action_label=dict(BulkAction.ACTIONS)[action],
            scope=scope,
            count=count,
            named=list(
                targets.order_by("id").values_list("identity", flat=True)[:NAMED_ON_CONFIRM]
            ),
            change_tag=data["change_tag"],
            carried=carried_fields(request),
            back_query=back_query,
            filters=filters,
        )
        return render(request, "devices/bulk_confirm.html", context)
    limit = bulk.inline_limit()
    count = counting.count(targets, cap=limit) if scope == "all" else None
    if scope == "selected" or count.exact:
        changed = bulk.run_now(
            devices, action, data["change_tag"], actor=actor(request), ip=client_ip(request)
        )
        noun = "device" if changed == 1 else "devices"
        messages.success(request, f"{changed:,} {noun} {DONE_WORDS[action]}.")
        return redirect(f"{back}?{back_query}" if back_query else back)
    job = bulk.start(
        connector,
        action=action,
        tag=data["change_tag"],
        filters={**filters, "tag": list(filters["tag"]) if filters["tag"] else None},
        total=count.value,
        user=request.user,
        run_later=tasks.run_bulk_action.delay,
    )
    return redirect("devices:bulk", connector_id=connector.pk, job_id=job.pk)


def export(connector, devices) -> StreamingHttpResponse:
    chunks = (text.encode() for text in imports.export_devices_csv(connector, devices=devices))
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{connector.pk}-devices.csv"'
    return response


def get_job(connector, job_id) -> BulkAction:
    return get_object_or_404(BulkAction, connector=connector, pk=job_id)


@maker_required
@require_GET
def bulk_detail(request, connector_id, job_id):
    connector = get_connector(request, connector_id)
    job = get_job(connector, job_id)
    context = connector_context(request, connector, "devices")
    context.update(
        job=job,
        state=bulk.state(job),
        done_word=DONE_WORDS[job.action],
        action_label=dict(BulkAction.ACTIONS)[job.action],
        progress_url=reverse(
            "devices:bulk-progress", kwargs={"connector_id": connector.pk, "job_id": job.pk}
        ),
    )
    return render(request, "devices/bulk_detail.html", context)


@maker_required
@require_GET
def bulk_progress(request, connector_id, job_id):
    connector = get_connector(request, connector_id)
    return JsonResponse(bulk.state(get_job(connector, job_id)))
