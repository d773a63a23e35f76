"""Event kinds written by secure registration, pairing and secure devices."""

REGISTER = "register"
PAIR = "pair"
PAIR_FAILED = "pair_failed"
MESSAGE = "message"
RELEASE = "release"
RENAME = "rename"
