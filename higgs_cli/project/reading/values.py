"""Reading single values out of the node tree: mappings, text, names, numbers, settings, paths.

Each reader checks one node against its rule and returns the value, or
reports a problem at the node and returns BAD. `reader.py` builds the
project's model from these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path, PureWindowsPath
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from higgs_cli.engine.request import Range
from higgs_cli.project.reading.problems import BAD, Problems, did_you_mean, one_of
from higgs_cli.project.reading.schema import CONTROL, MAX_NAME_CHARS, MAX_NOTE_CHARS, Bool, Rule, Text
from higgs_cli.project.reading.yaml_safety import (
    BOOL,
    FLOAT,
    INT,
    MAX_ALIAS_NODES,
    MAX_FIELD_NODES,
    MERGE,
    NULL,
    children,
    construct,
    expanded_size,
    kind,
)

_QUOTE_BRACKETS = 'text; put text that starts with "[" in quotes, e.g. "[laugh] hello" ([...] alone is a YAML list)'


class ValueReader:
    """Reads values under a project folder, reporting to `problems`; nodes in `unsafe` are never read.

    `budget` is how many list items and mapping entries may be read in all:
    reading follows aliases, so a small file of aliases (an alias bomb, merges of
    merges) could otherwise make it read billions of values.
    """

    def __init__(self, problems: Problems, root: Path, unsafe: set[int], *, budget: int) -> None:
        self.p = problems
        self.root = root
        self.real_root = root.resolve()
        self.unsafe = unsafe
        self.budget = budget
        self.broken_refs = 0  # values left out for a problem reported elsewhere (a declared but invalid
        # speaker, an unsupported tag): a section holding one is not clean

    def ok(self, node: Node) -> bool:
        return id(node) not in self.unsafe

    def spend(self, entries: int) -> None:
        """Count `entries` read; past the budget, stop reading with every problem so far."""
        self.budget -= entries
        if self.budget < 0:
            self.p.add_at(1, 1, f"aliases (*name) and merges (<<) expand this file into more than {MAX_ALIAS_NODES} "
                                "values beyond those written", "fewer aliases: write repeated parts out")
            self.p.raise_now()

    def all_ok(self, node: Node) -> bool:
        """No node under `node` is unsafe (iterative: the tree may be wide or shared)."""
        seen: set[int] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            if not self.ok(current):
                return False
            stack.extend(children(current))
        return True

    def pairs(self, node: Node, what: str, expected: str) -> list[tuple[str, Node, Node]] | None:
        """A mapping's (key, key node, value node) triples; merges (`<<: *anchor`) expanded,
        duplicate and non-text keys reported. Merges nest at most MAX_DEPTH deep and never
        include themselves (`scan` marks such nodes unsafe), so this recursion is bounded."""
        if not self.ok(node):
            return None
        if not isinstance(node, MappingNode):
            self.p.add(node, f"{what} must be a mapping, not {kind(node)}", expected)
            return None
        self.spend(len(node.value))
        explicit: list[tuple[str, Node, Node]] = []
        merged: list[tuple[str, Node, Node]] = []
        for key, value in node.value:
            if key.tag == MERGE:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    inner = self.pairs(source, f"a merge (<<) in {what}", "an anchored mapping, e.g. <<: *defaults")
                    merged.extend(inner or [])
                continue
            if not isinstance(key, ScalarNode) or not self.ok(key):
                if self.ok(key):
                    self.p.add(key, f"a key in {what} must be plain text, not {kind(key)}")
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
                hint = did_you_mean(name, allowed)
                if not hint and owners and name in owners:
                    hint = f"; it is a key of task '{owners[name]}'"
                self.p.add(key, f"unknown key '{name}' in {what}{hint}", one_of(allowed))

    def text(self, node: Node, what: str, *, max_chars: int = MAX_NOTE_CHARS, nullable: bool = False) -> Any:
        """Any scalar, as written (so `text: yes` is "yes", not true); stripped and non-empty."""
        if not self.ok(node):
            return BAD
        if not isinstance(node, ScalarNode):
            flow_list = isinstance(node, SequenceNode) and node.flow_style
            self.p.add(node, f"{what} must be text, not {kind(node)}", _QUOTE_BRACKETS if flow_list else "text")
            return BAD
        if node.tag == NULL and node.style is None:
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
        if control := CONTROL.search(value):
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

    def number(self, node: Node, what: str, rule: Range) -> Any:
        if not self.ok(node):
            return BAD
        if isinstance(node, ScalarNode) and node.tag == NULL and rule.nullable:
            return None
        value: Any = BAD
        if isinstance(node, ScalarNode) and node.tag in (INT, FLOAT):
            value = construct(node)
            if isinstance(value, float) and math.isnan(value):
                value = BAD
            elif rule.integer and not isinstance(value, int):
                value = BAD
        if value is BAD:
            self.p.add(node, f"{what} must be {'a whole number' if rule.integer else 'a number'}, not {kind(node)}",
                       rule.describe())
            return BAD
        if not rule.allows(value):
            self.p.add(node, f"{what} {node.value} is out of range", rule.describe())
            return BAD
        return value if rule.integer else float(value)

    def boolean(self, node: Node, what: str) -> Any:
        if not self.ok(node):
            return BAD
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return construct(node)
        self.p.add(node, f"{what} must be true or false, not {kind(node)}", "true or false")
        return BAD

    def value(self, node: Node, what: str, rule: Rule) -> Any:
        if isinstance(rule, Range):
            return self.number(node, what, rule)
        if isinstance(rule, Bool):
            return self.boolean(node, what)
        if isinstance(rule, Text):
            return self.text(node, what, max_chars=rule.max_chars, nullable=True)
        value = self.text(node, what)
        if value is not BAD and value not in rule.options:
            self.p.add(node, f"{what} '{value}' is not supported{did_you_mean(value, rule.options)}",
                       rule.describe())
            return BAD
        return value

    def settings(self, node: Node, what: str, rules: dict[str, Rule], factory: Callable) -> Any:
        """A mapping of settings into `factory(**values)`; keys left out (or invalid) keep its defaults."""
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
            self.broken_refs += 1  # an unsupported tag, a loop or too deep inside: reported already; not clean
            return BAD
        if expanded_size(node)[0] > MAX_FIELD_NODES:
            self.p.add(node, f"{what} is too large once its aliases are expanded",
                       f"at most {MAX_FIELD_NODES} values")
            return BAD
        try:
            return construct(node, deep=True)
        except (yaml.YAMLError, TypeError) as error:
            self.p.add(node, f"{what} cannot be read: {getattr(error, 'problem', None) or error}")
            return BAD

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


def known(values: dict[str, Any]) -> dict[str, Any]:
    """The values that were read without a problem."""
    return {k: v for k, v in values.items() if v is not BAD}
