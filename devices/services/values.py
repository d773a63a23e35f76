"""Alias formats and value checks, shared by the write paths (stored and queued)."""

import json

from connectors.models import Connector, Resource
from core import inputs
from devices.services.errors import InvalidData


def check_value(fmt: str, value: str) -> None:
    if fmt == Resource.NUMBER:
        try:
            number = float(value)
        except ValueError as exc:
            raise InvalidData(f"{value!r} is not a number") from exc
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidData(f"{value!r} is not a finite number")
    elif fmt == Resource.BOOLEAN:
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidData(f"{value!r} is not a boolean (true, false, 1 or 0)")
    elif fmt == Resource.JSON:
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise InvalidData(f"{value[:100]!r} is not JSON (or nests too deeply)") from exc
        problem = inputs.json_problem(parsed)
        if problem:
            raise InvalidData(problem)


_resource_formats_memo: dict[str, tuple[int, dict[str, str]]] = {}


def resource_formats(connector: Connector) -> dict[str, str]:
    """alias → format of a connector, remembered per process until its revision changes.

    The revision comes with the connector row the request loaded anyway, so a
    resource defined a moment ago is never missed.
    """
    memo = _resource_formats_memo.get(connector.pk)
    if memo is not None and memo[0] == connector.resources_revision:
        return memo[1]
    formats = dict(
        Resource.objects.filter(connector_id=connector.pk).values_list("alias", "format")
    )
    _resource_formats_memo[connector.pk] = (connector.resources_revision, formats)
    return formats


def split_pairs(formats: dict[str, str], pairs: list[tuple[str, str]]):
    """(pairs to store, event reason) of a write; InvalidData for a bad value.

    Aliases not defined are left out of the store and named in the reason.
    """
    if not pairs:
        raise InvalidData("no alias=value pairs in the body")
    stored, ignored = [], []
    for alias, value in pairs:
        if alias in formats:
            try:
                check_value(formats[alias], value)
            except InvalidData as exc:
                raise InvalidData(f"{alias}: {exc.message}") from exc
            stored.append((alias, value))
        else:
            ignored.append(alias)
    reason = ", ".join(f"{alias}={value}" for alias, value in pairs)
    if ignored:
        reason += f" (not stored, undefined: {', '.join(ignored)})"
    return stored, reason
