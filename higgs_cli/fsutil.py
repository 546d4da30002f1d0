"""Atomic writes and inter-process locks: a failed or interrupted write never
leaves a half-written file, and two processes never write the same thing."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from higgs_cli.errors import LockedError, UsageError

TMP_MARK = ".higgs-tmp"  # in the name of every temporary file or folder made here (see sweep_temporaries)
OLD_MARK = ".higgs-old"  # a folder holding what atomic_dir is replacing, for the moment of the swap
MAX_JSON_FILE = 64 << 20  # read_json's files (a render's snapshot lists every output) are far smaller
ABANDONED_AFTER = 10.0  # seconds: a half-built folder younger than this is never taken for a leftover
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without leaving it changed for other threads.

    Linux reports it in /proc; elsewhere it can only be read by setting it, so
    it is set to 077 for that moment: anything another thread creates meanwhile
    comes out more private, never less.
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _public_mode(path: Path, *, folder: bool) -> None:
    """Give a temporary made by tempfile (always 0600/0700) the mode open()/mkdir() would give it."""
    with contextlib.suppress(OSError):  # a file system without modes (some network mounts) keeps its own
        os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, read in blocks (a recording may be large)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_dangling_link(path: str | os.PathLike) -> None:
    """Raise UsageError if `path` is a link that points nowhere (writing there would create its target)."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        try:
            points_to = f" to {os.readlink(path)}"
        except OSError:
            points_to = ""
        raise UsageError(f"cannot write {path}: it is a link{points_to} that points nowhere",
                         hint="remove the link or choose another path")


def check_writable(target: str | os.PathLike) -> Path:
    """Raise UsageError unless a file could be written at `target`; creates nothing."""
    from higgs_cli.storage.urls import looks_like_url, unfolded

    if looks_like_url(target):  # s3://b/x.wav is not a folder named s3: (and is shown as written)
        raise UsageError(f"cannot write {unfolded(target)}: this output is a local file, not a URL",
                         hint="write a local file (and copy it to the bucket), or render a project, whose "
                              "outputs may live on s3:// (docs/scale.md)")
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    refuse_dangling_link(target)
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder", hint="give a file name")
    if not target.is_symlink() and target.exists() and not target.is_file():  # a FIFO, a device, a socket
        raise UsageError(f"cannot write {target}: it is {_kind(target)}, not a regular file",
                         hint="give the name of a new or a regular file")
    if not parent.is_dir():
        raise UsageError(f"cannot write {target}: folder {parent} does not exist",
                         hint="create the folder first or choose another output path")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"cannot write {target}: permission denied")
    return target


def _kind(path: Path) -> str:
    mode = path.lstat().st_mode
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "a special file")


def resolve_inside(folder: str | os.PathLike, target: str | os.PathLike, *, what: str = "output") -> Path:
    """`target` (relative to `folder`, or absolute) as a path inside `folder`; UsageError when it is not.

    The one check of every write whose place comes from a file higgs did not
    write itself (a snapshot, a manifest, a sheet's ids): refused are absolute
    paths elsewhere, `..` that leaves `folder`, and any symbolic link between
    `folder` and the target, the target included, since a link could redirect
    the write. `folder` itself is the one the user named and may be a link.
    """
    folder = Path(os.path.abspath(folder))
    raw = Path(target)
    where = Path(os.path.normpath(folder / raw))  # lexical: `..` counts against folder, not a link's target
    if where == folder or not where.is_relative_to(folder):
        raise UsageError(f"{what} {str(raw)!r} is not inside {folder}",
                         hint=f"a {what} must be a path inside {folder.name}/ (no absolute path, no '..')")
    current = folder
    for part in where.relative_to(folder).parts:
        current = current / part
        if current.is_symlink():
            raise UsageError(f"{what} {str(raw)!r} goes through the symbolic link {current}, which could "
                             f"lead outside {folder}", hint=f"remove the link {current} (higgs never follows "
                             "links when it writes into a folder)")
    return where


def read_capped(path: str | os.PathLike, limit: int, *, what: str = "file") -> bytes:
    """The bytes of the regular file `path`, at most `limit`; UsageError for anything else.

    A FIFO, a device (/dev/zero) or a socket is refused at once without being
    read (opened non-blocking, then checked), and a file longer than `limit`
    is refused after reading `limit` + 1 bytes.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"cannot read {what} {path}: it does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {what} {path}: it is a folder, not a file") from None
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror or error}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else (
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
        raise UsageError(f"cannot read {what} {path}: it is {kind}, not a regular file",
                         hint="give a regular file (higgs reads no pipes or devices)")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"cannot read {what} {path}: it is larger than {_size(limit)}",
                         hint=f"a {what} is at most {_size(limit)}")
    return data


def read_capped_text(path: str | os.PathLike, limit: int, *, what: str = "file") -> str:
    """`read_capped` decoded as UTF-8; UsageError naming the first byte that is not."""
    data = read_capped(path, limit, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"cannot read {what} {path}: it is not UTF-8 text (byte {error.start} cannot be read)",
                         hint="convert it first, e.g. with `iconv -t UTF-8`") from None


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and not limit % (1 << 20) else f"{limit} bytes"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.

    On any exception the temporary file is removed and `target` is untouched.
    The file gets the mode the umask gives a new file (0644 under umask 022).
    """
    target = check_writable(target)
    parent = target.parent if str(target.parent) else Path(".")
    prefix, suffix = f".{target.name}{TMP_MARK}.", suffix or (target.suffix or ".tmp")
    tmp_path = _temporary_name(parent, prefix, suffix)  # named before it exists: see _create_new
    try:
        while not _create_new(tmp_path):
            tmp_path = _temporary_name(parent, prefix, suffix)
        _public_mode(tmp_path, folder=False)
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _temporary_name(parent: Path, prefix: str, suffix: str) -> Path:
    import secrets

    return parent / f"{prefix}{secrets.token_hex(6)}{suffix}"


def _create_new(path: Path) -> bool:
    """Create `path` as an empty private file; False if the name is taken.

    Unlike tempfile.mkstemp, the caller knows the name before the file exists,
    so a Ctrl-C landing in the middle never leaves a file its cleanup misses.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
    except FileExistsError:
        return False
    return True


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it becomes `target`.

    If `target` exists it is replaced only after the new folder is complete. A
    process killed between the two renames of the swap leaves the old folder in
    `.<name>.higgs-old.*/<name>`, which `sweep_temporaries` puts back. The
    folder gets the mode the umask gives a new folder (0755 under umask 022).
    """
    target = Path(target)
    refuse_dangling_link(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_abandoned(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_MARK}.", dir=target.parent))
    held = _hold(tmp)  # while this process lives, no sweep_abandoned takes the folder for a leftover
    try:
        _public_mode(tmp, folder=True)
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}{OLD_MARK}.", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(held)


def _hold(folder: Path) -> int:
    """An open descriptor of `folder` holding an exclusive flock on it, released when closed or at death."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sweep_abandoned(target: str | os.PathLike) -> list[Path]:
    """Remove the folders `atomic_dir(target)` left half-built when its process was killed (kill -9).

    Safe without a lock on the parent folder (the user's, e.g. where `project
    import` writes): a folder still being built is flock-ed by its builder, and
    only folders whose flock can be taken, so whose builder is gone, are removed
    (and none younger than ABANDONED_AFTER, which its builder may not hold yet).
    """
    import fcntl

    target = Path(target)
    removed = []
    for entry in target.parent.glob(f".{glob.escape(target.name)}{TMP_MARK}.*"):
        try:
            if entry.is_symlink() or not entry.is_dir() or time.time() - entry.stat().st_mtime < ABANDONED_AFTER:
                continue  # a folder made this instant may not be flock-ed yet by its builder
        except OSError:
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its builder is alive
            continue
        else:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


def sweep_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Clean up after a process that was killed while writing in `folder`; return what was removed.

    Removes the temporary files and folders that `atomic_path` and `atomic_dir`
    leave behind when a process dies without running its cleanup (SIGKILL, a
    power cut), and puts back a folder that `atomic_dir` had moved aside but not
    yet replaced. Only names carrying this module's marks are touched. Call it
    only while holding the lock that every writer of `folder` holds.
    """
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if not entry.name.startswith("."):
            continue
        if OLD_MARK in entry.name and entry.is_dir() and not entry.is_symlink():
            for kept in entry.iterdir():
                if not (folder / kept.name).exists():
                    os.replace(kept, folder / kept.name)
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif TMP_MARK in entry.name:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


HOLDER_SUFFIX = ".holder"  # beside a lock file while it is held: what holds it, for the one refused


def _holder_note() -> str:
    """This process, as a refused command names it: its command line (shortened), pid and start."""
    import sys

    words = [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:4]
    command = " ".join(words)
    command = "higgs" + command[len("__main__.py"):] if command.startswith("__main__.py") else command
    return f"`{command[:80]}` (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})"


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, *, what: str, timeout: float = 0.0, note: bool = False
                   ) -> Iterator[None]:
    """Hold an inter-process lock; raise LockedError naming `what` if another process has it, and, for a
    lock taken with `note`, what that process is (a note it leaves beside the lock file while it holds it)."""
    from filelock import FileLock, Timeout

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    holder_file = lock_file.with_name(lock_file.name + HOLDER_SUFFIX)
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        try:
            holder = read_capped_text(holder_file, 512, what="lock note").strip() if note else ""
        except (OSError, UsageError):
            holder = ""
        held = f" ({holder})" if holder and "\n" not in holder else ""
        raise LockedError(f"{what} is in use by another higgs process{held} (lock {lock_file})",
                          hint="wait for the other command to finish, then try again") from None
    try:
        if note:
            with contextlib.suppress(OSError):  # a courtesy: a read-only folder still locks; never through a link
                fd = os.open(holder_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                             0o644)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(_holder_note())
        yield
    finally:
        if note:
            with contextlib.suppress(OSError):
                holder_file.unlink(missing_ok=True)
        lock.release()


def read_json(path: str | os.PathLike) -> dict | None:
    """A JSON object from `path`, or None when it is missing, unreadable, not plain JSON (see
    higgs_cli.untrusted: no NaN, number or nesting bombs, lone surrogates) or not an object.

    A regular file of at most MAX_JSON_FILE only: the folder may be someone else's (a project's .higgs/).
    """
    from higgs_cli import untrusted

    try:
        data = untrusted.loads(read_capped(path, MAX_JSON_FILE, what="state file"))
    except (OSError, ValueError, UsageError):
        return None
    return data if isinstance(data, dict) else None
