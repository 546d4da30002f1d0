"""`dialogue`: several speakers taking turns; one request per line.

Speakers are tagged SPEAKER0, SPEAKER1, ... in order of first appearance in the
project, so a speaker keeps one tag across sections. A line's request is
`[SPEAKERn] text`, its history that speaker's reference recording (transcript
tagged the same way), and its scene lists the section's speaker descriptions.
"""

from __future__ import annotations

from higgs_cli.engine.request import Turn
from higgs_cli.engine.text import normalize_text
from higgs_cli.plugins import (
    MAX_CONTEXT,
    PlannedLine,
    check_int,
    check_speakers,
    field,
    hookimpl,
    join_scene,
    request,
    speaker_numbers,
    speaker_of,
)


class DialogueTask:
    name = "dialogue"
    description = ("A conversation: each line is spoken by its speaker (cloned or described), "
                   "tagged [SPEAKER0], [SPEAKER1], ... as Higgs Audio expects.")
    fields = {
        "context_lines": "how many previous lines each line hears (default 0: lines are independent, "
                         "so editing one line re-renders only that line)",
    }

    def validate(self, section, project):
        return [*check_speakers(section, project), *check_int(section, "context_lines", minimum=0, maximum=MAX_CONTEXT)]

    def plan(self, section, ctx):
        numbers = speaker_numbers(ctx.project)
        keep = int(field(section, "context_lines", 0))
        speakers = [speaker_of(line, section, ctx.project) for line in section.lines]
        cast = sorted(set(speakers), key=numbers.__getitem__)
        described = [f"SPEAKER{numbers[s]}: {d}" for s in cast if (d := ctx.speaker_description(s))]
        planned: list[PlannedLine] = []
        for index, (line, speaker) in enumerate(zip(section.lines, speakers, strict=True)):
            tag = f"[SPEAKER{numbers[speaker]}]"
            history = tuple(Turn(text=f"{tag} {turn.text}", codes=turn.codes, audio=turn.audio)
                            for turn in ctx.voice_turns(speaker))
            planned.append(PlannedLine(
                section=section.id,
                speaker=speaker,
                display_text=line.text.strip(),
                request=request(ctx, line, section, index, text=f"{tag} {normalize_text(line.text)}",
                                history=history,
                                scene=join_scene(ctx.scene_for(line, section), "\n".join(described))),
                pause_after=ctx.pause_for(line, section),
                context_from=tuple(range(max(0, index - keep), index)),
                extra={"tag": tag[1:-1]},
            ))
        return planned


@hookimpl
def register_tasks(register):
    register(DialogueTask())
