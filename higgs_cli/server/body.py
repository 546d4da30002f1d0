"""The one door every JSON body comes through: its media type, its size, and JSON that is really
data (finite numbers, text that is UTF-8, a bounded depth) before any endpoint reads a field.

A browser page may send `text/plain` or form bodies to any address without
asking first (no CORS preflight), so a JSON route that parsed those would be
drivable from any web page: only `application/json` is read (415 otherwise).
`NaN`, `Infinity` and numbers past a float's range (`1e400`) are not JSON
numbers a field can hold; a lone surrogate (`"\\ud800"`) is not text that can
be written or spoken; both are refused here, naming where they were found.
"""

from __future__ import annotations

import json
import math

from starlette.requests import ClientDisconnect, Request

from higgs_cli.server.errors import ApiError
from higgs_cli.server.limits import Limits

JSON_MEDIA_TYPE = "application/json"
MAX_DEPTH = 32  # the deepest request the API defines is 5 levels (jobs[i].history[j].codes.shape)


class _NotData(ValueError):
    pass


def _no_constant(name: str):
    raise _NotData(f"{name} is not a number JSON can carry; send a finite number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotData(f"{text[:40]} is beyond the range of a number; send a finite number")
    return value


def check_media_type(request: Request) -> None:
    """415 unless the body is declared `application/json` (parameters such as charset allowed)."""
    declared = request.headers.get("content-type", "")
    media = declared.split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE:
        shown = f"'{declared[:80]}'" if declared else "no Content-Type"
        raise ApiError(415, f"this endpoint reads JSON: send the body with 'Content-Type: application/json' "
                            f"(got {shown})", code="unsupported_media_type")


def check_data(value, where: str = "") -> None:
    """400 for a lone surrogate in any string or key, or nesting deeper than MAX_DEPTH (walked
    without recursion, so depth itself cannot exhaust the stack)."""
    stack = [(value, where or "body", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(400, f"the request nests deeper than {MAX_DEPTH} levels at {path}", code="invalid_json")
        if isinstance(item, str):
            _text(item, path)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _text(key, f"{path} (a key)")
                stack.append((inner, key if path == "body" else f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, f"{path}[{i}]", depth + 1) for i, inner in enumerate(item))


def _text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(400, f"{path} holds a lone surrogate (\\u{ord(text[error.start]):04x} at character "
                            f"{error.start}), which is not text; send UTF-8 text", param=path,
                       code="invalid_text") from None


async def read_json(request: Request, limits: Limits) -> dict:
    """The request's JSON object: declared JSON, at most `max_body_bytes` (413), well-formed data (400)."""
    check_media_type(request)
    too_big = ApiError(413, f"the request body is larger than {limits.max_body_bytes} bytes",
                       code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_big
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise too_big
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or closed by the server for sending too slowly: nobody reads this
        raise ApiError(400, "the body did not arrive in time", code="incomplete_body") from None
    try:
        body = json.loads(b"".join(chunks), parse_constant=_no_constant, parse_float=_finite)
    except _NotData as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}", code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, "the request body nests too deeply", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON ({error})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    check_data(body)
    return body
