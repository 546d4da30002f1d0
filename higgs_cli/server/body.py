"""The one door every JSON body comes through: its media type, its size, and JSON that is really
data (finite numbers, text that is UTF-8, a bounded depth) before any endpoint reads a field.

A browser page may send `text/plain` or form bodies to any address without
asking first (no CORS preflight), so a JSON route that parsed those would be
drivable from any web page: only `application/json` is read (415 otherwise).
`NaN`, `Infinity` and numbers past a float's range (`1e400`) are not JSON
numbers a field can hold; a lone surrogate (`"\\ud800"`) is not text that can
be written or spoken; both, and nesting past 32 levels, are refused here by
`higgs_cli.untrusted.loads`, the rule every door that reads JSON shares.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

from higgs_cli import untrusted
from higgs_cli.server.errors import ApiError
from higgs_cli.server.limits import Limits

JSON_MEDIA_TYPE = "application/json"
INLINE_PARSE_BYTES = 256 * 1024  # bodies up to this are parsed on the event loop (a millisecond or so)


def check_media_type(request: Request) -> None:
    """415 unless the body is declared `application/json` (parameters such as charset allowed)."""
    declared = request.headers.get("content-type", "")
    media = declared.split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE:
        shown = f"'{declared[:80]}'" if declared else "no Content-Type"
        raise ApiError(415, f"this endpoint reads JSON: send the body with 'Content-Type: application/json' "
                            f"(got {shown})", code="unsupported_media_type")


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
    raw = b"".join(chunks)
    try:  # the rules for data from outside are untrusted.py's, for every door alike
        # a large body (uploaded audio) is parsed in a worker thread: other clients are not kept waiting
        body = await asyncio.to_thread(untrusted.loads, raw) if size > INLINE_PARSE_BYTES else untrusted.loads(raw)
    except untrusted.BadJSON as error:
        raise ApiError(400, f"the request body is not plain JSON data: {error}", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON ({error})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return body
