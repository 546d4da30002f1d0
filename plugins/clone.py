"""`clone`: narration in one speaker's voice, chunked so long text stays in one voice.

Each chunk's request carries the speaker's reference recording as history, and
hears the previous `context_chunks` chunks (their text and generated audio), as
Boson's long-form example does.
"""

from __future__ import annotations

from higgs_cli.engine.text import MAX_TEXT_CHARS, chunk_text, normalize_text
from higgs_cli.plugins import (
    MAX_CONTEXT,
    PlannedLine,
    check_int,
    check_speakers,
    field,
    hookimpl,
    request,
    solo_scene,
    speaker_of,
)


class CloneTask:
    name = "clone"
    description = ("Narration in one speaker's voice: a cloned recording, a library voice, or a described "
                   "voice. Long text is split into chunks; each chunk hears the ones before it.")
    fields = {
        "max_chunk_chars": "longest chunk in characters, split at sentence ends (default 300)",
        "context_chunks": "how many previous chunks each chunk hears, to keep the voice steady (default 2)",
    }

    def validate(self, section, project):
        return [*check_speakers(section, project),
                *check_int(section, "max_chunk_chars", minimum=20, maximum=MAX_TEXT_CHARS),
                *check_int(section, "context_chunks", minimum=0, maximum=MAX_CONTEXT)]

    def plan(self, section, ctx):
        max_chars = int(field(section, "max_chunk_chars", 300))
        keep = int(field(section, "context_chunks", 2))
        planned: list[PlannedLine] = []
        for line_no, line in enumerate(section.lines):
            speaker = speaker_of(line, section, ctx.project)
            chunks = [c for c in chunk_text(line.text, max_chars=max_chars) if c.strip()]
            for chunk_no, chunk in enumerate(chunks):
                index = len(planned)
                planned.append(PlannedLine(
                    section=section.id,
                    speaker=speaker,
                    display_text=chunk.strip(),
                    request=request(ctx, line, section, index, text=normalize_text(chunk),
                                    history=ctx.voice_turns(speaker),
                                    scene=solo_scene(ctx, line, section, speaker)),
                    pause_after=ctx.pause_for(line, section),
                    context_from=tuple(range(max(0, index - keep), index)),
                    extra={"line": line_no, "chunk": chunk_no, "chunks": len(chunks)},
                ))
        return planned


@hookimpl
def register_tasks(register):
    register(CloneTask())
