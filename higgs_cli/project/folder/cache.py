"""A render cache shared through a bucket: `cache: s3://...` in project.yaml, or $HIGGS_CACHE.

`RemoteStore` has the interface of `folder.store.Store` because it is one: it
wraps the project's local Store and delegates everything to it (new methods
and parameters pass through), reading through to the bucket on a local miss
and writing each new entry through to it. Keys are content addresses (a hash
of everything that shapes a line's audio), so two machines writing one key
write equivalent entries, each object whole: nothing is corrupted, the last
write stays. A fetched object is checked by the local Store's own reader
before it is used: a damaged object is a miss (and the next render replaces it).
The local cache is never cleared or changed by a failure of the bucket.

Voice codes travel with the lines: the codes of a speaker's reference audio
are part of every line key, so a machine that has the lines but not the codes
would load the model just to encode the voices. `encoder(encode, codec_id)`
wraps the session's encoder so that it reads `codes/<key>.npy` from the bucket
first (key: a hash of the codec id and the prepared audio, so a changed
recording or codec is a miss) and shares what it encodes. Checked like any
cached codes; a damaged object is encoded again.

`prefetch(keys)` (what `project status` calls) lists the bucket's prefix once
instead of asking about each line the local cache lacks; the listing is capped
at one page per such line, so it never costs more requests than asking would.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from higgs_cli.errors import UsageError
from higgs_cli.project.folder.store import SUFFIX, Store
from higgs_cli.storage.objects import Prefix
from higgs_cli.storage.urls import looks_like_url, parse_url
from higgs_cli.voices.codes import valid_codes

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project

CACHE_ENV = "HIGGS_CACHE"
CODES_PREFIX = "codes"  # voice codes under the cache's prefix; line entries sit at its top level

Encoder = Callable[[np.ndarray], np.ndarray]


def codes_key(audio: np.ndarray, codec_id: str) -> str:
    """A content address for the codes of `audio` (prepared, 24 kHz mono) encoded by `codec_id`."""
    audio = np.ascontiguousarray(audio)
    digest = hashlib.sha256(f"{codec_id}\0{audio.dtype.str}\0{audio.shape}\0".encode())
    digest.update(audio.tobytes())
    return digest.hexdigest()[:40]


class RemoteStore:
    """A local `Store`, read and written through to a bucket prefix."""

    def __init__(self, local: Store, url: str, *, remote: Prefix | None = None) -> None:
        self.local = local
        self.remote = remote or Prefix(url, what="cache")
        self.remote.check("opening the shared render cache at")  # bad credentials fail here, before a line
        self.fetched = 0  # entries read from the bucket (for a summary or a test)
        self.uploaded = 0
        self.codes_fetched = 0  # voice codes read from the bucket instead of encoded
        self._listed: dict[str, float | None] | None = None  # key -> modified, from prefetch()
        self._complete = False  # whether the listing held every object of the prefix

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.local, name)  # path, dir, mtime, clear, and whatever Store grows

    @property
    def url(self) -> str:
        return str(self.remote.url)

    def _object(self, key: str) -> str:
        return f"{key}{SUFFIX}"

    def prefetch(self, keys: Iterable[str | None], *, page_size: int = 1000) -> None:
        """List the prefix once for the `keys` the local cache lacks; later lookups of them ask no more.

        At most one page per such key: in a cache far larger than the project, the keys the
        partial listing did not reach are asked about one by one, as without it."""
        missing = {key for key in keys if key and not self.local.has(key)}
        if not missing:
            return
        listed, self._complete = self.remote.listing(max_pages=len(missing), page_size=page_size,
                                                     action="listing the shared render cache at")
        self._listed = {name[:-len(SUFFIX)]: stamp for name, stamp in listed.items()
                        if name.endswith(SUFFIX) and "/" not in name}

    def _known(self, key: str) -> bool | None:
        """Whether the bucket holds `key` by the prefetched listing; None when it cannot tell."""
        if self._listed is None:
            return None
        if key in self._listed:
            return True
        return False if self._complete else None

    def has(self, key: str, *args: Any, **kwargs: Any) -> bool:
        if self.local.has(key, *args, **kwargs):
            return True
        known = self._known(key)
        return known if known is not None else self.remote.exists(self._object(key))

    def get(self, key: str, *args: Any, **kwargs: Any) -> Any:
        entry = self.local.get(key, *args, **kwargs)
        if entry is None and self._fetch(key):
            entry = self.local.get(key, *args, **kwargs)  # None again if the object was damaged (then removed)
            self.fetched += entry is not None
        return entry

    def meta(self, key: str, *args: Any, **kwargs: Any) -> Any:
        """The entry's meta; a line only in the bucket is fetched first (its meta is inside the entry)."""
        found = self.local.meta(key, *args, **kwargs)
        if found is None and self._fetch(key):
            found = self.local.meta(key, *args, **kwargs)
        return found

    def put(self, key: str, result: Any, *args: Any, **kwargs: Any) -> Any:
        written = self.local.put(key, result, *args, **kwargs)
        self.remote.upload(self._object(key), self.local.path(key), action="sharing a line through the cache at")
        self.uploaded += 1
        if self._listed is not None:
            self._listed[key] = time.time()
        return written

    def mtime(self, key: str, *args: Any, **kwargs: Any) -> float | None:
        stamp = self.local.mtime(key, *args, **kwargs)
        if stamp is not None or self._known(key) is False:
            return stamp
        if self._listed is not None and self._listed.get(key) is not None:
            return self._listed[key]
        if (info := self.remote.info(self._object(key))) is not None:
            modified = info.get("LastModified")
            stamp = modified.timestamp() if modified is not None else None
        return stamp

    def encoder(self, encode: Encoder, codec_id: str) -> Encoder:
        """`encode` through the bucket: shared codes of the same audio and codec are used, new ones shared."""

        def shared(audio: np.ndarray) -> np.ndarray:
            name = f"{CODES_PREFIX}/{codes_key(audio, codec_id)}.npy"
            data = self.remote.read(name, action="reading voice codes from the shared render cache at")
            if data is not None:
                try:
                    codes = np.load(io.BytesIO(data), allow_pickle=False)
                except Exception:  # a damaged object is encoded again (and replaced below)
                    codes = None
                if valid_codes(codes):
                    self.codes_fetched += 1
                    return codes
            codes = np.asarray(encode(audio))
            if valid_codes(codes):  # the caller checks and refuses anything else
                buffer = io.BytesIO()
                np.save(buffer, codes, allow_pickle=False)
                self.remote.write(name, buffer.getvalue(), action="sharing voice codes through the cache at")
            return codes

        return shared

    def clear(self, *args: Any, **kwargs: Any) -> Any:
        """The local cache only: a shared one belongs to every project that uses it."""
        return self.local.clear(*args, **kwargs)

    def _fetch(self, key: str) -> bool:
        """Copy the bucket's entry into the local cache (whole, through a rename); False if it has none."""
        from higgs_cli.fsutil import atomic_path

        if self._known(key) is False:
            return False  # the listing says the bucket has none: no request
        data = self.remote.read(self._object(key), action="reading the shared render cache at")
        if data is None:
            return False
        target = self.local.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=SUFFIX) as tmp:
            tmp.write_bytes(data)
        return True


def cache_url(project: Project) -> str | None:
    """The shared cache a project renders with: its `cache:` key, else $HIGGS_CACHE, else None."""
    return getattr(project, "cache", None) or os.environ.get(CACHE_ENV) or None


def open_store(project: Project) -> Store | RemoteStore:
    """The render cache of `project`: its own Store, read and written through to a shared one if set."""
    local = Store(project.root)
    url = cache_url(project)
    if url is None:
        return local
    source = "cache" if getattr(project, "cache", None) else f"${CACHE_ENV}"
    if not looks_like_url(url):
        raise UsageError(f"{project.file}: {source} {url!r} is not a storage URL",
                         hint="a shared render cache is an s3://BUCKET/PREFIX URL; without one a project "
                              "caches in its own .higgs/cache")
    return RemoteStore(local, str(parse_url(url, what=source)))
