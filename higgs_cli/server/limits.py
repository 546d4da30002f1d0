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
    max_prompt_frames: int = 6_000  # audio frames in one request's prompt (references, history): 4 minutes
    max_prompt_chars: int = 4 * MAX_TEXT_CHARS  # characters of one request's text, history and scene together
    max_reference_decoded_bytes: int = 64 * 1024 * 1024  # one clip as float32 samples, all channels, before decoding
    retry_after: int = 2  # seconds a 429 or a draining 503 tells the client to wait
    header_timeout: float = 10.0  # seconds a connection may take to send a request's headers
    body_timeout: float = 60.0  # seconds a request may take to send its body after its headers
    max_idle_per_client: int = 128  # connections one IP address may hold open without a request
