"""The server's limits: what one request may ask for and how much may wait. One place, one default each."""

from __future__ import annotations

from dataclasses import dataclass

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.text import MAX_TEXT_CHARS

# Where `higgs serve` listens and how many requests it generates together, unless told otherwise
# (ServeOptions' defaults and `higgs serve`'s; this module is cheap to import, run.py is not).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SLOTS = DEFAULT_BATCH_SIZE


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024  # a request body (uploaded references are base64 inside it)
    max_input_chars: int = MAX_TEXT_CHARS  # the text of one request (or one native job)
    max_queue: int = 256  # requests waiting for a slot; more answer 429 with Retry-After
    request_timeout: float = 600.0  # seconds a request may take; then it is cancelled (504)
    max_seconds: float = 120.0  # the longest audio one request may generate
    max_references: int = 4  # uploaded reference clips in one speech request
    max_reference_bytes: int = 10 * 1024 * 1024  # one uploaded clip, decoded from base64
    max_reference_seconds: float = 60.0  # one uploaded clip's duration, read from its header first
    max_jobs: int = 256  # jobs in one native request
    max_history: int = 64  # history turns of one job
    retry_after: int = 2  # seconds a 429 tells the client to wait
