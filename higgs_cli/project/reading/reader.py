"""The node reader: turns a checked node tree into the project's model, reporting every problem.

`ProjectReader.project` reads the whole file: settings, speakers, and the
script's sections and lines. Tasks are looked up in the registry it is given
(only to know each section's extra keys); their own checks run afterwards, in
`load.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from higgs_cli.engine.text import MAX_TEXT_CHARS, nothing_to_speak
from higgs_cli.plugins.script import (
    GuardSettings,
    Line,
    Location,
    OutputSettings,
    Project,
    SamplingDefaults,
    Section,
    Speaker,
)
from higgs_cli.plugins.task import Task
from higgs_cli.project.reading.lexicon import Lexicon, read_lexicon
from higgs_cli.project.reading.problems import BAD, Problems, did_you_mean, one_of
from higgs_cli.project.reading.schema import (
    FORMAT_VERSION,
    GUARD_RULES,
    LINE_KEYS,
    LINE_OVERRIDES,
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
    OUTPUT_RULES,
    SAMPLING_RULES,
    SECTION_ID,
    SECTION_ID_RULE,
    SECTION_KEYS,
    TOP_KEYS,
)
from higgs_cli.project.reading.speakers import SpeakerReader
from higgs_cli.project.reading.values import known
from higgs_cli.project.reading.yaml_safety import INT, construct, is_null, kind


class ProjectReader(SpeakerReader):
    """Reads one project file's node tree with the task registry `tasks`."""

    def __init__(self, problems: Problems, root: Path, unsafe: set[int], tasks: Mapping[str, Task], *,
                 budget: int) -> None:
        super().__init__(problems, root, unsafe, budget=budget)
        self.tasks = tasks
        self.script_at = (1, 1)  # where `script:` starts, for problems with the script as a whole
        self.lexicon = Lexicon({})  # the project's, once read: a line is checked as the model will read it

    # -- the whole file --

    def project(self, node: Node, file: Path) -> tuple[Project, list[tuple[Section, bool]]]:
        """The project, and each section with whether it was read without any problem."""
        pairs = self.pairs(node, "the project file", "a mapping with title:, speakers: and script:") or []
        self.unknown_keys(pairs, TOP_KEYS, "the project file")
        given = {name: value for name, _, value in pairs}
        if "version" in given:
            version = given["version"]
            if not (isinstance(version, ScalarNode) and version.tag == INT and construct(version) == FORMAT_VERSION):
                self.p.add(version, f"unsupported format version {version.value!r}", str(FORMAT_VERSION))
        title = self.text(given["title"], "title", max_chars=MAX_TITLE_CHARS) if "title" in given else None
        tags = {key: self.text(given[key], key, max_chars=MAX_TITLE_CHARS, nullable=True)
                for key in ("artist", "album", "author", "narrator") if key in given}
        model = self.text(given["model"], "model", max_chars=1000, nullable=True) if "model" in given else None
        cache = self.text(given["cache"], "cache", max_chars=1000, nullable=True) if "cache" in given else None
        scene = self.text(given["scene"], "scene", nullable=True) if "scene" in given else None
        defaults = self.settings(given["defaults"], "defaults", SAMPLING_RULES, SamplingDefaults.of) \
            if "defaults" in given and not is_null(given["defaults"]) else SamplingDefaults()
        output = self.settings(given["output"], "output", OUTPUT_RULES, OutputSettings) \
            if "output" in given and not is_null(given["output"]) else OutputSettings()
        guards = self.settings(given["guards"], "guards", GUARD_RULES, GuardSettings) \
            if "guards" in given and not is_null(given["guards"]) else GuardSettings()
        lexicon = read_lexicon(self, given.get("lexicon") if not is_null(given.get("lexicon")) else None,
                               given.get("lexicon_file") if not is_null(given.get("lexicon_file")) else None)
        self.lexicon = Lexicon(lexicon)
        speakers_node = given.get("speakers")
        speakers = self.speakers(None if speakers_node is None or is_null(speakers_node) else speakers_node)
        declared = self.declared(speakers_node)
        sections: list[tuple[Section, bool]] = []
        if "script" in given:
            mark = given["script"].start_mark
            self.script_at = (mark.line + 1, mark.column + 1)
            sections = self.script(given["script"], speakers, declared)
        elif isinstance(node, MappingNode) and self.ok(node):
            self.p.add(node, "the project has no script", "script: a list of sections")
        project = Project(
            root=self.root,
            file=file,
            title=title if isinstance(title, str) else self.root.resolve().name,
            model=model if isinstance(model, str) else None,
            scene=scene if isinstance(scene, str) else None,
            defaults=defaults,
            output=output,
            speakers=speakers,
            sections=tuple(section for section, _ in sections),
            guards=guards,
            lexicon=lexicon,
            cache=cache if isinstance(cache, str) else None,
            **{key: value for key, value in tags.items() if isinstance(value, str)},
        )
        return project, sections

    # -- script --

    def script(self, node: Node, speakers: dict[str, Speaker], declared: set[str]) -> list[tuple[Section, bool]]:
        if not self.ok(node):
            return []
        if not isinstance(node, SequenceNode):
            self.p.add(node, f"script must be a list of sections, not {kind(node)}",
                       "a list of sections, each starting with '- task: ...'")
            return []
        if not node.value:
            self.p.add(node, "script is empty", "at least one section")
            return []
        self.spend(len(node.value))
        sections: list[tuple[Section, bool]] = []
        ids: dict[str, tuple[Node, bool]] = {}
        for index, item in enumerate(node.value, start=1):
            before, broken = len(self.p), self.broken_refs
            result = self.section(item, index, speakers, declared)
            if result is None:
                continue
            section, id_node = result
            if section.id in ids:
                first, first_explicit = ids[section.id]
                where = f"line {first.start_mark.line + 1}"
                note = "" if first_explicit and id_node is not None else " (sections without id: are s1, s2, ...)"
                self.p.add(id_node or item, f"duplicate section id '{section.id}' (first at {where}){note}",
                           "a unique id per section")
            else:
                ids[section.id] = (id_node or item, id_node is not None)
            sections.append((section, len(self.p) == before and self.broken_refs == broken))
        self.check_line_ids([section for section, _ in sections])
        return sections

    def check_line_ids(self, sections: list[Section]) -> None:
        """Line ids are unique in the project and never a section's id (`ID:N` names chunk N of a line
        and `SECTION:N` line N of a section: one name must not mean both)."""
        seen: dict[str, Line] = {}
        section_ids = {section.id for section in sections}
        for section in sections:
            for line in section.lines:
                if line.id is None:
                    continue
                at = (line.location.line, line.location.column) if line.location else (1, 1)
                if line.id in seen:
                    first = seen[line.id].location
                    self.p.add_at(*at, f"duplicate line id '{line.id}'"
                                       + (f" (first at line {first.line})" if first else ""), "a unique id per line")
                elif line.id in section_ids:
                    self.p.add_at(*at, f"line id '{line.id}' is also a section's id",
                                  "an id no section has (refs name sections and lines alike)")
                else:
                    seen[line.id] = line

    def section(self, node: Node, index: int, speakers, declared) -> tuple[Section, Node | None] | None:
        what = f"section {index}"
        pairs = self.pairs(node, what, "a mapping with task: and text: or lines:")
        if pairs is None:
            return None
        given = {name: (key, value) for name, key, value in pairs}
        task = None
        task_name = None
        if "task" not in given:
            self.p.add(node, f"{what} has no task", f"task: {one_of(self.tasks)}")
        else:
            task_name = self.text(given["task"][1], f"{what}: task", max_chars=MAX_NAME_CHARS)
            if task_name is not BAD:
                task = self.tasks.get(task_name)
                if task is None:
                    self.p.add(given["task"][1], f"unknown task '{task_name}'{did_you_mean(task_name, self.tasks)}",
                               f"{one_of(self.tasks)}; see `higgs plugins list`")
        task_fields = dict(getattr(task, "fields", {}) or {}) if task is not None else {}
        if task is not None:
            owners = {f: name for name, other in sorted(self.tasks.items()) for f in getattr(other, "fields", {})}
            self.unknown_keys(pairs, [*SECTION_KEYS, *(f for f in task_fields if f not in SECTION_KEYS)],
                              f"{what} (task '{task_name}')", owners)

        section_id = f"s{index}"
        id_node = None
        if "id" in given:
            id_node = given["id"][1]
            value = self.name(id_node, f"{what}: id", SECTION_ID, SECTION_ID_RULE)
            if value is not BAD:
                section_id = value
            what = f"section '{section_id}'" if value is not BAD else what

        scene = self.text(given["scene"][1], f"{what}: scene", nullable=True) if "scene" in given else None
        title = self.text(given["title"][1], f"{what}: title", max_chars=MAX_TITLE_CHARS, nullable=True) \
            if "title" in given else None
        speaker = None
        if "speaker" in given:
            speaker = self.speaker_ref(given["speaker"][1], f"{what}: speaker", speakers, declared)
        overrides = self.overrides(given, what, {})

        lines: list[Line] = []
        if "text" in given and "lines" in given:
            self.p.add(given["lines"][0], f"{what} has both text: and lines:", "one of them")
        elif "text" in given:
            key, value = given["text"]
            text = self.line_text(value, f"{what}: text")
            if text is not BAD:
                lines.append(Line(speaker=None if speaker is BAD else speaker, text=text,
                                  location=self.p.location(value), **known(overrides)))
        elif "lines" in given:
            lines = self.lines(given["lines"][1], what, speaker, overrides, speakers, declared)
        else:
            self.p.add(node, f"{what} has no text", "text: (one line) or lines: (a list of lines)")

        fields: dict[str, Any] = {}
        field_locations: dict[str, Location] = {}
        for name, (_, value) in given.items():
            if name in task_fields and name not in SECTION_KEYS:
                data = self.plain(value, f"{what}: {name}")
                if data is not BAD:
                    fields[name] = data
                    field_locations[name] = self.p.location(value)

        section = Section(
            id=section_id,
            task=task_name if isinstance(task_name, str) else "",
            lines=tuple(lines),
            fields=fields,
            field_locations=field_locations,
            scene=scene if isinstance(scene, str) else None,
            location=self.p.location(node),
            speaker=speaker if isinstance(speaker, str) else None,
            title=title if isinstance(title, str) else None,
        )
        return section, id_node

    def overrides(self, given: dict[str, tuple[Node, Node]], what: str, inherited: dict[str, Any]) -> dict[str, Any]:
        """The line settings (`LINE_OVERRIDES`) in `given`, over those `inherited` from the section."""
        values = dict(inherited)
        for name in LINE_OVERRIDES:
            if name in given:
                values[name] = self.number(given[name][1], f"{what}: {name}", SAMPLING_RULES[name])
        return values

    def line_text(self, node: Node, what: str) -> Any:
        value = self.text(node, what, max_chars=MAX_TEXT_CHARS)
        if value is not BAD and self.lexicon and len(spoken := self.lexicon.apply(value)) > MAX_TEXT_CHARS:
            # a respelling of 200 characters for one letter made a valid line 480,000 characters long
            self.p.add(node, f"{what} is {len(spoken)} characters long once the lexicon respells it "
                             f"({len(value)} as written)", f"at most {MAX_TEXT_CHARS} characters as the model reads "
                             "it: split the line, or shorten the lexicon's respellings")
            return BAD
        if value is not BAD and (problem := nothing_to_speak(value, what)):
            self.p.add(node, problem, "words to speak")
            return BAD
        return value

    def lines(self, node: Node, what: str, speaker, overrides, speakers, declared) -> list[Line]:
        if not self.ok(node):
            return []
        if not isinstance(node, SequenceNode):
            self.p.add(node, f"{what}: lines must be a list, not {kind(node)}",
                       "a list of lines, e.g. '- alice: Hello!'")
            return []
        if not node.value:
            self.p.add(node, f"{what}: lines is empty", "at least one line")
            return []
        self.spend(len(node.value))
        lines = []
        for number, item in enumerate(node.value, start=1):
            line = self.line(item, f"{what}, line {number}", speaker, overrides, speakers, declared)
            if line is not None:
                lines.append(line)
        return lines

    def line(self, node: Node, what: str, default_speaker, overrides, speakers, declared) -> Line | None:
        """One line: `- text`, `- NAME: text` (plus line keys), or `- {speaker: NAME, text: ...}`."""
        inherited = None if default_speaker is BAD else default_speaker
        if isinstance(node, ScalarNode) and self.ok(node):
            text = self.line_text(node, what)
            return None if text is BAD else Line(speaker=inherited, text=text, location=self.p.location(node),
                                                 **known(overrides))
        if isinstance(node, SequenceNode) and node.flow_style and self.ok(node):
            self.p.add(node, f"{what} is a list, not a line",
                       'a line; put text that starts with "[" in quotes, e.g. - "[laugh] hello"')
            return None
        pairs = self.pairs(node, what, "'NAME: text', a mapping with speaker: and text:, or plain text")
        if pairs is None:
            return None
        given = {name: (key, value) for name, key, value in pairs}
        others = [name for name in given if name not in LINE_KEYS]
        before = len(self.p)
        speaker: Any = inherited
        text_node = None
        if "text" in given:
            text_node = given["text"][1]
            self.unknown_keys(pairs, LINE_KEYS, what)
            if "speaker" in given:
                speaker = self.speaker_ref(given["speaker"][1], f"{what}: speaker", speakers, declared)
        elif "speaker" in given or not others:
            self.unknown_keys(pairs, LINE_KEYS, what)
            self.p.add(node, f"{what} has no text", "'NAME: text', or text: (with speaker: if needed)")
        elif len(others) == 1:  # short form: NAME: text
            key, text_node = given[others[0]]
            speaker = self.speaker_ref(key, f"{what}: speaker", speakers, declared)
        else:
            keys = ", ".join(f"'{o}'" for o in others)
            self.p.add(node, f"{what} has several unknown keys ({keys}); a short line has one 'NAME: text' pair",
                       f"'NAME: text' or line keys ({', '.join(LINE_KEYS)})")
        values = self.overrides(given, what, overrides)
        if "id" in given:
            values["id"] = self.name(given["id"][1], f"{what}: id", SECTION_ID, SECTION_ID_RULE)
        scene = self.text(given["scene"][1], f"{what}: scene", nullable=True) if "scene" in given else None
        direction = self.text(given["direction"][1], f"{what}: direction", nullable=True) \
            if "direction" in given else None
        text = self.line_text(text_node, f"{what}: text") if text_node is not None else BAD
        if len(self.p) > before or BAD in (text, speaker, scene, direction, values.get("id")):
            return None
        return Line(speaker=speaker, text=text, scene=scene, direction=direction, location=self.p.location(node),
                    **known(values))
