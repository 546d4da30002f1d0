"""Opening a bucket through fsspec, and turning its failures into clear errors without secrets.

The endpoint follows AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, as boto3 does,
so MinIO, R2 or Ceph work. Credentials are botocore's own chain (environment
variables, AWS_PROFILE and the ~/.aws files, and what those name): higgs never
reads them from a project and never passes them itself. Every error message
that leaves this module has access keys, secrets, tokens and signatures
replaced by `***`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.storage.urls import StorageUrl

SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY_ID")
_PATTERNS = [  # (what, what it becomes)
    (re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b"), "***"),  # access key ids
    (re.compile(r"(?i)\b(Signature|Credential|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=[^&\s,'\"]+"),
     r"\1=***"),
    (re.compile(r"(?i)\b(aws_secret_access_key|aws_session_token|secret_key|session_token|secret|token)"
                r"(['\"]?\s*[:=]\s*['\"]?)[^\s,'\"}]+"), r"\1\2***"),
    (re.compile(r"(?i)\b(Authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+"), r"\1***"),
]
CREDENTIALS_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with ~/.aws/credentials) "
                    "for an identity that may use this bucket")


def scrub(text: str) -> str:
    """`text` with credentials removed: the environment's secret values, key ids, signatures, tokens."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def endpoint_url() -> str | None:
    """The S3 endpoint boto3 would use from the environment, or None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def filesystem(url: StorageUrl) -> Any:
    """A fresh fsspec filesystem for `url`'s scheme: no listing cache (another machine may have
    written since), bounded retries, the environment's endpoint."""
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint_url(), skip_instance_cache=True, use_listings_cache=False,
        config_kwargs={"connect_timeout": 10, "read_timeout": 120, "retries": {"max_attempts": 3, "mode": "standard"}})


def _message(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return scrub(text.splitlines()[0])


@contextmanager
def storage_errors(url: StorageUrl | str, action: str) -> Iterator[None]:
    """Re-raise what a storage call raises as a HiggsError naming `url` and what was being done."""
    try:
        yield
    except HiggsError:
        raise
    except FileNotFoundError as error:
        text = _message(error)
        bucket = url.bucket if isinstance(url, StorageUrl) else str(url)
        if "bucket" in text.lower():
            raise UsageError(f"{action} {url}: the bucket {bucket} does not exist",
                             hint="create it, or check the name and AWS_ENDPOINT_URL") from None
        raise UsageError(f"{action} {url}: not found ({text})") from None
    except PermissionError as error:
        raise HiggsError(f"{action} {url}: access denied ({_message(error)})", hint=CREDENTIALS_HINT) from None
    except Exception as error:  # botocore's and aiohttp's own types: credentials, endpoint, network
        name = type(error).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            raise HiggsError(f"{action} {url}: no usable AWS credentials ({_message(error)})",
                             hint=CREDENTIALS_HINT) from None
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError"):
            raise HiggsError(f"{action} {url}: cannot reach the storage endpoint ({_message(error)})",
                             hint="check AWS_ENDPOINT_URL and the network") from None
        if not isinstance(error, (OSError, ValueError)) and not name.endswith("Error"):
            raise
        raise HiggsError(f"{action} {url}: {_message(error)}") from None
