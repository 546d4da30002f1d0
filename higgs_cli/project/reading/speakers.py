"""Reading `speakers:` and references to speakers: each speaker's one voice source, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import read_capped_text
from higgs_cli.plugins.script import Speaker
from higgs_cli.project.reading.problems import BAD, did_you_mean, one_of
from higgs_cli.project.reading.schema import (
    LINE_KEYS,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_TITLE_CHARS,
    SPEAKER_KEYS,
    SPEAKER_NAME,
    SPEAKER_NAME_RULE,
)
from higgs_cli.project.reading.values import ValueReader
from higgs_cli.project.reading.yaml_safety import MERGE, kind

_SOURCES = ("exactly one of: voice: (a library voice), audio: with transcript: or transcript_file:, "
            "or description: alone")


class SpeakerReader(ValueReader):
    """The value readers, plus speakers and speaker references."""

    def speakers(self, node: Node | None) -> dict[str, Speaker]:
        if node is None:
            return {}
        pairs = self.pairs(node, "speakers", "speaker names mapped to their voice, e.g. alice: {voice: alice}")
        speakers: dict[str, Speaker] = {}
        for name, key, value in pairs or []:
            if not SPEAKER_NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
                self.p.add(key, f"speaker name '{name}' is not a valid name", SPEAKER_NAME_RULE)
                continue
            if name in LINE_KEYS:
                self.p.add(key, f"speaker name '{name}' is reserved (it is a line key)", "another name")
                continue
            speaker = self.speaker(name, key, value)
            if speaker is not None:
                speakers[name] = speaker
        return speakers

    def speaker(self, name: str, key: Node, node: Node) -> Speaker | None:
        what = f"speaker '{name}'"
        pairs = self.pairs(node, what, _SOURCES)
        if pairs is None:
            return None
        self.unknown_keys(pairs, SPEAKER_KEYS, what)
        given = {k: v for k, _, v in pairs if k in SPEAKER_KEYS}
        before = len(self.p)
        values: dict[str, Any] = {}
        if "voice" in given:
            values["voice"] = self.text(given["voice"], f"{what}: voice", max_chars=MAX_NAME_CHARS)
        if "audio" in given:
            values["audio"] = self.project_file(given["audio"], f"{what}: audio")
        if "transcript" in given:
            values["transcript"] = self.text(given["transcript"], f"{what}: transcript")
        if "transcript_file" in given:
            path = self.project_file(given["transcript_file"], f"{what}: transcript_file")
            values["transcript_file"] = path
            if path is not BAD:
                values["transcript"] = self.transcript_from(path, given["transcript_file"], what)
        if "description" in given:
            values["description"] = self.text(given["description"], f"{what}: description")
        if "name" in given:
            values["display_name"] = self.text(given["name"], f"{what}: name", max_chars=MAX_TITLE_CHARS)

        if "voice" in given and "audio" in given:
            self.p.add(given["audio"], f"{what} has two voice sources (voice: and audio:)", _SOURCES)
        if "transcript" in given and "transcript_file" in given:
            self.p.add(given["transcript_file"], f"{what} has both transcript: and transcript_file:",
                       "one of them")
        if "audio" in given and not ("transcript" in given or "transcript_file" in given):
            self.p.add(node, f"{what} has audio: but no transcript",
                       "transcript: (the words spoken in the recording) or transcript_file:")
        for extra in ("transcript", "transcript_file"):
            if extra in given and "audio" not in given:
                self.p.add(given[extra], f"{what} has {extra}: without audio:",
                           f"{extra}: only beside audio: (a library voice carries its own transcript)")
        if not given.keys() & {"voice", "audio", "description"}:
            self.p.add(node, f"{what} has no voice source", _SOURCES)
        if len(self.p) > before:
            return None
        return Speaker(name=name, location=self.p.location(key), **values)

    def transcript_from(self, path: Path, node: Node, what: str) -> Any:
        try:  # a regular file only, capped before reading: it could be any file, a FIFO or /dev/zero
            text = read_capped_text(path, 4 * MAX_NOTE_CHARS + 1024, what="transcript_file").strip()
        except UsageError as error:
            self.p.add(node, f"{what}: {error.message}", f"a UTF-8 text file of at most {MAX_NOTE_CHARS} characters")
            return BAD
        if not text:
            self.p.add(node, f"{what}: transcript_file is empty", "the words spoken in the recording")
            return BAD
        if len(text) > MAX_NOTE_CHARS:
            self.p.add(node, f"{what}: transcript_file is {len(text)} characters long",
                       f"at most {MAX_NOTE_CHARS} characters")
            return BAD
        return text

    def speaker_ref(self, node: Node, what: str, speakers: dict[str, Speaker], declared: set[str]) -> Any:
        """A reference to a speaker by name: it must be declared under `speakers:`."""
        if not self.ok(node):
            return BAD
        if not isinstance(node, ScalarNode) or not node.value.strip():
            self.p.add(node, f"{what} must be a speaker name, not {kind(node)}", one_of(declared))
            return BAD
        name = node.value.strip()
        if name not in declared:
            self.p.add(node, f"unknown speaker '{name}'{did_you_mean(name, declared)}",
                       f"a speaker declared under speakers: ({one_of(declared)})")
            return BAD
        if name not in speakers:  # declared but invalid: reported there
            self.broken_refs += 1
            return BAD
        return name

    @staticmethod
    def declared(node: Node | None) -> set[str]:
        """Every speaker name written under `speakers:`, valid or not (for line checks)."""
        if node is None or not isinstance(node, MappingNode):
            return set()
        return {key.value for key, _ in node.value if isinstance(key, ScalarNode) and key.tag != MERGE}
