"""Checks for data that arrives from outside: text that must be text, JSON that must be plain data.

Every door that takes text or JSON from a file, an archive, an argument or a
request passes it through here where it enters, so a lone surrogate, a number
that is not a number or a bomb of nesting is refused with a clear message
instead of failing deep inside (issue 31).
"""

from __future__ import annotations

import json
import math
from typing import Any

from higgs_cli.errors import UsageError

MAX_JSON_DEPTH = 32  # the same nesting limit as project.yaml
MAX_INT_DIGITS = 20  # every integer higgs reads fits in 64 bits; more digits is not a value of ours


def unencodable_at(text: str) -> int | None:
    """The index of the first character that cannot be written as UTF-8 (a lone surrogate), else None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def text_problem(text: str) -> str | None:
    """Why `text` is not text (a lone surrogate, e.g. a byte that was not UTF-8), or None when it is."""
    at = unencodable_at(text)
    if at is None:
        return None
    code = ord(text[at])
    if 0xDC80 <= code <= 0xDCFF:  # how Python carries an undecodable byte of argv or a file name
        return f"holds the byte 0x{code - 0xDC00:02X} at character {at + 1}, which is not UTF-8 text"
    return f"holds a lone surrogate U+{code:04X} at character {at + 1}, which is not a character"


def check_utf8(text: str, what: str) -> str:
    """`text` unchanged, or UsageError naming `what` when it cannot be written as UTF-8."""
    problem = text_problem(text)
    if problem:
        raise UsageError(f"{what} {problem}", hint="give UTF-8 text (e.g. convert it with `iconv -t UTF-8`)")
    return text


class BadJSON(json.JSONDecodeError):
    """JSON that parses but is not plain data of ours: NaN, a bomb of digits or nesting, a lone surrogate.

    A JSONDecodeError, so every reader that already reports malformed JSON
    reports these the same way; `str()` is the message alone.
    """

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.msg, self.doc, self.pos, self.lineno, self.colno = message, "", 0, 1, 1


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise BadJSON(f"a number with {len(digits.lstrip('-'))} digits is out of range")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJSON(f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise BadJSON(f"{name} is not a number JSON allows")


def loads(data: str | bytes) -> Any:
    """json.loads for untrusted data; BadJSON (a JSONDecodeError) for anything but plain, finite data.

    Refused: NaN and ±Infinity, numbers out of range (1e400, 5,000 digits),
    nesting deeper than MAX_JSON_DEPTH, and text (keys too) holding lone
    surrogates (the escape "\\ud800" alone).
    """
    try:
        value = json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise BadJSON(f"nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise BadJSON(f"a text value {problem}")
        elif isinstance(item, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                raise BadJSON(f"nested too deeply (at most {MAX_JSON_DEPTH} levels)")
            children = list(item.items()) if isinstance(item, dict) else item
            for child in children:
                if isinstance(child, tuple):  # a key and its value
                    stack.append((child[0], depth))
                    stack.append((child[1], depth + 1))
                else:
                    stack.append((child, depth + 1))
