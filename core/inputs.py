"""Checks on untrusted text and JSON before it reaches the database.

PostgreSQL refuses NUL characters in text and jsonb, and lone UTF-16 surrogates
(which JSON's "\\ud800" escapes can produce) cannot be encoded for it at all;
unchecked, either turns a bad request into a 500. Deeply nested JSON costs
recursion wherever it is encoded again. Parsers call these so that such input
is a 400 saying what is wrong.
"""

import re

# Deeper than any device message needs, far below Python's recursion limit.
MAX_JSON_DEPTH = 64
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as text, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "NUL characters are not allowed"
    return "text is not valid Unicode (a lone surrogate)"


def json_problem(value, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON `value` cannot be stored, or None: a string or key that
    `text_problem` refuses, or nesting deeper than `max_depth`."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return f"JSON nests deeper than {max_depth} levels"
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
            continue
        else:
            continue
        if problem:
            return problem
    return None
