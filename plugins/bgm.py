"""`bgm`: speech over background music the model generates along with the voice.

The line is wrapped in `[music start] ... [music end]` (Boson's markers) and the
scene describes the music. Experimental in Higgs Audio V2: try a few seeds.
"""

from __future__ import annotations

from higgs_cli.engine.text import normalize_text
from higgs_cli.plugins import hookimpl
from higgs_cli.plugins.task import PlannedLine

from ._common import check_speakers, check_text, request, solo_scene, speaker_of


class BgmTask:
    name = "bgm"
    description = ("Speech with background music generated along with the voice (experimental): "
                   "describe the music in `music:`.")
    fields = {
        "music": "the background music, e.g. 'soft piano, slow tempo' (required)",
    }

    def validate(self, section, project):
        return [*check_speakers(section, project), *check_text(section, "music", required=True)]

    def plan(self, section, ctx):
        music = str(section.fields["music"]).strip()
        planned: list[PlannedLine] = []
        for index, line in enumerate(section.lines):
            speaker = speaker_of(line, section, ctx.project)
            planned.append(PlannedLine(
                section=section.id,
                speaker=speaker,
                display_text=line.text.strip(),
                request=request(ctx, line, section, index,
                                text=normalize_text(f"[music start] {line.text.strip()} [music end]"),
                                history=ctx.voice_turns(speaker),
                                scene=solo_scene(ctx, line, section, speaker,
                                                 f"Audio is recorded with background music: {music}")),
                pause_after=ctx.pause_for(line, section),
                extra={"music": music},
            ))
        return planned


@hookimpl
def register_tasks(register):
    register(BgmTask())
