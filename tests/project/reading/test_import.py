"""`higgs project import` through the real CLI: dialogue sheets, manuscripts and EPUBs become projects that
`project validate` accepts and that render; bad sources are refused with their position, nothing written."""

from __future__ import annotations

import json
import zipfile

import pytest
import yaml


def _short(project_dir) -> None:
    """Random-weight lines end only at max_seconds: keep the render short."""
    with open(project_dir / "project.yaml", "a", encoding="utf-8") as handle:
        handle.write("\ndefaults:\n  max_seconds: 0.3\n  pause: 0.1\n")


def _epub(path, chapters, *, title="The Lighthouse", author="A. Keeper"):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title(title)
    book.set_language("en")
    book.add_author(author)
    items = []
    for number, (heading, paragraphs) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=heading or f"Part {number}", file_name=f"ch{number}.xhtml", lang="en")
        body = (f"<h1>{heading}</h1>" if heading else "") + "".join(f"<p>{p}</p>" for p in paragraphs) \
            or '<img src="cover.png" alt=""/>'  # a page without words
        item.content = f"<html><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


SHEET = ("ID,Character,Line,Scene,Direction,Notes\n"
         "g_001,Guard,Halt! Who goes there?,Gate,stern,\n"
         "p_001,Old Man,\"Just a traveller, sir.\",Gate,,tired\n"
         "g_002,Guard,Move along then.,Gate,,\n"
         "i_001,Innkeeper,Welcome to the inn!,Tavern,cheerful,\n")


def test_a_dialogue_sheet_becomes_a_project_that_validates_and_renders(cli, tiny_model, tmp_path):
    sheet = tmp_path / "quest.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    result = cli("--json", "project", "import", sheet, "-o", tmp_path / "game")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["kind"], data["sections"], data["lines"]) == ("sheet", 2, 4)
    assert data["speakers"] == ["Guard", "Old_Man", "Innkeeper"] == data["speakers_without_voice"]
    assert data["ignored_columns"] == ["notes"]
    raw = yaml.safe_load((tmp_path / "game" / "project.yaml").read_text(encoding="utf-8"))
    gate, tavern = raw["script"]
    assert (gate["id"], gate["task"], tavern["id"]) == ("gate", "dialogue", "tavern")
    assert gate["lines"][0] == {"id": "g_001", "speaker": "Guard", "text": "Halt! Who goes there?",
                                "direction": "stern"}  # joins the scene instead of replacing it (issue 35.4)
    assert gate["lines"][1]["text"] == "Just a traveller, sir."
    assert cli("project", "validate", tmp_path / "game").exit_code == 0
    _short(tmp_path / "game")
    render = cli("--json", "project", "render", tmp_path / "game", "--model", tiny_model)
    assert render.exit_code == 0, render.output
    assert json.loads(render.stdout)["lines"] == 4


def test_the_human_report_says_how_to_give_speakers_a_voice(cli, tmp_path, _isolated_home):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "ref.wav", 0.3 * np.sin(np.linspace(0, 400, 24000)), 24000)
    assert cli("voice", "add", "guard", tmp_path / "ref.wav", "--transcript", "A tone.").exit_code == 0
    sheet = tmp_path / "quest.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    result = cli("project", "import", sheet, "-o", tmp_path / "game")
    assert result.exit_code == 0, result.output
    assert "speakers without a voice" in result.stdout and "Old_Man, Innkeeper" in result.stdout
    assert "higgs voice add NAME" in result.stdout and "warning: " in result.stderr  # the notes column
    raw = yaml.safe_load((tmp_path / "game" / "project.yaml").read_text(encoding="utf-8"))
    assert raw["speakers"]["Guard"] == {"voice": "guard"}  # a library voice of that name is used


def test_a_jsonl_sheet_with_chapter_and_speaker_keys(cli, tmp_path):
    rows = [{"speaker": "ana", "text": "Hi.", "chapter": "One"}, {"speaker": "bo", "text": "Hello.", "chapter": "One"},
            {"speaker": "ana", "text": "Bye.", "chapter": "Two"}]
    sheet = tmp_path / "talk.jsonl"
    sheet.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = cli("--json", "project", "import", sheet, "-o", tmp_path / "p")
    assert result.exit_code == 0, result.output
    assert json.loads(cli("--json", "project", "validate", tmp_path / "p").stdout)["sections"] == [
        {"id": "one", "task": "dialogue", "lines": 2}, {"id": "two", "task": "dialogue", "lines": 1}]


MANUSCRIPT_MD = """# The Lighthouse

## Chapter 1: The Keeper

The keeper climbed *every* evening.
He said the [stairs](http://example.com) kept him honest. [laugh]

Nobody knocked on a lighthouse door.

```
code is not read
```

## Chapter 2

The end.
"""


def test_a_markdown_manuscript_has_a_section_per_heading_and_a_line_per_paragraph(cli, tiny_model, tmp_path):
    source = tmp_path / "book.md"
    source.write_text(MANUSCRIPT_MD, encoding="utf-8")
    result = cli("--json", "project", "import", source, "-o", tmp_path / "book")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "The Lighthouse"
    raw = yaml.safe_load((tmp_path / "book" / "project.yaml").read_text(encoding="utf-8"))
    one, two = raw["script"]
    assert (one["id"], one["task"], one["speaker"]) == ("chapter-1-the-keeper", "clone", "narrator")
    assert [line["text"] for line in one["lines"]] == [
        "Chapter 1: The Keeper", "The keeper climbed every evening. He said the stairs kept him honest. [laugh]",
        "Nobody knocked on a lighthouse door."]
    assert [line["text"] for line in two["lines"]] == ["Chapter 2", "The end."]
    _short(tmp_path / "book")
    render = cli("--json", "project", "render", tmp_path / "book", "--model", tiny_model)
    assert render.exit_code == 0, render.output


def test_a_plain_text_manuscript_splits_at_chapter_lines_or_a_pattern(cli, tmp_path):
    source = tmp_path / "novel.txt"
    source.write_text("A foreword.\n\nCHAPTER I\n\nIt began.\n\nIt went on.\n\nChapter II: Rain\n\nIt rained.\n"
                      + "\n" + "A long sentence here. " * 400 + "\n", encoding="utf-8")
    assert cli("project", "import", source, "-o", tmp_path / "n").exit_code == 0
    raw = yaml.safe_load((tmp_path / "n" / "project.yaml").read_text(encoding="utf-8"))
    assert [s["id"] for s in raw["script"]] == ["opening", "chapter-i", "chapter-ii-rain"]
    assert all(len(line["text"]) <= 5000 for s in raw["script"] for line in s["lines"])
    assert len(raw["script"][2]["lines"]) == 4  # heading, a paragraph, a long one cut in two at sentences
    source.write_text("== One ==\nFirst.\n\n== Two ==\nSecond.\n", encoding="utf-8")
    assert cli("project", "import", source, "-o", tmp_path / "m", "--chapter-pattern", "^== .* ==$").exit_code == 0
    raw = yaml.safe_load((tmp_path / "m" / "project.yaml").read_text(encoding="utf-8"))
    assert [s["id"] for s in raw["script"]] == ["one", "two"]


def test_an_epub_has_a_section_per_spine_document_with_text(cli, tiny_model, tmp_path):
    book = _epub(tmp_path / "light.epub", [("Chapter One", ["The keeper climbed.", "He was honest."]),
                                          (None, ["A knock came at the door."])])
    result = cli("--json", "project", "import", book, "-o", tmp_path / "audio")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["kind"], data["title"], data["sections"], data["lines"]) == ("epub", "The Lighthouse", 2, 4)
    raw = yaml.safe_load((tmp_path / "audio" / "project.yaml").read_text(encoding="utf-8"))
    assert raw["author"] == "A. Keeper"
    assert [s["id"] for s in raw["script"]] == ["chapter-one", "part-2"]  # the nav page is not read aloud
    assert [line["text"] for line in raw["script"][0]["lines"]] == ["Chapter One", "The keeper climbed.",
                                                                    "He was honest."]
    _short(tmp_path / "audio")
    assert cli("project", "render", tmp_path / "audio", "--model", tiny_model).exit_code == 0


def test_an_epub_cannot_read_files_through_external_entities(cli, tmp_path):
    book = _epub(tmp_path / "plain.epub", [("One", ["Words."])])
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    evil = tmp_path / "evil.epub"
    with zipfile.ZipFile(book) as source, zipfile.ZipFile(evil, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith(".opf"):
                body = data.decode("utf-8").split("?>", 1)[1]
                data = ('<?xml version="1.0" encoding="utf-8"?>\n'
                        f'<!DOCTYPE package [<!ENTITY e SYSTEM "file://{secret}">]>'
                        + body.replace("The Lighthouse</dc:title>", "&e;</dc:title>")).encode("utf-8")
            target.writestr(info, data)
    result = cli("--json", "project", "import", evil, "-o", tmp_path / "p")
    assert "TOP-SECRET" not in result.output
    if result.exit_code == 0:
        assert "TOP-SECRET" not in (tmp_path / "p" / "project.yaml").read_text(encoding="utf-8")
        assert json.loads(result.stdout)["title"] == "evil"  # no title: the file's name


def _zip(path, members: dict):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("name, make, message", [
    ("x.epub", lambda p: p.write_bytes(b"plain text"), "is not an EPUB: it is not a zip archive"),
    ("x.epub", lambda p: _zip(p, {"mimetype": "application/epub+zip"}), "is not a readable EPUB"),
    ("x.epub", lambda p: _epub(p, [(None, [])]), "has no text"),
    ("x.pdf", lambda p: p.write_bytes(b"%PDF"), "cannot import '.pdf'"),
    ("x.csv", lambda p: p.write_text("who,text\nA,Hi.\n"), "x.csv:1: there is no 'speaker' or 'character' column"),
    ("x.csv", lambda p: p.write_text("speaker,text\nA,Hi.\nB,Hi,there\n"), "x.csv:3: this row has 3 field(s)"),
    ("x.csv", lambda p: p.write_text("speaker;text\nA;Hi.\n"), "separated by semicolons"),
    ("x.csv", lambda p: p.write_text("speaker,text,id\nA,Hi.,a b\n"), "x.csv:2: id 'a b' cannot be a line id"),
    ("x.csv", lambda p: p.write_text("speaker,text,id\nA,Hi.,a\nB,Yo.,a\n"), "x.csv:3: id 'a' is used twice"),
    ("x.csv", lambda p: p.write_text("speaker,text\n,Hi.\n"), "x.csv:2: speaker is empty"),
    ("x.csv", lambda p: p.write_text("speaker,text,line\nA,Hi.,x\n"), "'text' and 'line' mean the same thing"),
    ("x.txt", lambda p: p.write_bytes(b"caf\xe9\n"), "x.txt:1: not UTF-8"),
    ("x.md", lambda p: p.write_text("  \n\n"), "holds no text"),
    ("x.md", lambda p: p.write_text("```\ncode only\n```\n"), "x.md has no text to read"),
])
def test_a_bad_source_is_refused_clearly_and_nothing_is_written(cli, tmp_path, name, make, message):
    source = tmp_path / name
    make(source)
    result = cli("project", "import", source, "-o", tmp_path / "p")
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "p").exists()


def test_an_existing_folder_with_files_is_not_touched(cli, tmp_path):
    sheet = tmp_path / "quest.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine", encoding="utf-8")
    result = cli("project", "import", sheet, "-o", tmp_path / "p")
    assert result.exit_code == 2 and "is not empty" in result.stderr
    assert [f.name for f in (tmp_path / "p").iterdir()] == ["keep.txt"]


def test_the_default_folder_is_named_after_the_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quest.csv").write_text(SHEET, encoding="utf-8")
    assert cli("project", "import", "quest.csv").exit_code == 0
    assert (tmp_path / "quest" / "project.yaml").is_file() and (tmp_path / "quest" / "voices").is_dir()


def _jpeg() -> bytes:
    return b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


def test_a_book_imports_as_m4b_with_its_cover_and_an_opening(cli, tmp_path):
    """Issue 35.3: chapters reach the delivered file (M4B), with the title, author and cover; front matter
    before the first chapter is the "Opening"; the summary says which format and why."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("b")
    book.set_title("The Lighthouse")
    book.set_language("en")
    book.add_author("A. Keeper")
    book.set_cover("cover.jpg", _jpeg(), create_page=False)
    front = epub.EpubHtml(title="", file_name="front.xhtml", lang="en")
    front.content = "<html><body><p>For my mother.</p></body></html>"  # a dedication: no heading, not in the toc
    one = epub.EpubHtml(title="Chapter One", file_name="ch1.xhtml", lang="en")
    one.content = "<html><body><h1>Chapter One</h1><p>The keeper climbed.</p></body></html>"
    for item in (front, one):
        book.add_item(item)
    book.toc = [one]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [front, one]
    epub.write_epub(str(tmp_path / "light.epub"), book)

    result = cli("--json", "project", "import", tmp_path / "light.epub", "-o", tmp_path / "audio")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["format"] == "m4b" and "chapters" in data["format_reason"] and "cover" in data["format_reason"]
    raw = yaml.safe_load((tmp_path / "audio" / "project.yaml").read_text(encoding="utf-8"))
    assert raw["output"]["format"] == "m4b" and raw["output"]["cover"] == "cover.jpg"
    assert (tmp_path / "audio" / "cover.jpg").read_bytes() == _jpeg()
    assert [(s["id"], s["title"]) for s in raw["script"]] == [("opening", "Opening"), ("chapter-one", "Chapter One")]
    human = cli("project", "import", tmp_path / "light.epub", "-o", tmp_path / "again")
    assert "output format m4b: an audiobook file that carries the chapters" in " ".join(human.stdout.split())
    assert cli("project", "validate", tmp_path / "audio").exit_code == 0


def test_a_manuscript_imports_as_m4b_and_its_front_matter_is_the_opening(cli, tmp_path):
    source = tmp_path / "novel.md"
    source.write_text("A foreword.\n\n# Chapter 1\n\nIt began.\n", encoding="utf-8")
    result = cli("--json", "project", "import", source, "-o", tmp_path / "n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "m4b"
    raw = yaml.safe_load((tmp_path / "n" / "project.yaml").read_text(encoding="utf-8"))
    assert raw["output"]["format"] == "m4b" and "cover" not in raw["output"]
    assert [(s["id"], s["title"]) for s in raw["script"]] == [("opening", "Opening"), ("chapter-1", "Chapter 1")]


def test_an_imported_cast_has_distinct_voices_display_names_and_directions_that_join_the_scene(cli, tmp_path):
    """Issue 35.4."""
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project.planning.plan import plan_project
    from higgs_cli.project.reading.load import load_project

    sheet = tmp_path / "quest.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    assert cli("project", "import", sheet, "-o", tmp_path / "game").exit_code == 0
    raw = yaml.safe_load((tmp_path / "game" / "project.yaml").read_text(encoding="utf-8"))
    descriptions = [s["description"] for s in raw["speakers"].values()]
    assert len(set(descriptions)) == 3  # no longer all "a clear, natural voice"
    assert raw["speakers"]["Old_Man"]["name"] == "Old Man" and "name" not in raw["speakers"]["Guard"]

    cast = tmp_path / "cast.csv"
    cast.write_text("character,line,gender,age,accent\nOld Man,Hello.,male,old,Scottish\n"
                    "Ada,Hi.,female,young,\nOld Man,Bye.,,,\n", encoding="utf-8")
    assert cli("project", "import", cast, "-o", tmp_path / "cast").exit_code == 0
    raw = yaml.safe_load((tmp_path / "cast" / "project.yaml").read_text(encoding="utf-8"))
    assert raw["speakers"]["Old_Man"]["description"] == "an old male voice with a Scottish accent"
    assert raw["speakers"]["Ada"]["description"] == "a young female voice"

    project_file = tmp_path / "game" / "project.yaml"
    text = project_file.read_text(encoding="utf-8")
    assert 'title: "quest"' in text
    project_file.write_text(text.replace('title: "quest"', 'title: "quest"\nscene: "A windy castle gate at night."'),
                            encoding="utf-8")
    project = load_project(tmp_path / "game", tasks=get_tasks())
    assert project.speakers["Old_Man"].display_name == "Old Man"
    from fakes import FakeSession

    planned = plan_project(project, FakeSession(), tasks=get_tasks())
    first = planned[0].request.scene
    assert "A windy castle gate at night." in first and "Delivery: stern" in first  # joined, not replaced
    assert "Delivery" not in planned[1].request.scene
