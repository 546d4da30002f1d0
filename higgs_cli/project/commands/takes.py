"""Takes: alternative renders of one line with other seeds, to listen to, compare and pick from.

`make_takes` renders N takes of a line in one batch (each hears the same context as a render
would give it), caches each under its own key and writes it as a file to listen to,
`build/takes/<line>/take-<k>.wav` (folder/takes.py keeps the record, `.higgs/takes.json`).
`pick` records the chosen take in the lock file (lockfile.py): its seed and its cache key. While
that entry is cached it stays the line's audio through project-wide changes (scene, sampling,
lexicon, model), as an approval does, until the line's text changes or `unpick`; where it is gone
(a fresh clone) the line is generated with the take's seed and the current settings (edits.py).
Take 0 is the line's own seed (picking it is `unpick`).

These functions are what the CLI and the studio call; each returns plain data (see `list_takes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.project.building.guards import LineChecker
from higgs_cli.project.folder.cache import open_store
from higgs_cli.project.folder.lockfile import LockEntry, LockFile, text_digest
from higgs_cli.project.folder.manifest import is_build
from higgs_cli.project.folder.store import codes_digest, described_voices, line_key, line_keys, recipe_parts
from higgs_cli.project.folder.takes import (
    line_record,
    prune_takes,
    read_takes,
    take_file,
    valid_takes,
    write_take_audio,
    write_takes,
)
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.current import Current, current_lines, needs_model
from higgs_cli.project.planning.edits import apply_approvals, apply_picks
from higgs_cli.project.planning.plan import global_context, plan_project
from higgs_cli.project.planning.reasons import take_changes
from higgs_cli.project.planning.refs import LineRefs
from higgs_cli.sessions.identity import ModelIdentity
from higgs_cli.sessions.lazy import LazySession, as_session

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import PlannedLine, Task

MAX_TAKES = 16  # per call: one batch
_SEED_STEP = 104_729  # takes' seeds: the line's own seed plus multiples of a prime, in the engine's range


def _one(refs: LineRefs, ref: str) -> int:
    found = refs.resolve(ref)
    if len(found) != 1:
        chunks = ", ".join(refs.ref(i) for i in found)
        raise UsageError(f"'{ref}' names {len(found)} lines ({chunks}); takes are of one line",
                         hint=f"name one chunk, e.g. {ref}:1")
    return found[0]


def _texts(planned: list[PlannedLine], refs: LineRefs) -> dict[str, str]:
    """Each line's name -> the digest of its text now: what prune_takes keeps takes for."""
    return {refs.name(j): text_digest(line) for j, line in enumerate(planned)}


def make_takes(project: Project, session: Any, ref: str, *, count: int, library: Any = None,
               tasks: Mapping[str, Task] | None = None, model_name: str | None = None) -> dict:
    """Render `count` new takes of the line `ref` in one batch, each cached and written as a WAV file;
    return the line's takes as `list_takes` does, with `made` (the new take numbers) and `is_random`."""
    if not 1 <= count <= MAX_TAKES:
        raise UsageError(f"--count must be from 1 to {MAX_TAKES}, not {count}")
    lock = LockFile.of(project)
    layout = ProjectLayout(project.root)
    layout.check_folders(layout.default_build, custom=False, is_render=is_build)  # no link planted in build/
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
        prune_takes(layout, _texts(planned, refs))
        deps = global_context(planned)[i]
        heard = {j: store.get(keys[j]) for j in deps}
        if absent := [refs.ref(j) for j, entry in heard.items() if entry is None]:
            raise UsageError(f"{refs.ref(i)} hears {', '.join(absent)}, which are not rendered yet",
                             hint=f"render them first: higgs project render PATH --line {refs.ref(i)}")
        from higgs_cli.engine.request import Turn  # the request as a render builds it: with its context

        line = planned[i]
        history = line.request.history + tuple(Turn(text=planned[j].request.text, codes=heard[j].codes)
                                               for j in deps)
        data = read_takes(layout)
        name = edits[i].name
        record = line_record(layout, name, text_digest(line)) or {"text": text_digest(line), "own_seed": own_seed,
                                                                 "takes": []}
        record["takes"] = valid_takes(record)
        start = max((t["take"] for t in record["takes"]), default=0) + 1
        take_file(layout, name, start)  # a link planted on the way is refused before the model loads
        seeds = [(own_seed + _SEED_STEP * k) % 2**32 for k in range(start, start + count)]
        requests = [replace(line.request, history=history, seed=s) for s in seeds]
        if isinstance(session, LazySession):
            session.load()
        results = session.generate(requests, batch_size=count)
        if len(results) != count:
            raise HiggsError(f"the model returned {len(results)} results for {count} requests")
        digests = [codes_digest(heard[j].codes) for j in deps]
        checker = LineChecker(project.guards, root=project.root)  # each take checked as a render checks a line
        voices = described_voices(project)
        for k, (seed, request, result) in enumerate(zip(seeds, requests, results, strict=True), start=start):
            own = replace(line.request, seed=seed)  # its key and recipe: the line's request without its context
            key = line_key(own, model_id=model.model_id, codec_id=model.codec_id)
            flags = checker.check(request, result, line)
            store.put(key, result, meta={"heard": digests, "seed": seed, "tries": 1, "flags": flags, "take": k,
                                         "recipe": recipe_parts(line, own, model_id=model.model_id,
                                                                codec_id=model.codec_id, voices=voices)})
            write_take_audio(layout, name, k, result.audio, trim=project.output.trim_silence)
            record["takes"].append({"take": k, "seed": seed, "key": key, "seconds": round(result.seconds, 3),
                                    "finished": bool(result.finished), "model_id": model.model_id,
                                    "flags": flags})
        data[name] = record
        write_takes(layout, data)
    return {**list_takes(project, ref, tasks=tasks, library=library), "made": list(range(start, start + count)),
            "is_random": model.is_random}


def list_takes(project: Project, ref: str, *, tasks: Mapping[str, Task] | None = None, library: Any = None) -> dict:
    """The takes of line `ref`, and what the next render uses for it. Loads no model.

    Returns {ref, name, text, picked (0: none), own_seed, takes, uses}. Each take: take, seed, seconds,
    finished, flags, key, model_id, `file` (its WAV, None when gone), `cached` (its audio is in the cache:
    picking it keeps that audio), `picked`, `changes` (what differs from the line's settings now: text,
    lexicon, voice, scene, sampling, model; None when unknown), `current` (no changes). `uses` is what the
    next render uses: {audio: "approved" | "take" | "seed" | "own", take, generate (bool), changes, says}."""
    cur = current_lines(project, tasks=tasks, library=library)
    return _listing(cur, _one(cur.refs, ref))


def _listing(cur: Current, i: int) -> dict:
    layout = ProjectLayout(cur.project.root)
    line, edit = cur.planned[i], cur.edits[i]
    record = line_record(layout, edit.name, text_digest(line))
    takes = []
    for take in valid_takes(record):
        key = take.get("key") if isinstance(take.get("key"), str) else None
        changes = _changes(cur, i, take["seed"], key)
        file = layout.take_audio(edit.name, take["take"])
        takes.append({**take, "cached": key is not None and cur.store.has(key), "picked": edit.take == take["take"],
                      "changes": changes, "current": changes == [],
                      "file": str(file) if file.is_file() and not file.is_symlink() else None})
    return {"ref": edit.ref, "name": edit.name, "text": line.display_text, "picked": edit.take or 0,
            "own_seed": record.get("own_seed") if record else None, "takes": takes, "uses": _uses(cur, i, takes)}


def _changes(cur: Current, i: int, seed: int, key: str | None) -> list[str] | None:
    """What differs between the take (`seed`, cached under `key`) and line i's settings now; None: unknown."""
    if needs_model(cur.planned[i]):  # its voice codes are not encoded for these settings: only a render can tell
        return None
    return take_changes(cur.planned[i], seed, key, cur.store, cur.ids, described_voices(cur.project))


def _uses(cur: Current, i: int, takes: list[dict]) -> dict:
    """What the next render uses for line i, in words (`says`) and as data."""
    edit, key = cur.edits[i], cur.keys[i]
    entry = cur.lock.lines.get(edit.name)
    cached = key is not None and cur.store.has(key)
    if edit.approved and edit.kept and entry is not None and key == entry.approved:
        return {"audio": "approved", "take": edit.take, "generate": False, "changes": None,
                "says": "the approved audio" + (f" (take {edit.take})" if edit.take else "")}
    if edit.take and edit.take_kept:
        changes = next((t["changes"] for t in takes if t["take"] == edit.take), None)
        other = f" (made under other settings: {', '.join(changes)})" if changes else ""
        return {"audio": "take", "take": edit.take, "generate": False, "changes": changes,
                "says": f"take {edit.take}'s audio, kept{other}"}
    if edit.take:
        return {"audio": "seed", "take": edit.take, "generate": not cached, "changes": None,
                "says": f"take {edit.take}'s seed with the current settings"
                        + (", cached" if cached else f": generated (take {edit.take}'s audio is no longer cached)")}
    state = "cached" if cached else "not rendered yet" if key is None else "generated"
    return {"audio": "own", "take": None, "generate": not cached, "changes": None,
            "says": f"the line's own seed ({state})"}


def pick(project: Project, ref: str, take: int, *, tasks: Mapping[str, Task] | None = None,
         library: Any = None) -> dict:
    """Make take `take` of line `ref` the line's audio (0: back to its own seed, as `unpick`); recorded in the
    lock file with the take's seed and cache key. An approval of the line is dropped: the approved audio is
    no longer the line's. Returns {ref, picked, seed, key, unapproved, lock_file, uses}."""
    layout = ProjectLayout(project.root)
    with layout.lock(f"project {project.title}"):
        cur = current_lines(project, tasks=tasks, library=library)
        i = _one(cur.refs, ref)
        prune_takes(layout, _texts(cur.planned, cur.refs))
        listing = _listing(cur, i)
        numbers = [t["take"] for t in listing["takes"]]
        if take != 0 and take not in numbers:
            have = f"takes {', '.join(map(str, numbers))}" if numbers else "no takes yet"
            raise UsageError(f"no take {take} of {listing['ref']}; it has {have} (0: its own seed)",
                             hint=f"make some with `higgs project takes PATH {ref} --count 3`")
        line = cur.planned[i]
        lock = LockFile.of(project)  # read again under the lock
        entry = lock.lines.get(listing["name"])
        if entry is None or entry.text != text_digest(line):
            entry = LockEntry(text=text_digest(line))
        unapproved = entry.approved is not None
        chosen = next((t for t in listing["takes"] if t["take"] == take), None)
        entry.seed, entry.take, entry.picked = (chosen["seed"], take, chosen.get("key")) if chosen else (None,) * 3
        entry.approved = entry.voice = None
        lock.lines[listing["name"]] = entry
        lock.save()
    uses = _uses(current_lines(project, tasks=tasks, library=library), i, listing["takes"])
    return {"ref": listing["ref"], "picked": take, "seed": chosen["seed"] if chosen else None,
            "key": chosen.get("key") if chosen else None, "unapproved": unapproved, "lock_file": str(lock.path),
            "uses": uses}


def unpick(project: Project, ref: str, *, tasks: Mapping[str, Task] | None = None, library: Any = None) -> dict:
    """Drop the pick of line `ref`: it goes back to its own seed and the current settings (`pick` of take 0)."""
    return pick(project, ref, 0, tasks=tasks, library=library)
