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
from collections.abc import Iterable, Iterator, Mapping
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
        node = compose(read_capped(path, what="lexicon file"), inner)
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
    """A compiled lexicon: one pass over a text, leftmost match first and, of the entries matching
    there, the longest, so a respelling is never respelled again and "New York City" wins over
    "New York".

    Matching walks a trie of the entries' characters (the spaces between an entry's words stand for
    any run of whitespace), not one regular expression per entry: the cost is linear in the text,
    at most MAX_ENTRY_CHARS steps per character, whatever the number of entries (5000 multi-word
    entries once took minutes on one long line, issue 31). Entries other than CJK match whole words
    only: the characters on either side of a match may not be word characters (\\w).
    """

    def __init__(self, entries: Mapping[str, LexiconEntry]) -> None:
        self.entries = dict(entries)
        self._rank = {word: n for n, word in enumerate(sorted(self.entries, key=lambda w: -len(w)))}
        self._whole_word = {word: not _CJK.search(word) for word in self.entries}
        self._exact: dict = {}  # entries with case: true, by their characters as written
        self._folded: dict = {}  # the others, lower-cased
        for word, entry in self.entries.items():
            node = self._exact if entry.case else self._folded
            for char in _steps(_TOKEN.findall(" ".join(word.split()))):
                node = node.setdefault(char if entry.case else char.lower(), {})
            node.setdefault(_ENDS, []).append(word)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def apply(self, text: str) -> str:
        """`text` with every entry respelled, outside markup: speaker tags (`[SPEAKER0]`), sound
        events (`<SE>[Laughter]</SE>`) and other bracketed or angled tags are left as they are."""
        if not self.entries:
            return text
        parts = _MARKUP.split(text)  # odd items are markup
        return "".join(part if n % 2 else self._replace(part) for n, part in enumerate(parts))

    def matches(self, word: str, text: str) -> bool:
        return word in self._found(text)

    def unused(self, texts: Iterable[str]) -> list[str]:
        """The entries that match none of `texts`."""
        found: set[str] = set()
        for text in texts:
            found |= self._found(text)
        return [word for word in self.entries if word not in found]

    def _replace(self, text: str) -> str:
        raw = _TOKEN.findall(text)
        chars = _steps(raw)
        lowered = [char.lower() for char in chars]
        out, i = [], 0
        while i < len(chars):
            best = min(self._at(chars, lowered, i), key=lambda match: self._rank[match[0]], default=None)
            if best is None:
                out.append(raw[i])  # the text as it was, whitespace and all
                i += 1
            else:
                out.append(self.entries[best[0]].say)
                i = best[1]
        return "".join(out)

    def _found(self, text: str) -> set[str]:
        chars = _steps(_TOKEN.findall(text))
        lowered = [char.lower() for char in chars]
        return {word for i in range(len(chars)) for word, _ in self._at(chars, lowered, i)}

    def _at(self, chars: list[str], lowered: list[str], start: int) -> Iterator[tuple[str, int]]:
        """Each (entry, end) matching from `start` to `end` (indexes into `chars`)."""
        word_before = start > 0 and _is_word(chars[start - 1])
        for node, seq in ((self._exact, chars), (self._folded, lowered)):
            for end in range(start, len(seq)):
                node = node.get(seq[end])
                if node is None:
                    break
                for word in node.get(_ENDS, ()):
                    if not self._whole_word[word] or not (
                            word_before or (end + 1 < len(chars) and _is_word(chars[end + 1]))):
                        yield word, end + 1


_ENDS = None  # in a trie node (a dict of character -> node), the entries that end there
_TOKEN = re.compile(r"\s+|.", re.S)  # a run of whitespace is one step, like "\\s+" between an entry's words
_WORD = re.compile(r"\w")


def _steps(tokens: list[str]) -> list[str]:
    """A text's tokens as the trie's steps: each run of whitespace as one " ", other characters as they are."""
    return [" " if token[0].isspace() else token for token in tokens]


def _is_word(char: str) -> bool:
    return _WORD.match(char) is not None


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

