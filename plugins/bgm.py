"""`bgm`: speech over background music the model generates along with the voice.

The line is wrapped in `[music start] ... [music end]` (Boson's markers) and the
scene describes the music. Experimental in Higgs Audio V2: try a few seeds.
"""

from __future__ import annotations

from higgs_cli.plugins import check_speakers, check_text, hookimpl, plan_wrapped_lines


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
        return plan_wrapped_lines(section, ctx, opening="[music start]", closing="[music end]",
                                  scene_note=f"Audio is recorded with background music: {music}",
                                  extra={"music": music})


@hookimpl
def register_tasks(register):
    register(BgmTask())
