"""Every Gatehouse URL plus `bench/bare`: the floor the device API is measured against."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from portal.urls import urlpatterns as gatehouse_urlpatterns


@csrf_exempt
def bare(request):
    # Through the full middleware stack, like a device request, but no work at all.
    return HttpResponse(status=204)


urlpatterns = [*gatehouse_urlpatterns, path("bench/bare", bare)]
