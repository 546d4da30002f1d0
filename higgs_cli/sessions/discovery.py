"""Local servers advertise themselves under $HIGGS_HOME/servers/<pid>.json (URL, pid, model).

`higgs serve` writes its entry once it listens and removes it on exit; an
entry whose process is gone (a crash, `kill -9`) is ignored and swept. The API
key is never written here: a client takes it from $HIGGS_API_KEY (env.py).
The server writes its entry (`advertise`, `withdraw`); commands read them
(`live_servers`, through connect.py).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from higgs_cli.home import cache_dir


def servers_dir() -> Path:
    return cache_dir() / "servers"


@dataclass(frozen=True)
class Advert:
    url: str
    pid: int
    model: str
    model_id: str
    codec_id: str
    needs_key: bool = False
    started: float = 0.0


def advertise(advert: Advert) -> Path:
    """Write this server's entry (atomically, so a reader never sees half of it)."""
    from higgs_cli.fsutil import atomic_write_text

    folder = servers_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{advert.pid}.json"
    atomic_write_text(path, json.dumps(asdict(advert), indent=2) + "\n")
    return path


def withdraw(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def live_servers() -> list[Advert]:
    """Every advertised server whose process is alive, newest first; dead entries are swept."""
    folder = servers_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            advert = Advert(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # half-written by hand, or another version's: not ours to judge
        if not _alive(advert.pid):
            withdraw(path)
            continue
        found.append(advert)
    return sorted(found, key=lambda a: -a.started)


def advert_now(url: str, model: str, model_id: str, codec_id: str, needs_key: bool) -> Advert:
    return Advert(url=url, pid=os.getpid(), model=model, model_id=model_id, codec_id=codec_id, needs_key=needs_key,
                  started=time.time())
