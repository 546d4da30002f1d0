"""`hum`: a melody hummed in a cloned voice.

The line (syllables such as "mm hmm la la", or words to carry the tune) is
wrapped in `[humming start] ... [humming end]` and the scene describes the
melody. Humming clones a voice, so the speaker needs a recording. Experimental
in Higgs Audio V2: try a few seeds.
"""

from __future__ import annotations

from higgs_cli.plugins import check_speakers, check_text, hookimpl, plan_wrapped_lines


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
        return plan_wrapped_lines(section, ctx, opening="[humming start]", closing="[humming end]",
                                  scene_note=f"The speaker hums a melody: {melody}", extra={"melody": melody})


@hookimpl
def register_tasks(register):
    register(HumTask())
