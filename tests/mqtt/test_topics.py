"""MQTT topic names and filters, checked as the MQTT standards define them."""

import pytest

from certificates.topics import (
    InvalidTopicFilter,
    check_topic_filter,
    check_topic_filters,
    check_topic_name,
)


@pytest.mark.parametrize(
    "topic",
    ["#", "+", "a", "a/#", "a/+", "+/+/#", "/", "//", "/a/", "a//b", "sport/tennis/+/#", "ü/€"],
)
def test_valid_topic_filters_are_kept_as_they_are(topic):
    assert check_topic_filter(topic) == topic


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        ("1/#/1", '"#" must be the last level'),
        ("#/", '"#" must be the last level'),
        ("a#", '"#" must be the last level'),
        ("a/#b", '"#" must be the last level'),
        ("a+", '"+" must be a whole level'),
        ("a/+b/c", '"+" must be a whole level'),
        ("", "at least one character"),
        ("a\x00", "NUL"),
        ("a\x1f", "control characters"),
        ("a\x7f", "control characters"),
        ("a\x85", "control characters"),
        ("\ud800", "not valid UTF-8"),
        ("x" * 65536, "at most 65535 bytes"),
        ("€" * 21846, "at most 65535 bytes"),
        ("$SYS/broker/#", "reserved for the broker"),
        ("$share/group/a", "reserved for the broker"),
        (None, "is a string"),
        (b"a/b", "is a string"),
    ],
)
def test_invalid_topic_filters_are_refused_saying_why(topic, says):
    with pytest.raises(InvalidTopicFilter) as refused:
        check_topic_filter(topic)
    assert says in str(refused.value)


def test_the_longest_filter_mqtt_allows_is_accepted():
    assert check_topic_filter("x" * 65535)
    assert check_topic_filter("€" * 21845)  # 65,535 bytes of UTF-8


def test_reserved_topics_are_accepted_by_the_owner_of_that_namespace():
    assert check_topic_filter("$resource/+", reserved_ok=True) == "$resource/+"
    assert check_topic_name("$provision/00000001", reserved_ok=True)
    with pytest.raises(InvalidTopicFilter):
        check_topic_filter("$resource/#/x", reserved_ok=True)


def test_a_wildcard_inside_the_levels_does_not_count_as_reserved():
    assert check_topic_filter("+/$SYS") == "+/$SYS"


@pytest.mark.parametrize("topic", ["a/+", "a/#", "#", "+"])
def test_topic_names_hold_no_wildcards(topic):
    with pytest.raises(InvalidTopicFilter, match="no"):
        check_topic_name(topic)


def test_a_list_of_filters_keeps_order_and_drops_repeats():
    assert check_topic_filters(["b/#", "a", "b/#", "+"]) == ["b/#", "a", "+"]
    assert check_topic_filters([]) == []


@pytest.mark.parametrize(("topics", "says"), [("a/#", "a list"), (["a"] * 101, "at most 100")])
def test_a_list_of_filters_is_a_bounded_list(topics, says):
    with pytest.raises(InvalidTopicFilter) as refused:
        check_topic_filters(topics)
    assert says in str(refused.value)
