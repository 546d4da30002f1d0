"""Read and validate `project.yaml` into the dataclasses of `project.model`.

The YAML is composed with PyYAML's safe loader into nodes (never constructed
with a full loader), so every value keeps its position and no tag can run
code. Every problem is collected, each as `file:line:column: message
(expected ...)`, and all are raised at once in one ValidationError. Loading
reads files but writes nothing; library voice names are checked at render
time, not here. The format is documented in docs/project-format.md.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from higgs_cli.engine.text import MAX_TEXT_CHARS, normalize_text
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import atomic_write_text
from higgs_cli.plugins.manager import get_tasks
from higgs_cli.project.model import (
    Line,
    Location,
    OutputSettings,
    Project,
    SamplingDefaults,
    Section,
    Speaker,
)
from higgs_cli.project.plan import length_problem, speech_seconds

PROJECT_FILE = "project.yaml"
FORMAT_VERSION = 1
MAX_NOTE_CHARS = 2000  # scene, description, transcript
MAX_TITLE_CHARS = 200
MAX_NAME_CHARS = 64  # speaker names and section ids
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FIELD_NODES = 10_000  # values in one task field, aliases expanded
MAX_DEPTH = 32  # lists and mappings inside each other
TEMPLATES = ("podcast", "audiobook")

TOP_KEYS = ("version", "title", "model", "scene", "defaults", "output", "speakers", "script")
SPEAKER_KEYS = ("voice", "audio", "transcript", "transcript_file", "description")
LINE_KEYS = ("speaker", "text", "seed", "temperature", "pause", "scene")
SECTION_KEYS = ("id", "task", "scene", "speaker", "text", "lines", "seed", "temperature", "pause")
LINE_OVERRIDES = ("seed", "temperature", "pause")  # also allowed on a section, for its lines

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab and line breaks are fine
_SECTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SPEAKER_NAME = re.compile(r"\w[\w.-]*")

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_YAML}{t}" for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = f"{_YAML}map", f"{_YAML}seq", f"{_YAML}merge"
_SAFE_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _MAP, _SEQ, _MERGE, f"{_YAML}timestamp"}


# --- value rules ---------------------------------------------------------------

@dataclass(frozen=True)
class _Number:
    """A numeric setting: its range, whether it must be whole, whether null is allowed."""

    low: float | None
    high: float | None
    integer: bool = False
    low_open: bool = False
    nullable: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            low = f"above {_fmt(self.low)}" if self.low_open else f"from {_fmt(self.low)}"
            text = f"{kind} {low} to {_fmt(self.high)}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {_fmt(self.low)}"
        else:
            text = kind
        return f"{text}, or null" if self.nullable else text


@dataclass(frozen=True)
class _Choice:
    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)


class _Bool:
    @staticmethod
    def describe() -> str:
        return "true or false"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


SAMPLING_RULES: dict[str, _Number] = {
    "temperature": _Number(0, 2),
    "top_k": _Number(1, None, integer=True, nullable=True),
    "top_p": _Number(0, 1, low_open=True),
    "ras_window": _Number(0, 100, integer=True),
    "ras_max_repeat": _Number(1, 100, integer=True),
    "seed": _Number(0, 2**32 - 1, integer=True),
    "max_seconds": _Number(0, 600, low_open=True),
    "pause": _Number(0, 30),
}
OUTPUT_RULES: dict[str, _Number | _Choice | _Bool] = {
    "format": _Choice(("wav", "flac", "mp3")),
    "loudness": _Number(-70, 0),
    "peak": _Number(-20, 0),
    "crossfade_ms": _Number(0, 1000),
    "trim_silence": _Bool(),
    "stems": _Bool(),
    "subtitles": _Bool(),
    "max_hours": _Number(0, 24, low_open=True),
}


# --- locating project files ------------------------------------------------------

def find_project_file(path: Path | str) -> Path:
    """The project file for `path`: a folder's `project.yaml`, or `path` itself if it is a file."""
    path = Path(path)
    if path.is_dir():
        candidate = path / PROJECT_FILE
        if candidate.is_file():
            return candidate
        raise UsageError(f"no {PROJECT_FILE} in {path}",
                         hint=f"pass a project folder or its {PROJECT_FILE}; create one with `higgs project new`")
    if path.is_file():
        return path
    if not path.exists():
        raise UsageError(f"{path} does not exist", hint="pass a project folder or its project.yaml")
    raise UsageError(f"{path} is not a file or folder")


# --- problems ----------------------------------------------------------------------

class _Bad:
    """The value of a node that had a problem (already reported)."""


BAD: Any = _Bad()


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self._items: list[tuple[int, int, int, str]] = []

    def location(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def add(self, node: Node | None, message: str, expected: str | None = None) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)
        self.add_at(line, column, message, expected)

    def add_at(self, line: int, column: int, message: str, expected: str | None = None) -> None:
        text = f"{self.file}:{line}:{column}: {message}" + (f" (expected {expected})" if expected else "")
        self._items.append((line, column, len(self._items), text))

    def add_formatted(self, text: str) -> None:
        """A problem a plugin formatted itself; sorted in by its position when it has one."""
        match = re.match(r"^.*?:(\d+):(\d+): ", text)
        line, column = (int(match[1]), int(match[2])) if match else (10**9, 0)
        self._items.append((line, column, len(self._items), text))

    def __len__(self) -> int:
        return len(self._items)

    def messages(self) -> list[str]:
        return [text for *_, text in sorted(self._items)]


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _one_of(options: Iterable[str]) -> str:
    options = sorted(options)
    return "one of " + ", ".join(options) if options else "none are defined"


def _construct(node: Node, *, deep: bool = False) -> Any:
    """Plain YAML types only (SafeConstructor has no Python-object constructors)."""
    return SafeConstructor().construct_object(node, deep=deep)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {_NULL: "empty (null)", _BOOL: f"{node.value!r} (true/false)", _INT: f"the number {node.value}",
            _FLOAT: f"the number {node.value}"}.get(node.tag, repr(_short(node.value)))


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the loader ----------------------------------------------------------------------

class _Reader:
    """Turns the composed node tree into model objects, reporting every problem."""

    def __init__(self, problems: _Problems, root: Path, tasks: dict) -> None:
        self.p = problems
        self.root = root
        self.real_root = root.resolve()
        self.tasks = tasks
        self.unsafe: set[int] = set()
        self.script_at = (1, 1)  # where `script:` starts, for problems with the script as a whole
        self.broken_refs = 0  # values left out for a problem reported elsewhere (a declared but invalid
        # speaker, an unsupported tag): a section holding one is not clean

    # -- generic readers --

    def check_tags(self, node: Node) -> None:
        """Flag every node with a tag outside plain YAML (e.g. !!python/object): never constructed.
        Also flag lists and mappings nested more than MAX_DEPTH deep, so nothing
        later recurses through them.
        """
        seen: set[int] = set()
        stack = [(node, 0)]
        while stack:
            current, depth = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            if current.tag not in _SAFE_TAGS:
                self.unsafe.add(id(current))
                tag = current.tag.replace(_YAML, "!!", 1) if current.tag.startswith(_YAML) else current.tag
                self.p.add(current, f"unsupported YAML tag '{tag}'",
                           "plain values: text, numbers, true/false, lists and mappings")
            if depth > MAX_DEPTH and isinstance(current, (SequenceNode, MappingNode)):
                self.unsafe.add(id(current))
                self.p.add(current, f"lists and mappings are nested more than {MAX_DEPTH} levels deep here",
                           "a flatter structure")
                continue
            if isinstance(current, SequenceNode):
                stack.extend((child, depth + 1) for child in current.value)
            elif isinstance(current, MappingNode):
                for key, value in current.value:
                    stack.extend(((key, depth + 1), (value, depth + 1)))

    def ok(self, node: Node) -> bool:
        return id(node) not in self.unsafe

    def all_ok(self, node: Node) -> bool:
        seen: set[int] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            if not self.ok(current):
                return False
            if isinstance(current, SequenceNode):
                stack.extend(current.value)
            elif isinstance(current, MappingNode):
                stack.extend(n for pair in current.value for n in pair)
        return True

    def pairs(self, node: Node, what: str, expected: str) -> list[tuple[str, Node, Node]] | None:
        """A mapping's (key, key node, value node) triples; merges (`<<: *anchor`) expanded,
        duplicate and non-text keys reported."""
        if not self.ok(node):
            return None
        if not isinstance(node, MappingNode):
            self.p.add(node, f"{what} must be a mapping, not {_kind(node)}", expected)
            return None
        explicit: list[tuple[str, Node, Node]] = []
        merged: list[tuple[str, Node, Node]] = []
        for key, value in node.value:
            if key.tag == _MERGE:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    inner = self.pairs(source, f"a merge (<<) in {what}", "an anchored mapping, e.g. <<: *defaults")
                    merged.extend(inner or [])
                continue
            if not isinstance(key, ScalarNode) or not self.ok(key):
                if self.ok(key):
                    self.p.add(key, f"a key in {what} must be plain text, not {_kind(key)}")
                continue
            explicit.append((key.value, key, value))
        out: dict[str, tuple[str, Node, Node]] = {}
        for name, key, value in explicit:
            if name in out:
                first = out[name][1].start_mark
                self.p.add(key, f"duplicate key '{name}' in {what} (first at line {first.line + 1})",
                           "each key once")
                continue
            out[name] = (name, key, value)
        for name, key, value in merged:  # explicit keys win over merged ones
            out.setdefault(name, (name, key, value))
        return list(out.values())

    def unknown_keys(self, pairs, allowed: Iterable[str], what: str, owners: dict[str, str] | None = None) -> None:
        """Report keys outside `allowed`, with a did-you-mean, or the task a key belongs to (`owners`)."""
        allowed = list(allowed)
        for name, key, _ in pairs:
            if name not in allowed:
                hint = _did_you_mean(name, allowed)
                if not hint and owners and name in owners:
                    hint = f"; it is a key of task '{owners[name]}'"
                self.p.add(key, f"unknown key '{name}' in {what}{hint}", _one_of(allowed))

    def text(self, node: Node, what: str, *, max_chars: int = MAX_NOTE_CHARS, nullable: bool = False) -> Any:
        """Any scalar, as written (so `text: yes` is "yes", not true); stripped and non-empty."""
        if not self.ok(node):
            return BAD
        if not isinstance(node, ScalarNode):
            self.p.add(node, f"{what} must be text, not {_kind(node)}", "text")
            return BAD
        if node.tag == _NULL and node.style is None:
            if nullable:
                return None
            self.p.add(node, f"{what} is empty", "some text")
            return BAD
        value = node.value.strip()
        if not value:
            self.p.add(node, f"{what} is empty", "some text" + (", or leave the key out" if nullable else ""))
            return BAD
        if len(value) > max_chars:
            self.p.add(node, f"{what} is {len(value)} characters long", f"at most {max_chars} characters")
            return BAD
        if control := _CONTROL.search(value):
            self.p.add(node, f"{what} contains the control character U+{ord(control[0]):04X}",
                       "printable text (tabs and line breaks are fine)")
            return BAD
        return value

    def name(self, node: Node, what: str, pattern: re.Pattern, rule: str) -> Any:
        value = self.text(node, what, max_chars=MAX_NAME_CHARS)
        if value is BAD:
            return BAD
        if not pattern.fullmatch(value):
            self.p.add(node, f"{what} '{value}' is not a valid name", rule)
            return BAD
        return value

    def number(self, node: Node, what: str, rule: _Number) -> Any:
        if not self.ok(node):
            return BAD
        if isinstance(node, ScalarNode) and node.tag == _NULL and rule.nullable:
            return None
        value: Any = BAD
        if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
            value = _construct(node)
            if isinstance(value, float) and math.isnan(value):
                value = BAD
            elif rule.integer and not isinstance(value, int):
                value = BAD
        if value is BAD:
            self.p.add(node, f"{what} must be {'a whole number' if rule.integer else 'a number'}, not {_kind(node)}",
                       rule.describe())
            return BAD
        too_low = rule.low is not None and (value <= rule.low if rule.low_open else value < rule.low)
        too_high = rule.high is not None and value > rule.high
        if too_low or too_high:
            self.p.add(node, f"{what} {node.value} is out of range", rule.describe())
            return BAD
        return value if rule.integer else float(value)

    def boolean(self, node: Node, what: str) -> Any:
        if not self.ok(node):
            return BAD
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            return _construct(node)
        self.p.add(node, f"{what} must be true or false, not {_kind(node)}", "true or false")
        return BAD

    def value(self, node: Node, what: str, rule: _Number | _Choice | _Bool) -> Any:
        if isinstance(rule, _Number):
            return self.number(node, what, rule)
        if isinstance(rule, _Bool):
            return self.boolean(node, what)
        value = self.text(node, what)
        if value is not BAD and value not in rule.options:
            self.p.add(node, f"{what} '{value}' is not supported{_did_you_mean(value, rule.options)}",
                       rule.describe())
            return BAD
        return value

    def settings(self, node: Node, what: str, rules: dict, factory: Callable) -> Any:
        pairs = self.pairs(node, what, "a mapping of settings")
        if pairs is None:
            return factory()
        self.unknown_keys(pairs, rules, what)
        values = {}
        for name, _, value_node in pairs:
            if name in rules:
                value = self.value(value_node, f"{what}.{name}", rules[name])
                if value is not BAD:
                    values[name] = value
        return factory(**values)

    def plain(self, node: Node, what: str) -> Any:
        """A task field's value as Python data (safe constructor: plain YAML types only)."""
        if not self.all_ok(node):
            self.broken_refs += 1  # an unsupported tag or too deep inside: reported already; not clean
            return BAD
        if _expanded_size(node, {}) > MAX_FIELD_NODES:
            self.p.add(node, f"{what} is too large once its aliases are expanded",
                       f"at most {MAX_FIELD_NODES} values")
            return BAD
        try:
            return _construct(node, deep=True)
        except (yaml.YAMLError, TypeError) as error:
            self.p.add(node, f"{what} cannot be read: {getattr(error, 'problem', None) or error}")
            return BAD

    # -- paths --

    def project_file(self, node: Node, what: str) -> Any:
        """A project-local file: relative, no '..', inside the project after symlinks, existing."""
        raw = self.text(node, what, max_chars=1000)
        if raw is BAD:
            return BAD
        expected = "a path relative to the project folder, e.g. voices/bob.wav"
        if Path(raw).is_absolute() or PureWindowsPath(raw).is_absolute() or PureWindowsPath(raw).drive \
                or raw.startswith("~"):
            self.p.add(node, f"{what} '{raw}' is an absolute path", expected)
            return BAD
        if ".." in Path(raw).parts or ".." in PureWindowsPath(raw).parts:
            self.p.add(node, f"{what} '{raw}' leaves the project folder ('..')", expected)
            return BAD
        full = self.root / raw
        resolved = full.resolve()
        if not resolved.is_relative_to(self.real_root):
            self.p.add(node, f"{what} '{raw}' resolves to {resolved}, outside the project folder "
                             "(through a symbolic link)", expected)
            return BAD
        if not resolved.exists():
            self.p.add(node, f"{what} '{raw}' does not exist in {self.root}", expected)
            return BAD
        if not resolved.is_file():
            self.p.add(node, f"{what} '{raw}' is not a file", expected)
            return BAD
        return resolved

    # -- speakers --

    def speakers(self, node: Node | None) -> dict[str, Speaker]:
        if node is None:
            return {}
        pairs = self.pairs(node, "speakers", "speaker names mapped to their voice, e.g. alice: {voice: alice}")
        speakers: dict[str, Speaker] = {}
        for name, key, value in pairs or []:
            if not _SPEAKER_NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
                self.p.add(key, f"speaker name '{name}' is not a valid name",
                           f"letters, digits, '_', '.', '-', at most {MAX_NAME_CHARS} characters")
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
        sources = "exactly one of: voice: (a library voice), audio: with transcript: or transcript_file:, " \
                  "or description: alone"
        pairs = self.pairs(node, what, sources)
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

        if "voice" in given and "audio" in given:
            self.p.add(given["audio"], f"{what} has two voice sources (voice: and audio:)", sources)
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
            self.p.add(node, f"{what} has no voice source", sources)
        if len(self.p) > before:
            return None
        return Speaker(name=name, location=self.p.location(key), **values)

    def transcript_from(self, path: Path, node: Node, what: str) -> Any:
        try:
            size = path.stat().st_size
            if size > 4 * MAX_NOTE_CHARS + 1024:  # checked before reading: it could be any file
                self.p.add(node, f"{what}: transcript_file is {size} bytes long",
                           f"a text file of at most {MAX_NOTE_CHARS} characters")
                return BAD
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            self.p.add(node, f"{what}: cannot read transcript_file: {error}", "a UTF-8 text file")
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
            self.p.add(node, f"{what} must be a speaker name, not {_kind(node)}", _one_of(declared))
            return BAD
        name = node.value.strip()
        if name not in declared:
            self.p.add(node, f"unknown speaker '{name}'{_did_you_mean(name, declared)}",
                       f"a speaker declared under speakers: ({_one_of(declared)})")
            return BAD
        if name not in speakers:  # declared but invalid: reported there
            self.broken_refs += 1
            return BAD
        return name

    # -- script --

    def script(self, node: Node, speakers: dict[str, Speaker], declared: set[str]) -> list[tuple[Section, bool]]:
        if not self.ok(node):
            return []
        if not isinstance(node, SequenceNode):
            self.p.add(node, f"script must be a list of sections, not {_kind(node)}",
                       "a list of sections, each starting with '- task: ...'")
            return []
        if not node.value:
            self.p.add(node, "script is empty", "at least one section")
            return []
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
        return sections

    def section(self, node: Node, index: int, speakers, declared) -> tuple[Section, Node | None] | None:
        what = f"section {index}"
        pairs = self.pairs(node, what, "a mapping with task: and text: or lines:")
        if pairs is None:
            return None
        given = {name: (key, value) for name, key, value in pairs}
        task = None
        task_name = None
        if "task" not in given:
            self.p.add(node, f"{what} has no task", f"task: {_one_of(self.tasks)}")
        else:
            task_name = self.text(given["task"][1], f"{what}: task", max_chars=MAX_NAME_CHARS)
            if task_name is not BAD:
                task = self.tasks.get(task_name)
                if task is None:
                    self.p.add(given["task"][1], f"unknown task '{task_name}'{_did_you_mean(task_name, self.tasks)}",
                               f"{_one_of(self.tasks)}; see `higgs plugins list`")
        task_fields = dict(getattr(task, "fields", {}) or {}) if task is not None else {}
        if task is not None:
            owners = {f: name for name, other in sorted(self.tasks.items()) for f in getattr(other, "fields", {})}
            self.unknown_keys(pairs, [*SECTION_KEYS, *(f for f in task_fields if f not in SECTION_KEYS)],
                              f"{what} (task '{task_name}')", owners)

        section_id = f"s{index}"
        id_node = None
        if "id" in given:
            id_node = given["id"][1]
            value = self.name(id_node, f"{what}: id", _SECTION_ID,
                              f"letters, digits, '_', '.', '-', starting with a letter or digit, "
                              f"at most {MAX_NAME_CHARS} characters")
            if value is not BAD:
                section_id = value
            what = f"section '{section_id}'" if value is not BAD else what

        scene = self.text(given["scene"][1], f"{what}: scene", nullable=True) if "scene" in given else None
        speaker = None
        if "speaker" in given:
            speaker = self.speaker_ref(given["speaker"][1], f"{what}: speaker", speakers, declared)
        overrides = self.overrides(given, what)

        lines: list[Line] = []
        if "text" in given and "lines" in given:
            self.p.add(given["lines"][0], f"{what} has both text: and lines:", "one of them")
        elif "text" in given:
            key, value = given["text"]
            text = self.line_text(value, f"{what}: text")
            if text is not BAD:
                lines.append(Line(speaker=None if speaker is BAD else speaker, text=text,
                                  location=self.p.location(value), **_known(overrides)))
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
        )
        return section, id_node

    def overrides(self, given: dict[str, tuple[Node, Node]], what: str) -> dict[str, Any]:
        values = {}
        for name in LINE_OVERRIDES:
            if name in given:
                values[name] = self.number(given[name][1], f"{what}: {name}", SAMPLING_RULES[name])
        return values

    def line_text(self, node: Node, what: str) -> Any:
        value = self.text(node, what, max_chars=MAX_TEXT_CHARS)
        if value is not BAD and not normalize_text(value):
            self.p.add(node, f"{what} has nothing to speak once invisible characters are removed",
                       "words to speak")
            return BAD
        return value

    def lines(self, node: Node, what: str, speaker, overrides, speakers, declared) -> list[Line]:
        if not self.ok(node):
            return []
        if not isinstance(node, SequenceNode):
            self.p.add(node, f"{what}: lines must be a list, not {_kind(node)}",
                       "a list of lines, e.g. '- alice: Hello!'")
            return []
        if not node.value:
            self.p.add(node, f"{what}: lines is empty", "at least one line")
            return []
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
                                                 **_known(overrides))
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
        values = dict(overrides)
        for name in LINE_OVERRIDES:
            if name in given:
                values[name] = self.number(given[name][1], f"{what}: {name}", SAMPLING_RULES[name])
        scene = self.text(given["scene"][1], f"{what}: scene", nullable=True) if "scene" in given else None
        text = self.line_text(text_node, f"{what}: text") if text_node is not None else BAD
        if len(self.p) > before or BAD in (text, speaker, scene):
            return None
        return Line(speaker=speaker, text=text, scene=scene, location=self.p.location(node), **_known(values))

    # -- the whole file --

    def project(self, node: Node, file: Path) -> tuple[Project, list[tuple[Section, bool]]]:
        pairs = self.pairs(node, "the project file", "a mapping with title:, speakers: and script:") or []
        self.unknown_keys(pairs, TOP_KEYS, "the project file")
        given = {name: value for name, _, value in pairs}
        if "version" in given:
            version = given["version"]
            if not (isinstance(version, ScalarNode) and version.tag == _INT and _construct(version) == FORMAT_VERSION):
                self.p.add(version, f"unsupported format version {version.value!r}", str(FORMAT_VERSION))
        title = self.text(given["title"], "title", max_chars=MAX_TITLE_CHARS) if "title" in given else None
        model = self.text(given["model"], "model", max_chars=1000, nullable=True) if "model" in given else None
        scene = self.text(given["scene"], "scene", nullable=True) if "scene" in given else None
        defaults = self.settings(given["defaults"], "defaults", SAMPLING_RULES, SamplingDefaults) \
            if "defaults" in given and not _is_null(given["defaults"]) else SamplingDefaults()
        output = self.settings(given["output"], "output", OUTPUT_RULES, OutputSettings) \
            if "output" in given and not _is_null(given["output"]) else OutputSettings()
        speakers_node = given.get("speakers")
        speakers = self.speakers(None if speakers_node is None or _is_null(speakers_node) else speakers_node)
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
        )
        return project, sections

    def declared(self, node: Node | None) -> set[str]:
        """Every speaker name written under `speakers:`, valid or not (for line checks)."""
        if node is None or not isinstance(node, MappingNode):
            return set()
        return {key.value for key, _ in node.value if isinstance(key, ScalarNode) and key.tag != _MERGE}


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """How many nodes `node` stands for with every alias expanded (guards against alias bombs)."""
    if id(node) not in memo:
        memo[id(node)] = 1  # a recursive alias counts once
        if isinstance(node, SequenceNode):
            memo[id(node)] += sum(_expanded_size(child, memo) for child in node.value)
        elif isinstance(node, MappingNode):
            memo[id(node)] += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    return memo[id(node)]


def _known(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not BAD}


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _plural(n: int) -> str:
    return f"{n} problem" if n == 1 else f"{n} problems"


def _raise(problems: _Problems, file: Path) -> None:
    raise ValidationError(f"{file.name} has {_plural(len(problems))}", problems.messages(),
                          hint="fix them and check again with `higgs project validate`")


def load_project(path: Path | str) -> Project:
    """Read and validate a project: a folder holding `project.yaml`, or the YAML file itself.

    Raises UsageError when there is no such file, and ValidationError listing
    every problem (`file:line:column: message (expected ...)`) when the file is
    malformed or invalid, including each task plugin's own checks.
    """
    file = find_project_file(path)
    root = file.parent
    display = str(file)
    problems = _Problems(display)
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # never more: the file could be any size
        if len(data) > MAX_FILE_BYTES:
            raise UsageError(f"{file} is {file.stat().st_size} bytes; a project file is at most {MAX_FILE_BYTES} bytes")
    except OSError as error:
        raise UsageError(f"cannot read {file}: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        head = data[: error.start]
        problems.add_at(head.count(b"\n") + 1, len(head) - (head.rfind(b"\n") + 1) + 1,
                        "the file is not valid UTF-8 text", "a UTF-8 encoded YAML file")
        _raise(problems, file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML composes nested collections recursively
        problems.add_at(1, 1, "malformed YAML: lists and mappings are nested too deeply to read",
                        f"at most {MAX_DEPTH} levels")
        _raise(problems, file)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(part for part in (error.context, error.problem) if part) or "malformed YAML"
        problems.add_at(mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                        f"malformed YAML: {message}", "valid YAML")
        _raise(problems, file)
    except yaml.YAMLError as error:  # e.g. a control character the YAML reader refuses
        position = getattr(error, "position", 0) or 0
        head = text[:position]
        problems.add_at(head.count("\n") + 1, position - (head.rfind("\n") + 1) + 1,
                        f"malformed YAML: {error}", "valid YAML")
        _raise(problems, file)
    if node is None:
        problems.add_at(1, 1, "the project file is empty", "a mapping with title:, speakers: and script:")
        _raise(problems, file)

    tasks = get_tasks()
    reader = _Reader(problems, root, tasks)
    reader.check_tags(node)
    project, sections = reader.project(node, file)
    # Each task checks its own sections, once they are well-formed on their own.
    for section, clean in sections:
        task = tasks.get(section.task)
        if clean and task is not None:
            for problem in task.validate(section, project) or []:
                problems.add_formatted(str(problem))
    if not problems:  # a runaway script (a whole book pasted in) is refused before any render starts
        seconds = sum(speech_seconds(line.text, project.defaults.max_seconds)
                      + (project.defaults.pause if line.pause is None else line.pause)
                      for section in project.sections for line in section.lines)
        if problem := length_problem(seconds, project.output.max_hours):
            problems.add_at(reader.script_at[0], reader.script_at[1], problem,
                            "a shorter project (split it into several), or a higher output.max_hours (at most 24)")
    if problems:
        _raise(problems, file)
    return project


# --- new projects ---------------------------------------------------------------------

def template_text(template: str) -> str:
    """The text of a built-in project template (`podcast` or `audiobook`)."""
    if template not in TEMPLATES:
        raise UsageError(f"unknown template '{template}'{_did_you_mean(template, TEMPLATES)}",
                         hint=f"choose {_one_of(TEMPLATES)}")
    return (resources.files("higgs_cli.project") / "templates" / f"{template}.yaml").read_text("utf-8")


def new_project(dest: Path | str, *, title: str, template: str = "podcast") -> Path:
    """Create a project folder at `dest` from a template; returns the folder.

    The folder may exist if it is empty; a non-empty folder or a file is never
    overwritten (UsageError). The project gets `project.yaml` (the template
    with `title` filled in) and an empty `voices/` folder for recordings.
    """
    dest = Path(dest)
    text = template_text(template)
    title = title.strip()
    if not title or len(title) > MAX_TITLE_CHARS or not title.isprintable():
        raise UsageError(f"the title must be one line of 1 to {MAX_TITLE_CHARS} printable characters")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a folder", hint="choose another path")
    if dest.is_dir() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; refusing to overwrite it",
                         hint="choose a new folder name, or empty the folder first")
    # JSON strings are valid YAML double-quoted scalars: any title survives quoting.
    text = re.sub(r"(?m)^title:.*$", lambda _: f"title: {json.dumps(title, ensure_ascii=False)}", text, count=1)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "voices").mkdir(exist_ok=True)
    atomic_write_text(dest / PROJECT_FILE, text)
    return dest
