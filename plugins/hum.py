"""`hum`: a melody hummed in a cloned voice.

The line (syllables such as "mm hmm la la", or words to carry the tune) is
wrapped in `[humming start] ... [humming end]` and the scene describes the
melody. Humming clones a voice, so the speaker needs a recording. Experimental
in Higgs Audio V2: try a few seeds.
"""

from __future__ import annotations

from higgs_cli.engine.text import normalize_text
from higgs_cli.plugins import hookimpl
from higgs_cli.plugins.task import PlannedLine

from ._common import check_speakers, check_text, join_scene, request, speaker_of


class HumTask:
    name = "hum"
    description = ("A melody hummed in a cloned voice (experimental): describe the tune in `melody:`; "
                   "the speaker needs a recording (`voice:` or `audio:`).")
    fields = {
        "melody": "the tune to hum, e.g. 'a slow lullaby in C major' (required)",
    }

    def validate(self, section, project):
        return [*check_speakers(section, project, need_voice=True), *check_text(section, "melody", required=True)]

    def plan(self, section, ctx):
        melody = str(section.fields["melody"]).strip()
        planned: list[PlannedLine] = []
        for index, line in enumerate(section.lines):
            speaker = speaker_of(line, section, ctx.project)
            planned.append(PlannedLine(
                section=section.id,
                speaker=speaker,
                display_text=line.text.strip(),
                request=request(ctx, line, section, index,
                                text=normalize_text(f"[humming start] {line.text.strip()} [humming end]"),
                                history=ctx.voice_turns(speaker),
                                scene=join_scene(ctx.scene_for(line, section),
                                                 f"The speaker hums a melody: {melody}")),
                pause_after=ctx.pause_for(line, section),
                extra={"melody": melody},
            ))
        return planned


@hookimpl
def register_tasks(register):
    register(HumTask())
