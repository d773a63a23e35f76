"""Streaming responses under ASGI.

WhiteNoise answers a static file with a FileResponse read by a synchronous
iterator, and so may any view that streams. Django's ASGI handler can only
consume such an iterator by warning and reading it whole on the event loop,
and a warning raised there ends the response half sent with its file open.
This middleware gives the handler an asynchronous iterator instead, which
pulls each chunk off the event loop; the response keeps its file and closes
it when the handler closes the response.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest


class AsyncStreamingMiddleware:
    """Under ASGI, stream synchronous streaming responses chunk by chunk from a thread."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # WSGI servers iterate synchronous responses themselves.
        if isinstance(request, ASGIRequest) and response.streaming and not response.is_async:
            response.streaming_content = _chunks_from_a_thread(response.streaming_content)
        return response


async def _chunks_from_a_thread(chunks):
    # In the thread that ran the view: a CSV export's chunks come from a
    # database cursor, and a connection belongs to one thread.
    next_chunk = sync_to_async(next, thread_sensitive=True)
    while (chunk := await next_chunk(chunks, None)) is not None:
        yield chunk
