"""Objects under one URL prefix: read, write whole, list, delete. Every failure is a clear error.

S3 has no rename: an object is written in one PUT (or a multipart upload that
S3 makes visible only when complete), so a reader sees the whole object or the
old one, never a part. Callers that write several objects order them (publish.py
writes the manifest last).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from higgs_cli.storage.remote import filesystem, storage_errors
from higgs_cli.storage.urls import StorageUrl, parse_url

MAX_OBJECT = 4 << 30  # an object this large is not something higgs wrote or reads whole


class Prefix:
    """The objects under `url` (a bucket and a key prefix)."""

    def __init__(self, url: StorageUrl | str, *, fs: Any = None, what: str = "URL") -> None:
        self.url = url if isinstance(url, StorageUrl) else parse_url(url, what=what)
        self.fs = fs if fs is not None else filesystem(self.url)

    def _path(self, key: str = "") -> str:
        return self.url.child(key).path

    def check(self, action: str) -> None:
        """Fail now, with a clear error, if the bucket is missing or these credentials cannot list it.

        One request for at most one key: a prefix with a million objects is checked as fast."""
        with storage_errors(self.url, action):
            self.fs.call_s3("list_objects_v2", Bucket=self.url.bucket, Prefix=self.url.key, MaxKeys=1)

    def read(self, key: str, *, action: str = "reading") -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        with storage_errors(self.url.child(key), action):
            try:
                return self.fs.cat_file(self._path(key))
            except FileNotFoundError as error:
                if "bucket" in str(error).lower():
                    raise
                return None

    def write(self, key: str, data: bytes, *, action: str = "writing") -> None:
        """One whole object (its old content stays visible until this one is complete)."""
        with storage_errors(self.url.child(key), action):
            self.fs.pipe_file(self._path(key), data)

    def upload(self, key: str, source: str | os.PathLike, *, action: str = "uploading") -> None:
        with storage_errors(self.url.child(key), action):
            self.fs.put_file(os.fspath(source), self._path(key))

    def download(self, key: str, target: Path, *, action: str = "downloading") -> None:
        """Into `target` through a temporary file in its folder, renamed when complete."""
        from higgs_cli.fsutil import atomic_path

        target.parent.mkdir(parents=True, exist_ok=True)
        with storage_errors(self.url.child(key), action), atomic_path(target) as tmp:
            self.fs.get_file(self._path(key), os.fspath(tmp))

    def exists(self, key: str) -> bool:
        with storage_errors(self.url.child(key), "checking"):
            return bool(self.fs.exists(self._path(key)))

    def info(self, key: str) -> dict | None:
        with storage_errors(self.url.child(key), "checking"):
            try:
                return self.fs.info(self._path(key))
            except FileNotFoundError:
                return None

    def delete(self, key: str, *, action: str = "deleting") -> None:
        with storage_errors(self.url.child(key), action):
            try:
                self.fs.rm_file(self._path(key))
            except FileNotFoundError:
                pass

    def listing(self, *, max_pages: int, page_size: int = 1000,
                action: str = "listing") -> tuple[dict[str, float | None], bool]:
        """At most `max_pages` pages of the keys under the prefix (relative key -> modified timestamp),
        and whether that was every key: one request a page, so a caller bounds what it costs."""
        base = f"{self.url.key}/" if self.url.key else ""
        found: dict[str, float | None] = {}
        request: dict[str, Any] = {"Bucket": self.url.bucket, "Prefix": base, "MaxKeys": page_size}
        with storage_errors(self.url, action):
            for _ in range(max_pages):
                page = self.fs.call_s3("list_objects_v2", **request)
                for item in page.get("Contents", []):
                    stamp = item.get("LastModified")
                    found[item["Key"][len(base):]] = stamp.timestamp() if stamp is not None else None
                if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                    return found, True
                request["ContinuationToken"] = page["NextContinuationToken"]
        return found, False

    def keys(self, *, action: str = "listing") -> dict[str, tuple[int, float | None]]:
        """Every object under the prefix: its key relative to the prefix -> (size, modified as a timestamp)."""
        base = self._path().rstrip("/") + "/"
        with storage_errors(self.url, action):
            try:
                found = self.fs.find(self._path(), detail=True)
            except FileNotFoundError as error:
                if "bucket" in str(error).lower():
                    raise
                return {}
        listed = {}
        for path, meta in found.items():
            if path.startswith(base) and meta.get("type") != "directory":
                stamp = meta.get("LastModified")
                listed[path[len(base):]] = (int(meta.get("size") or 0), stamp.timestamp() if stamp else None)
        return listed
