"""Reading a project file's YAML without trusting it.

The file is read with a size cap and composed with PyYAML's safe loader into
nodes (never constructed with a full loader), so every value keeps its
position and no tag can run code. Before anything reads the tree, `scan`
marks what must never be read: tags outside plain YAML, nesting deeper than
MAX_DEPTH (counting what aliases and merges bring in), and values that contain
themselves through an alias. `expanded_size` measures how far aliases expand
a value (an alias bomb expands a few lines into billions of values). Every
walk here is iterative: nothing recurses on the file's structure.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from higgs_cli import fsutil
from higgs_cli.project.reading.problems import Problems
from higgs_cli.untrusted import MAX_INT_DIGITS, text_problem

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 32  # lists and mappings inside each other
MAX_FIELD_NODES = 10_000  # values in one task field, aliases expanded
MAX_ALIAS_NODES = 100_000  # values aliases may add to the whole file, beyond those written

YAML_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (f"{YAML_TAG}{t}" for t in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = f"{YAML_TAG}map", f"{YAML_TAG}seq", f"{YAML_TAG}merge"
SAFE_TAGS = {STR, INT, FLOAT, BOOL, NULL, MAP, SEQ, MERGE, f"{YAML_TAG}timestamp"}

# A value that starts with "[" is a YAML list: `- host: [laugh] hello` is a list followed by text.
_BRACKET_VALUE = re.compile(r"(?:^|[:-])\s+\[[^\]\n]*\]\s*[^\s#,\]}]")


def read_capped(file: Path, *, what: str = "project file") -> bytes:
    """The file's bytes, refusing one over MAX_FILE_BYTES without reading it all, and anything but a
    regular file (a FIFO planted as project.yaml would block every command) without reading it."""
    return fsutil.read_capped(file, MAX_FILE_BYTES, what=what)


def compose(data: bytes, problems: Problems) -> Node:
    """The document's node tree; a file that is not UTF-8, not YAML or empty is raised as a problem."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        head = data[: error.start]
        problems.add_at(head.count(b"\n") + 1, len(head) - (head.rfind(b"\n") + 1) + 1,
                        "the file is not valid UTF-8 text", "a UTF-8 encoded YAML file")
        problems.raise_now()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML composes nested collections recursively
        problems.add_at(1, 1, "malformed YAML: lists and mappings are nested too deeply to read",
                        f"at most {MAX_DEPTH} levels")
        problems.raise_now()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(part for part in (error.context, error.problem) if part) or "malformed YAML"
        expected = "valid YAML"
        if mark is not None and _BRACKET_VALUE.search(text.split("\n")[mark.line] if text else ""):
            expected = 'text that starts with "[" in quotes, e.g. - host: "[laugh] hello" ([...] is a YAML list)'
        problems.add_at(mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                        f"malformed YAML: {message}", expected)
        problems.raise_now()
    except yaml.YAMLError as error:  # e.g. a control character the YAML reader refuses
        position = getattr(error, "position", 0) or 0
        head = text[:position]
        problems.add_at(head.count("\n") + 1, position - (head.rfind("\n") + 1) + 1,
                        f"malformed YAML: {error}", "valid YAML")
        problems.raise_now()
    if node is None:
        problems.add_at(1, 1, "the project file is empty", "a mapping with title:, speakers: and script:")
        problems.raise_now()
    return node


def children(node: Node) -> list[Node]:
    """A collection's items (a mapping's keys and values); none for a scalar."""
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def scan(root: Node, problems: Problems) -> set[int]:
    """The ids of nodes never to read, each reported once: an unsupported tag (e.g.
    !!python/object, never constructed), a list or mapping nested more than MAX_DEPTH
    deep once aliases and merges are followed, a value that contains itself."""
    unsafe: set[int] = set()
    deepest: dict[int, int] = {}  # the greatest depth each node was reached at
    path: set[int] = set()  # the collections between the root and the node at hand
    through_aliases = False  # whether nesting made deep by aliases was reported
    stack: list[Any] = [(root, 0)]
    while stack:
        item = stack.pop()
        if isinstance(item, int):  # done with the collection of this id
            path.discard(item)
            continue
        node, depth = item
        key = id(node)
        if key in path:
            if key not in unsafe:
                unsafe.add(key)
                problems.add(node, f"{kind(node)} contains itself through an alias (a *name inside the &name "
                                   "it refers to, or a merge (<<) of itself)", "aliases to values defined outside them")
            continue
        if key in unsafe or deepest.get(key, -1) >= depth:
            continue  # reached before at this depth or deeper: nothing new below
        first_visit = key not in deepest
        deepest[key] = depth
        if first_visit and isinstance(node, ScalarNode) and (problem := _scalar_problem(node)):
            unsafe.add(key)
            problems.add(node, problem[0], problem[1])
            continue
        if first_visit and node.tag not in SAFE_TAGS:
            unsafe.add(key)
            tag = node.tag.replace(YAML_TAG, "!!", 1) if node.tag.startswith(YAML_TAG) else node.tag
            problems.add(node, f"unsupported YAML tag '{tag}'",
                         "plain values: text, numbers, true/false, lists and mappings")
        if isinstance(node, (SequenceNode, MappingNode)):
            if depth > MAX_DEPTH:
                unsafe.add(key)
                if first_visit:
                    problems.add(node, f"lists and mappings are nested more than {MAX_DEPTH} levels deep here",
                                 "a flatter structure")
                elif not through_aliases:  # one report: a chain of merges would flag every link
                    through_aliases = True
                    problems.add(node, f"lists and mappings are nested more than {MAX_DEPTH} levels deep here, "
                                       "counting what aliases (*name) and merges (<<) bring in", "a flatter structure")
                continue
            path.add(key)
            stack.append(key)
            stack.extend((child, depth + 1) for child in reversed(children(node)))
    return unsafe


def _scalar_problem(node: ScalarNode) -> tuple[str, str] | None:
    """(problem, what is expected) for a scalar that is not text or not a number of ours, else None.

    Checked here, once for the whole file, so no reader meets a lone surrogate (the escape
    "\\ud800"), an integer int() refuses to build (5,000 digits) or an infinite float.
    """
    if problem := text_problem(node.value):
        return f"the value {problem}", "UTF-8 text"
    if node.tag == INT and len(node.value.replace("_", "").lstrip("+-")) > MAX_INT_DIGITS:
        return f"a number of {len(node.value)} digits is out of range", "a number of at most 20 digits"
    if node.tag == FLOAT and not math.isfinite(construct(node)):
        return f"{node.value} is not a finite number", "a number"
    return None


def expanded_size(root: Node) -> tuple[int, int]:
    """(values with every alias expanded, distinct values) under `root`; a value inside
    itself counts once. Iterative, and linear in the distinct values."""
    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            active.discard(key)
            size[key] = 1 + sum(size.get(id(child), 1) for child in children(node))
        elif key not in size and key not in active:
            active.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children(node))
    return size[id(root)], len(size)


def construct(node: Node, *, deep: bool = False) -> Any:
    """Plain YAML types only (SafeConstructor has no Python-object constructors)."""
    return SafeConstructor().construct_object(node, deep=deep)


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL


def kind(node: Node) -> str:
    """What a node is, for messages: "a list", "the number 3", "'hello'"."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {NULL: "empty (null)", BOOL: f"{node.value!r} (true/false)", INT: f"the number {node.value}",
            FLOAT: f"the number {node.value}"}.get(node.tag, repr(short(node.value)))


def short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
