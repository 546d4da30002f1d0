"""The project's lock file, `project.lock.yaml` beside project.yaml: picks and approvals, as data
the project's git repository keeps.

    # Written by higgs (project pick / approve / unapprove). Keep it in git with project.yaml.
    version: 1
    lines:
      intro:2:              # the line's name: its id (ID:K for chunk K), else SECTION:N
        text: 5d41402abc4b  # digest of the line's text when recorded: an edited line drops its entry's effect
        seed: 1041          # a picked take: the seed that made it (a fresh clone renders the same audio)
        take: 3
        picked: 3b9f0a...   # the cache key of the picked take's audio: kept through project-wide changes
        approved: 9f86d0... # the cache key of the approved audio
        voice: 1f3870be274f # digest of the speaker's voice when approved

Written atomically, keys sorted: small diffs. A file edited by hand into
something else is refused with the position of each problem, and nothing
is changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from higgs_cli.engine.request import SAMPLING_RANGES, Range
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import atomic_write_text, file_sha256, read_capped_text
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.reading.yaml_safety import INT, kind
from higgs_cli.untrusted import text_problem

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import PlannedLine

LOCK_VERSION = 1
MAX_LOCK_BYTES = 10 * 1024 * 1024  # a few hundred bytes a line: far more than any project's
TAKE_RANGE = Range(0, 2**31 - 1, integer=True)  # a take's number within its line
HEADER = "# Written by higgs (project pick / approve / unapprove). Keep it in git with project.yaml.\n"
_HEX = re.compile(r"[0-9a-f]{8,64}")
_FIELDS = {"text": "a hex digest", "seed": "a whole number from 0", "take": "a whole number from 0",
           "approved": "a cache key (hex)", "voice": "a hex digest", "picked": "a cache key (hex)"}


@dataclass
class LockEntry:
    text: str
    seed: int | None = None
    take: int | None = None
    approved: str | None = None
    voice: str | None = None
    picked: str | None = None  # the picked take's cache key (its audio stays the line's while cached)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class LockFile:
    """The picks and approvals of one project, by line name (refs.LineRefs.name)."""

    def __init__(self, path: Path, lines: dict[str, LockEntry] | None = None) -> None:
        self.path = path
        self.lines = lines or {}

    @classmethod
    def of(cls, project: Project) -> LockFile:
        return read_lock(ProjectLayout(project.file.parent).lock_yaml)

    def save(self) -> None:
        data = {"version": LOCK_VERSION,
                "lines": {name: entry.to_dict() for name, entry in sorted(self.lines.items())
                          if entry.seed is not None or entry.approved is not None}}
        atomic_write_text(self.path, HEADER + yaml.safe_dump(data, sort_keys=True, allow_unicode=True))


def read_lock(path: Path) -> LockFile:
    """The lock file at `path` (empty when there is none); ValidationError with positions when it
    is not one."""
    if not path.exists():
        return LockFile(path)
    problems: list[str] = []

    def bad(node: Node | None, message: str, expected: str | None = None) -> None:
        mark = node.start_mark if node is not None else None
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        problems.append(f"{where}: {message}" + (f" (expected {expected})" if expected else ""))

    try:  # a regular file, capped: a FIFO or a huge file planted as the lock file is refused, not read
        node = yaml.compose(read_capped_text(path, MAX_LOCK_BYTES, what="lock file"), Loader=yaml.SafeLoader)
    except UsageError as error:
        raise _invalid(path, [f"{path}: {error.message}"]) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise _invalid(path, [f"{path}:1:1: cannot be read: nested too deeply"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise _invalid(path, [f"{where}: cannot be read: {getattr(error, 'problem', None) or error}"]) from None
    for scalar in _scalars(node):  # before any message quotes a key or a value
        if problem := text_problem(scalar.value):
            bad(scalar, f"a value {problem}", "the text higgs wrote")
            raise _invalid(path, problems)
    lines: dict[str, LockEntry] = {}
    top = _mapping(node, bad, "the lock file", "version: 1 and lines:")
    if top is not None:
        for name, (key, value) in top.items():
            if name == "version":
                if not (isinstance(value, ScalarNode) and value.value == str(LOCK_VERSION)):
                    shown = value.value if isinstance(value, ScalarNode) else kind(value)
                    bad(value, f"unsupported lock file version {shown!r}", str(LOCK_VERSION))
            elif name == "lines":
                if isinstance(value, ScalarNode) and value.value in ("", "null", "~"):
                    continue
                for line_name, (_, item) in (_mapping(value, bad, "lines", "line name -> its entry") or {}).items():
                    entry = _entry(item, bad, line_name)
                    if entry is not None:
                        lines[line_name] = entry
            else:
                bad(key, f"unknown key '{name}' in the lock file", "version: and lines:")
    if problems:
        raise _invalid(path, problems)
    return LockFile(path, lines)


def _scalars(root: Node) -> list[ScalarNode]:
    """Every scalar (keys too) under `root`, without recursion, each node once (an alias repeats one)."""
    found, stack, seen = [], [root] if root is not None else [], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            found.append(node)
        elif isinstance(node, MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        else:
            stack.extend(node.value)
    return found


def _invalid(path: Path, problems: list[str]) -> ValidationError:
    return ValidationError(f"{path.name} is not a valid lock file", problems,
                           hint=f"fix it by hand, or delete {path.name} to drop every pick and approval")


def _mapping(node, bad, what: str, expected: str) -> dict[str, tuple[Node, Node]] | None:
    if not isinstance(node, MappingNode):
        bad(node, f"{what} must be a mapping", expected)
        return None
    found: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode) or key.value in found:
            bad(key, f"a key in {what} is duplicated or not text", "each key once, as text")
            continue
        found[key.value] = (key, value)
    return found


def _entry(node: Node, bad, name: str) -> LockEntry | None:
    given = _mapping(node, bad, f"line '{name}'", "text: and seed:/take:/picked: or approved:/voice:")
    if given is None:
        return None
    values: dict = {}
    for field_name, (key, value) in given.items():
        if field_name not in _FIELDS:
            bad(key, f"unknown key '{field_name}' in line '{name}'", ", ".join(_FIELDS))
            continue
        text = value.value if isinstance(value, ScalarNode) else None
        if field_name in ("seed", "take"):
            # ASCII digits, few enough to be a number of ours: "²" is a digit to isdigit() and int() refuses it,
            # and int() of 5,000 digits raises rather than returning
            if not (isinstance(value, ScalarNode) and value.tag == INT and text.isascii() and text.isdigit()
                    and len(text) <= 20):
                bad(value, f"line '{name}': {field_name} must be a whole number", _FIELDS[field_name])
                continue
            rule = SAMPLING_RANGES["seed"] if field_name == "seed" else TAKE_RANGE
            if not rule.allows(int(text)):
                bad(value, f"line '{name}': {field_name} {text} is out of range", rule.describe())
                continue
            values[field_name] = int(text)
        elif not (isinstance(text, str) and _HEX.fullmatch(text)):
            bad(value, f"line '{name}': {field_name} must be {_FIELDS[field_name]}", _FIELDS[field_name])
        else:
            values[field_name] = text
    if "text" not in values:
        if "text" not in given:
            bad(node, f"line '{name}' has no text:", "text: the digest higgs wrote")
        return None
    return LockEntry(**values)


# -- what an entry is recorded against -------------------------------------------------


def text_digest(line: PlannedLine) -> str:
    """A line's own words as shown: a pick or approval holds while they stay the same."""
    return hashlib.sha256(line.display_text.encode("utf-8")).hexdigest()[:12]


def voice_digest(project: Project, speaker: str | None) -> str:
    """The speaker's voice as the project defines it (library voice, recording's content,
    transcript, description): an approval ends when it changes."""
    spk = project.speakers.get(speaker) if speaker else None
    recipe: dict = {"speaker": speaker}
    if spk is not None:
        recipe.update(voice=spk.voice, transcript=spk.transcript, description=spk.description)
        if spk.audio is not None:
            try:
                recipe["audio"] = file_sha256(spk.audio)
            except OSError:
                recipe["audio"] = str(spk.audio)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:12]
