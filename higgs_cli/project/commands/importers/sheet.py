"""A dialogue sheet (CSV, TSV or JSON Lines) as a draft project.

One speaker per distinct character; one `dialogue` section per run of rows with
the same scene (or chapter) value; a row's `id` becomes its line's `id:` and its
`direction` the line's `direction:` (which joins the scene). A character is
spoken in a placeholder voice described from its `gender`, `age` and `accent`
columns where the sheet has them (else a different one per character), and
keeps its name as written (`name: "Old Man"`) for subtitles and the review page.
Header names are read without case, with the usual aliases: speaker/character, text/line, scene/chapter.
"""

from __future__ import annotations

from pathlib import Path

from higgs_cli.engine.text import MAX_TEXT_CHARS, nothing_to_speak
from higgs_cli.project.commands.importers.draft import (
    Draft,
    DraftLine,
    DraftSection,
    DraftSpeaker,
    placeholder_voice,
    section_id,
    speaker_name,
)
from higgs_cli.project.reading.schema import MAX_NAME_CHARS, SECTION_ID, SECTION_ID_RULE
from higgs_cli.sheets import Sheet, as_text, pick_column, read_sheet

SPEAKER_COLUMNS = ("speaker", "character")
TEXT_COLUMNS = ("text", "line")
SECTION_COLUMNS = ("scene", "chapter")
VOICE_COLUMNS = ("gender", "age", "accent")  # describe a character's placeholder voice
KNOWN = (*SPEAKER_COLUMNS, *TEXT_COLUMNS, *SECTION_COLUMNS, "id", "direction", *VOICE_COLUMNS)


def _cell(sheet: Sheet, line: int, values: dict, key: str | None) -> str | None:
    if key is None:
        return None
    try:
        return as_text(values.get(key))
    except TypeError as error:
        sheet.add(line, f"{key} must be text, not {error}")
        return None


def read_dialogue_sheet(path: Path, *, title: str | None = None) -> tuple[Draft, list[str]]:
    """(draft, columns not read) of a sheet; ValidationError with every bad row's file:line."""
    sheet = read_sheet(path)
    speaker_key = pick_column(sheet, SPEAKER_COLUMNS)
    text_key = pick_column(sheet, TEXT_COLUMNS)
    section_key = pick_column(sheet, SECTION_COLUMNS)
    for key, names in ((speaker_key, SPEAKER_COLUMNS), (text_key, TEXT_COLUMNS)):
        if key is None and sheet.records:
            sheet.add(1, f"there is no {' or '.join(repr(n) for n in names)} column; the columns are: "
                         + ", ".join(sheet.columns))
    sheet.raise_problems("the header")
    draft = Draft(title=title or path.stem, source=path.name, kind="sheet", output={"stems": True})
    by_source: dict[str, str] = {}
    found_traits: dict[str, dict[str, str]] = {}
    seen_ids: dict[str, int] = {}
    current: DraftSection | None = None
    current_value: object = object()
    for record in sheet.records:
        values, line = record.values, record.line
        before = sheet.found
        who = _cell(sheet, line, values, speaker_key)
        text = _cell(sheet, line, values, text_key)
        line_id = _cell(sheet, line, values, "id" if "id" in sheet.columns else None)
        direction = _cell(sheet, line, values, "direction" if "direction" in sheet.columns else None)
        traits = {k: _cell(sheet, line, values, k if k in sheet.columns else None) for k in VOICE_COLUMNS}
        where = _cell(sheet, line, values, section_key)
        if who is None:
            sheet.add(line, f"{speaker_key} is empty: every line needs its character")
        if text is None:
            sheet.add(line, f"{text_key} is empty")
        elif len(text) > MAX_TEXT_CHARS:
            sheet.add(line, f"{text_key} is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
        elif problem := nothing_to_speak(text, text_key):
            sheet.add(line, problem)
        if line_id is not None:
            if not SECTION_ID.fullmatch(line_id) or len(line_id) > MAX_NAME_CHARS:
                sheet.add(line, f"id {line_id!r} cannot be a line id ({SECTION_ID_RULE})")
            elif line_id in seen_ids:
                sheet.add(line, f"id {line_id!r} is used twice (first on line {seen_ids[line_id]})")
            else:
                seen_ids[line_id] = line
        if sheet.found > before:
            continue
        if who not in by_source:
            name = speaker_name(who, set(draft.speakers))
            by_source[who] = name
            draft.speakers[name] = DraftSpeaker(name, who)
            found_traits[name] = {}
        for key, value in traits.items():  # the first value the character's rows give
            if value:
                found_traits[by_source[who]].setdefault(key, value)
        if current is None or where != current_value:
            label = where or "dialogue"
            current = DraftSection(section_id(label, {s.id for s in draft.sections} | set(seen_ids), "dialogue"),
                                   "dialogue", where or "")
            current_value = where
            draft.sections.append(current)
        current.lines.append(DraftLine(text, speaker=by_source[who], id=line_id, direction=direction))
    sheet.raise_problems("the rows")
    if not draft.sections:
        sheet.add(1, "the sheet has no rows")
        sheet.raise_problems()
    _keep_ids_apart(draft, set(seen_ids))
    for index, speaker in enumerate(draft.speakers.values()):
        speaker.description = placeholder_voice(index, **found_traits.get(speaker.name, {}))
    return draft, [c for c in sheet.columns if c not in KNOWN]


def _keep_ids_apart(draft: Draft, line_ids: set[str]) -> None:
    """A section id made before a later row's line id took it gets another name (ids share one space)."""
    taken = {s.id for s in draft.sections} | line_ids
    for section in draft.sections:
        if section.id in line_ids:
            taken.discard(section.id)
            section.id = section_id(f"{section.id}-scene", taken, "dialogue")
            taken.add(section.id)
