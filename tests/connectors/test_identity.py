import pytest

from connectors.identity import IdentityFormat, InvalidIdentity, normalize_identity


def ok(raw, **fmt):
    return normalize_identity(raw, IdentityFormat(**fmt))


def refused(raw, **fmt):
    with pytest.raises(InvalidIdentity) as info:
        normalize_identity(raw, IdentityFormat(**fmt))
    return str(info.value)


def test_opaque_accepts_printable_characters():
    assert ok("Dev-01_x.y") == "Dev-01_x.y"


def test_opaque_refuses_spaces_and_control_characters():
    assert "spaces" in refused("dev 1")
    refused("dev\n1")
    refused("dév")


def test_empty_identity_is_refused_with_what_was_expected():
    assert "expected" in refused("")


def test_base10_with_length_matches_seed_00000001():
    assert ok("00000001", type="base10", length=8) == "00000001"


def test_base10_refuses_letters_and_wrong_length():
    assert "non-digits" in refused("0000000a", type="base10", length=8)
    message = refused("0001", type="base10", length=8)
    assert "4 characters" in message and "exactly 8 decimal digits" in message


def test_hex_is_stored_lower_case():
    assert ok("ABCdef01", type="hex") == "abcdef01"
    refused("abcg", type="hex")


def test_uuid4_is_lower_cased_and_version_checked():
    assert ok("651B3B4D-5BF3-446D-9FD0-BACDC7BFBFFF", type="uuid4") == (
        "651b3b4d-5bf3-446d-9fd0-bacdc7bfbfff"
    )
    assert "version 4" in refused("651b3b4d-5bf3-146d-9fd0-bacdc7bfbfff", type="uuid4")
    refused("651b3b4d5bf3446d9fd0bacdc7bfbfff", type="uuid4")


@pytest.mark.parametrize(
    ("style", "raw", "stored"),
    [
        ("colon", "00:14:22:01:23:4F", "00:14:22:01:23:4f"),
        ("dash", "00-14-22-01-23-4F", "00-14-22-01-23-4f"),
        ("plain", "00142201234F", "00142201234f"),
    ],
)
def test_mac_styles_accept_either_case_and_store_lower_case(style, raw, stored):
    assert ok(raw, type="mac", mac_style=style) == stored


@pytest.mark.parametrize(
    ("style", "raw"),
    [
        ("colon", "00-14-22-01-23-45"),
        ("colon", "00:14:22:01:23"),
        ("dash", "00:14:22:01:23:45"),
        ("plain", "00:14:22:01:23:45"),
        ("plain", "00142201234g"),
    ],
)
def test_mac_in_another_style_is_refused_with_an_example(style, raw):
    message = refused(raw, type="mac", mac_style=style)
    assert "MAC address" in message


def test_prefix_is_required_and_not_counted_in_length():
    fmt = {"prefix": "CC3220-", "type": "mac", "mac_style": "colon"}
    assert ok("CC3220-00:00:00:01:23:45", **fmt) == "CC3220-00:00:00:01:23:45"
    assert "start with" in refused("00:00:00:01:23:45", **fmt)
    assert ok("ABC123", prefix="ABC", type="base10", length=3) == "ABC123"
    refused("ABC1234", prefix="ABC", type="base10", length=3)
    assert "nothing follows" in refused("ABC", prefix="ABC")


def test_prefix_is_case_sensitive_but_mac_digits_are_not():
    assert ok("Hub-AA:BB:CC:DD:EE:FF", prefix="Hub-", type="mac") == "Hub-aa:bb:cc:dd:ee:ff"
    refused("hub-aa:bb:cc:dd:ee:ff", prefix="Hub-", type="mac")


def test_overlong_identity_is_refused():
    refused("x" * 200)


@pytest.mark.parametrize(
    "fmt",
    [
        IdentityFormat(type="nope"),
        IdentityFormat(type="mac", mac_style="dots"),
        IdentityFormat(length=0),
        IdentityFormat(length=500),
        IdentityFormat(prefix="a b"),
    ],
)
def test_impossible_formats_are_refused(fmt):
    with pytest.raises(InvalidIdentity):
        fmt.validate_definition()


def test_descriptions_say_what_is_expected():
    assert IdentityFormat(type="base10", length=8).describe() == "exactly 8 decimal digits"
    assert "aa-bb-cc-dd-ee-ff" in IdentityFormat(type="mac", mac_style="dash").describe()
    assert IdentityFormat(prefix="P-", type="hex").describe().startswith('"P-" followed by')
