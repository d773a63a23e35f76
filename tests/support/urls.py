"""The project's URLconf as tests walk it: every route, and a route with its
parameters filled in."""

import re

import pytest
from django.urls import URLPattern, URLResolver

PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def walk(patterns, prefix="", namespace=""):
    """(route, namespace, pattern) for every view under `patterns`, includes followed."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), namespace, entry


def fill(route: str, values: dict, where: str = "the test's path values") -> str:
    """`route` with each <parameter> replaced by its value; a parameter without one
    fails the test, naming where to add it."""

    def value(match):
        name = match.group(1)
        if name not in values:
            pytest.fail(f"{route}: add a value for <{name}> to {where}")
        return str(values[name])

    return "/" + PARAMETER.sub(value, route)
