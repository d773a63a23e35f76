"""MQTT topic names and topic filters, checked as the MQTT 3.1.1 and 5.0 standards define
them, so what Gatehouse stores is what a broker will accept.

A topic filter is 1 to 65,535 bytes of UTF-8 without U+0000; levels are separated
by "/"; "+" stands for one whole level and "#" for the rest, so "#" is only ever the
last level ("1/#", "#"). Topics whose first level starts with "$" belong to the
broker and the server ("$SYS/…", "$share/…", Gatehouse's own "$resource/…"): callers
that hand out permissions to devices refuse them unless they own that namespace.
Control characters are refused too: brokers may drop a client that sends them.
"""

import re

MAX_TOPIC_BYTES = 65535
MAX_FILTERS = 100
# C0 and C1 control characters and DEL; U+0000 among them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class InvalidTopicFilter(ValueError):
    """A topic or a topic filter MQTT does not allow; the message says why."""


def _check_text(topic, what: str) -> None:
    if not isinstance(topic, str):
        raise InvalidTopicFilter(f"a {what} is a string, not {type(topic).__name__}")
    if not topic:
        raise InvalidTopicFilter(f"a {what} is at least one character")
    shown = topic[:80]
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidTopicFilter(f"{shown!r} is not valid UTF-8") from None
    if size > MAX_TOPIC_BYTES:
        raise InvalidTopicFilter(f"a {what} is at most {MAX_TOPIC_BYTES} bytes, not {size}")
    if "\x00" in topic:
        raise InvalidTopicFilter(f"{shown!r}: a {what} holds no NUL character")
    if _CONTROL.search(topic):
        raise InvalidTopicFilter(f"{shown!r}: a {what} holds no control characters")


def _check_reserved(topic: str, what: str, reserved_ok: bool) -> None:
    if topic.startswith("$") and not reserved_ok:
        raise InvalidTopicFilter(
            f'"{topic[:80]}": {what}s starting with "$" are reserved for the broker'
        )


def check_topic_filter(topic, *, reserved_ok: bool = False) -> str:
    """`topic` if it is a valid MQTT topic filter, else InvalidTopicFilter."""
    _check_text(topic, "topic filter")
    levels = topic.split("/")
    for number, level in enumerate(levels, start=1):
        if "#" in level and (level != "#" or number != len(levels)):
            raise InvalidTopicFilter(
                f'"{topic[:80]}": "#" must be the last level, alone in it (as in "a/#")'
            )
        if "+" in level and level != "+":
            raise InvalidTopicFilter(f'"{topic[:80]}": "+" must be a whole level (as in "a/+/b")')
    _check_reserved(topic, "topic filter", reserved_ok)
    return topic


def check_topic_name(topic, *, reserved_ok: bool = False) -> str:
    """`topic` if it is a valid MQTT topic name (what a message is published to)."""
    _check_text(topic, "topic name")
    if "+" in topic or "#" in topic:
        raise InvalidTopicFilter(f'"{topic[:80]}": a topic name holds no "+" or "#"')
    _check_reserved(topic, "topic name", reserved_ok)
    return topic


def check_topic_filters(topics, *, reserved_ok: bool = False) -> list[str]:
    """A list of valid topic filters, in order, each once."""
    if not isinstance(topics, list):
        raise InvalidTopicFilter('a list of topic filters is expected, e.g. ["1/#", "a/+/b"]')
    if len(topics) > MAX_FILTERS:
        raise InvalidTopicFilter(f"at most {MAX_FILTERS} topic filters, not {len(topics)}")
    return list(
        dict.fromkeys(check_topic_filter(topic, reserved_ok=reserved_ok) for topic in topics)
    )
