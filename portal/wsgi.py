import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

from portal.checks import refuse_unsafe_proxy_settings  # noqa: E402

# A web process that would trust proxies it cannot recognise does not start.
refuse_unsafe_proxy_settings()
