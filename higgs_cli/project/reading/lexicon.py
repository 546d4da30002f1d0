"""The pronunciation lexicon: `lexicon:` and `lexicon_file:` in project.yaml.

Each entry maps a word or phrase to a respelling the model reads instead:

    lexicon:
      Nguyen: Win                     # whole words, any case
      SQL: {say: sequel, case: true}  # only as written ("sql" stays)
      重庆: 崇庆                        # Chinese (and other CJK text) by substring

It is applied to the text the model reads (each planned request, after the
task has planned it), never to what is shown: subtitles, stems' names and the
manifest's `text` keep the script's words. A line's cache key covers the text
the model reads, so changing an entry re-renders exactly the lines that hold it.
`lexicon_file:` names a YAML file inside the project holding the same mapping;
entries in `lexicon:` win over the file's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from yaml.nodes import MappingNode, Node, ScalarNode

from higgs_cli.plugins.script import LexiconEntry
from higgs_cli.project.reading.problems import BAD, Problems

if TYPE_CHECKING:
    from higgs_cli.plugins.task import PlannedLine
    from higgs_cli.project.reading.values import ValueReader

MAX_ENTRIES = 5000
MAX_ENTRY_CHARS = 200
ENTRY_FORMS = "a respelling (text), or {say: RESPELLING, case: true} to match the case as written"
_MARKUP = re.compile(r"(<[^<>]*>|\[[^\[\]]*\])")
_CJK = re.compile("[\u2e80-\u2fff\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def read_lexicon(reader: ValueReader, node: Node | None, file_node: Node | None) -> dict[str, LexiconEntry]:
    """The lexicon of a project file: `lexicon_file:`'s entries, then `lexicon:`'s over them."""
    entries: dict[str, LexiconEntry] = {}
    if file_node is not None:
        entries.update(_from_file(reader, file_node))
    if node is not None:
        entries.update(read_entries(reader, node, "lexicon"))
    return entries


def _from_file(reader: ValueReader, file_node: Node) -> dict[str, LexiconEntry]:
    from higgs_cli.errors import ValidationError
    from higgs_cli.project.reading.values import ValueReader
    from higgs_cli.project.reading.yaml_safety import compose, read_capped, scan

    path = reader.project_file(file_node, "lexicon_file")
    if path is BAD:
        return {}
    inner = Problems(path)
    try:
        node = compose(read_capped(path), inner)
        sub = ValueReader(inner, reader.root, scan(node, inner), budget=MAX_ENTRIES * 4)
        entries = read_entries(sub, node, f"lexicon_file {path.name}")
    except ValidationError:
        entries = {}
    for message in inner.messages():  # positions in the lexicon file itself
        reader.p.add_problem(message)
    return entries


def read_entries(reader: ValueReader, node: Node, what: str) -> dict[str, LexiconEntry]:
    """A mapping of entries, each problem reported at its node."""
    pairs = reader.pairs(node, what, "a mapping of word or phrase -> respelling, e.g. Nguyen: Win")
    if pairs is None:
        return {}
    if len(pairs) > MAX_ENTRIES:
        reader.p.add(node, f"{what} has {len(pairs)} entries", f"at most {MAX_ENTRIES}")
        return {}
    entries: dict[str, LexiconEntry] = {}
    for word, key, value in pairs:
        word = word.strip()
        if not word:
            reader.p.add(key, f"{what}: an entry has an empty word", "a word or phrase to respell")
            continue
        if len(word) > MAX_ENTRY_CHARS:
            reader.p.add(key, f"{what}: the entry '{word[:40]}...' is {len(word)} characters long",
                         f"at most {MAX_ENTRY_CHARS}")
            continue
        entry = _entry(reader, value, f"{what}: '{word}'")
        if entry is not BAD:
            entries[word] = replace(entry, location=reader.p.location(key))
    return entries


def _entry(reader: ValueReader, node: Node, what: str) -> Any:
    if isinstance(node, ScalarNode):
        say = reader.text(node, what, max_chars=MAX_ENTRY_CHARS)
        return BAD if say is BAD else LexiconEntry(say=say)
    if not isinstance(node, MappingNode):
        reader.p.add(node, f"{what} must be text or a mapping", ENTRY_FORMS)
        return BAD
    pairs = reader.pairs(node, what, ENTRY_FORMS) or []
    reader.unknown_keys(pairs, ("say", "case"), what)
    given = {name: value for name, _, value in pairs}
    if "say" not in given:
        reader.p.add(node, f"{what} has no say:", ENTRY_FORMS)
        return BAD
    say = reader.text(given["say"], f"{what}: say", max_chars=MAX_ENTRY_CHARS)
    case = reader.boolean(given["case"], f"{what}: case") if "case" in given else False
    return BAD if BAD in (say, case) else LexiconEntry(say=say, case=case)


# -- applying it -----------------------------------------------------------------------


class Lexicon:
    """A compiled lexicon: one pass over a text, longest entries first, so a respelling is never
    respelled again and "New York City" wins over "New York"."""

    def __init__(self, entries: Mapping[str, LexiconEntry]) -> None:
        self.entries = dict(entries)
        self._patterns = [(word, entry, _pattern(word, entry.case))
                          for word, entry in sorted(self.entries.items(), key=lambda kv: -len(kv[0]))]
        if self._patterns:
            alternatives = "|".join(f"(?P<e{n}>{p.pattern})" if not p.flags & re.IGNORECASE
                                    else f"(?P<e{n}>(?i:{p.pattern}))"
                                    for n, (_, _, p) in enumerate(self._patterns))
            self._all = re.compile(alternatives)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def apply(self, text: str) -> str:
        """`text` with every entry respelled, outside markup: speaker tags (`[SPEAKER0]`), sound
        events (`<SE>[Laughter]</SE>`) and other bracketed or angled tags are left as they are."""
        if not self._patterns:
            return text
        parts = _MARKUP.split(text)  # odd items are markup
        return "".join(part if n % 2 else self._all.sub(lambda m: self._patterns[int(m.lastgroup[1:])][1].say, part)
                       for n, part in enumerate(parts))

    def matches(self, word: str, text: str) -> bool:
        entry = self.entries[word]
        return _pattern(word, entry.case).search(text) is not None

    def unused(self, texts: Iterable[str]) -> list[str]:
        """The entries that match none of `texts`."""
        texts = list(texts)
        return [word for word in self.entries if not any(self.matches(word, t) for t in texts)]


def _pattern(word: str, case: bool) -> re.Pattern:
    """Whole words (not inside another word); a CJK entry by substring (CJK has no spaces)."""
    body = r"\s+".join(re.escape(part) for part in word.split())
    if not _CJK.search(word):
        body = rf"(?<!\w){body}(?!\w)"
    return re.compile(body, 0 if case else re.IGNORECASE)


def apply_lexicon(planned: list[PlannedLine], entries: Mapping[str, LexiconEntry]) -> list[PlannedLine]:
    """The planned lines with the lexicon applied to each request's text (what the model reads)."""
    lexicon = Lexicon(entries)
    if not lexicon:
        return planned
    for line in planned:
        text = lexicon.apply(line.request.text)
        if text != line.request.text:
            line.request = replace(line.request, text=text)
    return planned


def unused_entry_warnings(project) -> list[str]:
    """What `project validate` warns about: lexicon entries that match no line of the script."""
    lexicon = Lexicon(project.lexicon)
    texts = [line.text for section in project.sections for line in section.lines]
    warnings = []
    for word in lexicon.unused(texts):
        where = f"{project.lexicon[word].location}: " if project.lexicon[word].location else ""
        warnings.append(f"{where}lexicon entry '{word}' matches no line of the script")
    return warnings

