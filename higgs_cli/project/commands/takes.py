"""Takes: alternative renders of one line with other seeds, to audition and pick from.

`make_takes` renders N takes of a line in one batch (each hears the same context as a render
would give it) and caches each under its own key; `.higgs/takes.json` lists them per line. `pick`
records the chosen take's seed in the lock file (lockfile.py): the line's key is then the take's,
so the next render uses it without generating, and a fresh clone with the same model renders the
same audio. Take 0 is the line's own seed (picking it drops the pick).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.fsutil import atomic_write_text, read_json
from higgs_cli.project.building.guards import LineChecker
from higgs_cli.project.folder.cache import open_store
from higgs_cli.project.folder.lockfile import LockEntry, LockFile, text_digest
from higgs_cli.project.folder.store import codes_digest, line_key, line_keys
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.current import current_lines
from higgs_cli.project.planning.edits import apply_approvals, apply_picks
from higgs_cli.project.planning.plan import global_context, plan_project
from higgs_cli.project.planning.refs import LineRefs
from higgs_cli.sessions.identity import ModelIdentity
from higgs_cli.sessions.lazy import LazySession, as_session

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import Task

MAX_TAKES = 16  # per call: one batch
_SEED_STEP = 104_729  # takes' seeds: the line's own seed plus multiples of a prime, in the engine's range


def _takes_file(project: Project):
    return ProjectLayout(project.root).takes_file


def _read(project: Project) -> dict:
    data = read_json(_takes_file(project)) or {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("takes"), list)}


def _one(refs: LineRefs, ref: str) -> int:
    found = refs.resolve(ref)
    if len(found) != 1:
        chunks = ", ".join(refs.ref(i) for i in found)
        raise UsageError(f"'{ref}' names {len(found)} lines ({chunks}); takes are of one line",
                         hint=f"name one chunk, e.g. {ref}:1")
    return found[0]


def make_takes(project: Project, session: Any, ref: str, *, count: int, library: Any = None,
               tasks: Mapping[str, Task] | None = None, model_name: str | None = None) -> dict:
    """Render `count` new takes of the line `ref` in one batch; return them (see `list_takes`)."""
    if not 1 <= count <= MAX_TAKES:
        raise UsageError(f"--count must be from 1 to {MAX_TAKES}, not {count}")
    lock = LockFile.of(project)
    layout = ProjectLayout(project.root)
    session = as_session(session)
    with layout.writing(f"project {project.title}", layout.default_build):
        store = open_store(project)  # as a render: a shared cache (voice codes too) is read and written through
        planned = plan_project(project, session, library, tasks=tasks, store=store)
        refs = LineRefs(project, planned)
        i = _one(refs, ref)
        own_seed = planned[i].request.seed  # before a pick replaces it
        edits = apply_picks(project, planned, refs, lock)
        model = ModelIdentity.of(session, model_name)
        keys = apply_approvals(project, planned, line_keys(planned, model_id=model.model_id, codec_id=model.codec_id),
                               edits, lock, store)
        deps = global_context(planned)[i]
        heard = {j: store.get(keys[j]) for j in deps}
        if absent := [refs.ref(j) for j, entry in heard.items() if entry is None]:
            raise UsageError(f"{refs.ref(i)} hears {', '.join(absent)}, which are not rendered yet",
                             hint=f"render them first: higgs project render PATH --line {refs.ref(i)}")
        from higgs_cli.engine.request import Turn  # the request as a render builds it: with its context

        line = planned[i]
        history = line.request.history + tuple(Turn(text=planned[j].request.text, codes=heard[j].codes)
                                               for j in deps)
        data = _read(project)
        name = edits[i].name
        record = data.get(name)
        if record is None or record.get("text") != text_digest(line):
            record = {"text": text_digest(line), "own_seed": own_seed, "takes": []}
        start = len(record["takes"]) + 1
        seeds = [(own_seed + _SEED_STEP * k) % 2**32 for k in range(start, start + count)]
        requests = [replace(line.request, history=history, seed=s) for s in seeds]
        if isinstance(session, LazySession):
            session.load()
        results = session.generate(requests, batch_size=count)
        if len(results) != count:
            raise HiggsError(f"the model returned {len(results)} results for {count} requests")
        digests = [codes_digest(heard[j].codes) for j in deps]
        checker = LineChecker(project.guards, root=project.root)  # each take checked as a render checks a line
        for k, (seed, request, result) in enumerate(zip(seeds, requests, results, strict=True), start=start):
            key = line_key(replace(line.request, seed=seed), model_id=model.model_id, codec_id=model.codec_id)
            flags = checker.check(request, result, line)
            store.put(key, result, meta={"heard": digests, "seed": seed, "tries": 1, "flags": flags, "take": k})
            record["takes"].append({"take": k, "seed": seed, "key": key, "seconds": round(result.seconds, 3),
                                    "finished": bool(result.finished), "model_id": model.model_id,
                                    "flags": flags})
        data[name] = record
        atomic_write_text(_takes_file(project), json.dumps(data, indent=1, sort_keys=True) + "\n")
    return {**list_takes(project, ref, tasks=tasks, library=library), "made": list(range(start, start + count)),
            "is_random": model.is_random}


def list_takes(project: Project, ref: str, *, tasks: Mapping[str, Task] | None = None, library: Any = None) -> dict:
    """The takes of line `ref`: take, seed, seconds, whether cached here, which one is picked."""
    cur = current_lines(project, tasks=tasks, library=library)
    i = _one(cur.refs, ref)
    line, edit = cur.planned[i], cur.edits[i]
    record = _read(project).get(edit.name)
    takes = []
    if record is not None and record.get("text") == text_digest(line):
        for take in record["takes"]:
            if isinstance(take, dict) and isinstance(take.get("take"), int) and isinstance(take.get("seed"), int):
                takes.append({**take, "cached": isinstance(take.get("key"), str) and cur.store.has(take["key"]),
                              "picked": edit.take == take["take"]})
    return {"ref": edit.ref, "name": edit.name, "text": line.display_text, "picked": edit.take or 0,
            "own_seed": record.get("own_seed") if record else None, "takes": takes}


def pick(project: Project, ref: str, take: int, *, tasks: Mapping[str, Task] | None = None,
         library: Any = None) -> dict:
    """Make take `take` of line `ref` current (0: the line's own seed); recorded in the lock file.
    An approval of the line is dropped: the approved audio is no longer the line's."""
    listing = list_takes(project, ref, tasks=tasks, library=library)
    numbers = [t["take"] for t in listing["takes"]]
    if take != 0 and take not in numbers:
        have = f"takes {', '.join(map(str, numbers))}" if numbers else "no takes yet"
        raise UsageError(f"no take {take} of {listing['ref']}; it has {have} (0: its own seed)",
                         hint=f"make some with `higgs project takes PATH {ref} --count 3`")
    cur = current_lines(project, tasks=tasks, library=library)
    i = _one(cur.refs, ref)
    line = cur.planned[i]
    with ProjectLayout(project.root).lock(f"project {project.title}"):
        lock = LockFile.of(project)
        entry = lock.lines.get(listing["name"])
        if entry is None or entry.text != text_digest(line):
            entry = LockEntry(text=text_digest(line))
        unapproved = entry.approved is not None
        chosen = next((t for t in listing["takes"] if t["take"] == take), None)
        entry.seed, entry.take = (chosen["seed"], take) if chosen else (None, None)
        entry.approved = entry.voice = None
        lock.lines[listing["name"]] = entry
        lock.save()
    return {"ref": listing["ref"], "picked": take, "seed": chosen["seed"] if chosen else None,
            "unapproved": unapproved, "lock_file": str(lock.path)}
