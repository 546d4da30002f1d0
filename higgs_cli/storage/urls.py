"""What counts as a storage URL, and which schemes this installation reads and writes.

A value that looks like `scheme://...` is a URL, never a local path: `s3://b/p`
must not become a folder named `s3:`. A path-typed CLI argument arrives with its
double slash folded (`s3:/b/p`); that form is recognised too. One-letter
schemes are Windows drive letters, not URLs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from higgs_cli.errors import UsageError

SCHEMES = {"s3": ("s3fs", "s3")}  # scheme -> (module that implements it, the extra that installs it)
ALIASES = {"s3a": "s3"}  # Hadoop's spelling of the same store

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/(?P<slash>/?)(?P<rest>.*)$", re.S)


@dataclass(frozen=True)
class StorageUrl:
    """A parsed URL: `s3://bucket/some/prefix`."""

    scheme: str
    bucket: str
    key: str  # the path inside the bucket, without leading or trailing slashes

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}" + (f"/{self.key}" if self.key else "")

    @property
    def path(self) -> str:
        """bucket/key, as fsspec names it."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    def child(self, *parts: str) -> StorageUrl:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p and p.strip("/"))
        return StorageUrl(self.scheme, self.bucket, key)

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name if self.key else self.bucket


def looks_like_url(value: str | os.PathLike) -> bool:
    """True for `scheme://...` and for its folded form `scheme:/...` (what Path() makes of it)."""
    return _URL.match(os.fspath(value)) is not None


def unfolded(value: str | os.PathLike) -> str:
    """`value` as the user wrote it: a URL folded by Path() (`gs:/b/x`) gets its double slash back."""
    text = os.fspath(value)
    match = _URL.match(text)
    return f"{match['scheme']}://{match['rest']}" if match else text


def parse_url(value: str | os.PathLike, *, what: str = "URL") -> StorageUrl:
    """A supported storage URL, or a UsageError saying why not (scheme, extra, form)."""
    text = os.fspath(value)
    match = _URL.match(text)
    if not match:
        raise UsageError(f"{what} {text!r} is not a URL", hint="write it as s3://BUCKET/PREFIX")
    scheme = ALIASES.get(match["scheme"].lower(), match["scheme"].lower())
    rest = match["rest"]
    if scheme not in SCHEMES:
        raise UsageError(f"{what} {_shown(text)} uses the scheme {match['scheme']}://, which higgs does not support",
                         hint="use s3://BUCKET/PREFIX (S3 or an S3-compatible store via AWS_ENDPOINT_URL), "
                              "or a local path")
    bucket, _, key = rest.partition("/")
    if "@" in bucket:  # s3://KEY:SECRET@bucket: a credential in a file or a shell history
        raise UsageError(f"{what} {scheme}://...@{bucket.rpartition('@')[2]} carries credentials",
                         hint="credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                              "AWS_PROFILE) or ~/.aws files, never from a URL")
    if not bucket or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}", bucket):
        raise UsageError(f"{what} {_shown(text)} has no valid bucket name", hint="write it as s3://BUCKET/PREFIX")
    key = key.strip("/")
    if any(part in (".", "..") for part in key.split("/")):
        raise UsageError(f"{what} {_shown(text)} has a . or .. in its path")
    require_extra(scheme)
    return StorageUrl(scheme, bucket, key)


def require_extra(scheme: str) -> None:
    """Refuse a scheme whose implementation is not installed, naming the extra that installs it."""
    module, extra = SCHEMES[scheme]
    try:
        import s3fs  # noqa: F401  (the one scheme's module: named, not imported by a computed name)
    except ImportError:
        raise UsageError(f"{scheme}:// URLs need {module}, which is not installed",
                         hint=f"install the {extra} extra: pip install 'higgs-cli[{extra}]'") from None


def _shown(text: str) -> str:
    text = unfolded(text)
    return text if len(text) <= 200 else text[:197] + "..."
