"""The Content-Security-Policy header: one policy for every response, built once.

The policy is CONTENT_SECURITY_POLICY (directive -> sources). A view that needs more
(the API docs page) is wrapped in `allow(...)`, which adds sources to directives for
its responses only. Gatehouse has no inline script or style, so no nonces are needed,
and the header costs one dictionary write per response, device API included.
"""

from functools import wraps

from django.conf import settings

HEADER = "Content-Security-Policy"


def render(directives: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


def allow(**extra: list[str]):
    """Decorate a view: its responses also allow `extra` (e.g. img_src=["data:"])."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            return extend(view(*args, **kwargs), **extra)

        return wrapped

    return decorator


def extend(response, **extra: list[str]):
    """`response` with the policy that also allows `extra`, for this response only."""
    policy = dict(settings.CONTENT_SECURITY_POLICY)
    for name, sources in extra.items():
        name = name.replace("_", "-")
        policy[name] = [*policy.get(name, []), *sources]
    response[HEADER] = render(policy)
    return response


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = render(settings.CONTENT_SECURITY_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = self.policy
        return response
