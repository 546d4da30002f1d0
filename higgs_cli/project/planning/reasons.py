"""Why a line will be generated again, and what a take was made under: named by what changed.

A cache entry's meta records its recipe in parts (store.recipe_parts: the text shown, the text
read, the voice, the scene, the sampling, the seed, the model). A line the next render generates
is compared with the entry the last build used for it (the manifest's key, found by the line's
lock file name), so status can say `text` or `scene` rather than "something changed". Where that
entry is gone or predates recipes, the manifest itself still tells the text, the lexicon, the seed,
the sampling and the model apart.

Reasons, in the order they are given:

    new       the last build has no rendered line of this name (a new line, or no build yet)
    text      its words (as shown) changed
    lexicon   only the words the model reads changed (a lexicon entry)
    voice     its speaker's voice reference
    scene     the scene (or the system prompt)
    sampling  temperature, top-k/p, RAS, the length limit
    seed      its seed (a pick, a `seed:`)
    model     the model or audio tokenizer
    cache     nothing changed: its audio is no longer cached (`project clean`)
    settings  something else in its recipe; the entry that would say what is gone
    context   (cached lines) it heard other audio than its context lines have now: `--refresh-context`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from higgs_cli.project.folder.manifest import BuildManifest, ManifestLine
from higgs_cli.project.folder.store import Store, line_key, recipe_changes, recipe_parts

if TYPE_CHECKING:
    from higgs_cli.plugins.task import PlannedLine

REASONS = ("new", "text", "lexicon", "voice", "scene", "sampling", "seed", "model", "cache", "settings", "context")


def manifest_names(manifest: BuildManifest | None) -> dict[str, ManifestLine]:
    """The build's rendered lines by lock file name (refs.LineRefs.name: `ID`, `ID:K` of a split line,
    else `SECTION:N`)."""
    if manifest is None:
        return {}
    chunks: dict[str, list[ManifestLine]] = {}
    for line in manifest.lines:
        if isinstance(line.id, str):
            chunks.setdefault(line.id, []).append(line)
    found = {}
    for line in manifest.lines:
        if isinstance(line.id, str):
            group = chunks[line.id]
            name = line.id if len(group) == 1 else f"{line.id}:{group.index(line) + 1}"
        else:
            name = line.ref if isinstance(line.ref, str) else f"{line.section}:{int(line.index or 0) + 1}"
        if not line.missing and isinstance(line.key, str):
            found[name] = line
    return found


def why_generated(line: PlannedLine, key: str, earlier: ManifestLine | None, store: Store,
                  ids: Sequence[str], built_ids: Sequence[str] | None, voices: Sequence[str] = ()) -> list[str]:
    """Why the next render generates `line` (keyed `key` with `ids`, model and codec), compared with
    `earlier`, its line in the last build (made with `built_ids`); `voices`: store.described_voices."""
    if earlier is None:
        return ["new"]
    if earlier.key == key:
        return ["cache"]
    recipe = (store.meta(earlier.key) or {}).get("recipe")
    if isinstance(recipe, dict):
        now = recipe_parts(line, model_id=ids[0], codec_id=ids[1], voices=voices)
        return recipe_changes(recipe, now) or ["settings"]
    request, changed = line.request, []  # the entry is gone: what the manifest holds of it
    if earlier.text != line.display_text:
        changed.append("text")
    elif earlier.prompt_text != request.text:
        changed.append("lexicon")
    if earlier.sampling != request.sampling.to_dict() or earlier.max_frames != request.max_frames:
        changed.append("sampling")
    if earlier.seed != request.seed:
        changed.append("seed")
    if built_ids is not None and tuple(built_ids) != tuple(ids):
        changed.append("model")
    return changed or ["settings"]


def take_changes(line: PlannedLine, seed: int, key: str | None, store: Store,
                 ids: Sequence[str] | None, voices: Sequence[str] = ()) -> list[str] | None:
    """What differs between a take of `line` (made with `seed`, cached under `key`) and the line's settings
    now (keyed with `ids`): [] when the take is what the line would be with that seed; None when unknown."""
    request = replace(line.request, seed=seed)
    model_id, codec_id = ids or ("", "")
    if ids is not None and key == line_key(request, model_id=model_id, codec_id=codec_id):
        return []
    recipe = (store.meta(key) or {}).get("recipe") if key else None
    if not isinstance(recipe, dict):  # made before entries recorded their recipe, or its entry is gone
        return None if ids is None else ["settings"]
    if ids is None:  # no render yet says which model: compare the rest
        recipe = {k: v for k, v in recipe.items() if k != "model"}
    now = recipe_parts(line, request, model_id=model_id, codec_id=codec_id, voices=voices)
    return [c for c in recipe_changes(recipe, now) if c != "seed"] or (["settings"] if ids else [])
