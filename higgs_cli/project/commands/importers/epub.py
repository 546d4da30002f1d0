"""An EPUB as a draft audiobook: one `clone` section per spine document that has text.

The book is read with ebooklib (the spine gives the reading order; the table
of contents names chapters whose document has no heading). Text is taken from
the leaf blocks of each XHTML document (paragraphs, headings, list items), so
a heading is read aloud as the chapter's first line. The archive is checked
first: not a zip, too large, or unpacking to too much is refused. External
entities are never expanded (lxml 5 and later; the chapters are parsed as HTML).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.project.commands.importers.draft import (
    Draft,
    DraftLine,
    DraftSection,
    DraftSpeaker,
    section_id,
    split_long,
)
from higgs_cli.project.commands.importers.manuscript import NARRATOR, OPENING, book_output

MAX_EPUB_BYTES = 200 * 1024 * 1024
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024  # a zip bomb stops here, before anything is inflated
BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "div", "dd", "dt", "td", "pre", "section"}
HEADINGS = {"h1", "h2", "h3"}


def _check_archive(path: Path) -> None:
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="give the path of an .epub file")
    if path.stat().st_size > MAX_EPUB_BYTES:
        raise UsageError(f"{path} is larger than {MAX_EPUB_BYTES // (1024 * 1024)} MB")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not an EPUB: it is not a zip archive",
                         hint="export the book as EPUB again, or import its text as .txt or .md")
    with zipfile.ZipFile(path) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
            raise UsageError(f"{path} unpacks to more than {MAX_UNPACKED_BYTES // (1024 ** 3)} GB; refusing it")


def _blocks(content: bytes) -> list[tuple[str, str]]:
    """(tag, text) of each leaf block of an XHTML document, in order."""
    import lxml.html

    try:
        root = lxml.html.document_fromstring(content)
    except Exception:  # lxml raises several kinds for an empty or broken document; none is worth more
        return []
    found = []
    for element in root.iter():
        tag = element.tag.split("}")[-1].lower() if isinstance(element.tag, str) else ""
        if tag not in BLOCKS or any(isinstance(child.tag, str) and child.tag.split("}")[-1].lower() in BLOCKS
                                    for child in element.iterdescendants()):
            continue
        text = " ".join(element.text_content().split())
        if text:
            found.append((tag, text))
    return found


def _toc_titles(book) -> dict[str, str]:
    """Document href -> its title in the table of contents."""
    titles: dict[str, str] = {}

    def walk(entries) -> None:
        for entry in entries:
            if isinstance(entry, (list, tuple)):
                walk(entry)
                continue
            href, title = getattr(entry, "href", None), getattr(entry, "title", None)
            if href and title:
                titles.setdefault(href.split("#")[0], title)

    walk(book.toc)
    return titles


def _metadata(book, name: str) -> str | None:
    """The first Dublin Core value of `name` as text, or None (absent, empty, or an unexpanded entity)."""
    values = book.get_metadata("DC", name)
    value = values[0][0] if values else None
    return " ".join(str(value).split()) or None if value is not None else None


_COVER_TYPES = {"image/jpeg": "cover.jpg", "image/png": "cover.png"}


def _cover(book) -> tuple[str, bytes] | None:
    """The book's cover image as (file name, bytes): the item the EPUB 3 manifest marks `cover-image`,
    else the one EPUB 2 metadata names; only JPEG and PNG, at most MAX_COVER_BYTES."""
    import ebooklib

    from higgs_cli.project.building.delivery import MAX_COVER_BYTES

    found = [item for item in book.get_items_of_type(ebooklib.ITEM_COVER)]
    meta = book.get_metadata("OPF", "cover")
    if meta:
        cover_id = (meta[0][1] or {}).get("content")
        item = book.get_item_with_id(cover_id) if cover_id else None
        if item is not None:
            found.append(item)
    for item in found:
        name = _COVER_TYPES.get(getattr(item, "media_type", ""))
        data = item.get_content()
        if name and data and len(data) <= MAX_COVER_BYTES:
            return name, data
    return None


def read_epub(path: Path, *, title: str | None = None) -> Draft:
    """An .epub as a draft with one narrator and a section per chapter."""
    _check_archive(path)
    try:
        import ebooklib
        from ebooklib import epub
    except ImportError:
        raise UsageError("reading EPUB needs the ebooklib package", hint="pip install 'ebooklib>=0.18'") from None
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": False})
    except Exception as error:  # ebooklib raises KeyError, EpubException, lxml errors...: all mean "unreadable"
        raise UsageError(f"{path} is not a readable EPUB ({type(error).__name__}: {error})",
                         hint="check that it opens in an e-book reader, or import its text as .txt or .md") from None
    draft = Draft(title=title or _metadata(book, "title") or path.stem, source=path.name, kind="epub",
                  author=_metadata(book, "creator"))
    cover = _cover(book)
    if cover is not None:
        draft.files[cover[0]] = cover[1]
    book_output(draft, cover[0] if cover is not None else None)
    draft.speakers[NARRATOR] = DraftSpeaker(NARRATOR, NARRATOR, description="a warm, clear narrator, measured pace")
    toc = _toc_titles(book)
    for entry in book.spine:
        idref, linear = (entry, "yes") if isinstance(entry, str) else (entry[0], entry[1] if len(entry) > 1 else "yes")
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or str(linear).lower() == "no":
            continue  # an image, or a page outside the reading order (a cover, notes)
        if "nav" in (getattr(item, "properties", None) or []) or isinstance(item, epub.EpubNav):
            continue  # the table of contents is not read aloud
        blocks = _blocks(item.get_content())
        if not blocks:
            continue  # a cover page, an image
        heading = next((text for tag, text in blocks if tag in HEADINGS), None)
        named = heading or toc.get(item.get_name())
        # front matter (a title page, a dedication) before the first named chapter is the opening
        name = named or (OPENING if all(not s.named for s in draft.sections) else
                         f"Chapter {len(draft.sections) + 1}")
        lines = [DraftLine(part) for _, text in blocks for part in split_long(text)]
        if not lines:
            continue  # only invisible characters
        draft.sections.append(DraftSection(section_id(name, {s.id for s in draft.sections},
                                                      f"chapter-{len(draft.sections) + 1}"),
                                           "clone", name, speaker=NARRATOR, lines=lines, named=bool(named)))
    if not draft.sections:
        raise UsageError(f"{path} has no text: its spine holds no document with words",
                         hint="a scanned book (images only) cannot be read aloud; import its text instead")
    return draft
