"""The review page (issue 20 item 5, issue 32 item 4) in a real headless browser: Debian's chromium, driven by
Playwright (never a downloaded browser). It loads with no console errors and no network, shows every line with
its id, speaker, text as written and as read, state, approval, picked take, flags and a player for its stem
that knows its length before playing, chapter markers and a time ruler; clicking a line plays it, and a
screenshot is not blank."""

from __future__ import annotations

import base64
import shutil
import textwrap
from pathlib import Path

import pytest
from delivery_helpers import manifest_of, render
from fakes import write_voice

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def _show(folder: Path) -> Path:
    folder.mkdir(parents=True)
    write_voice(folder / "voices" / "alice.wav", seconds=1.0)
    (folder / "project.yaml").write_text(textwrap.dedent("""\
        title: "Review <Me> & Co"
        defaults: {seed: 2}
        speakers:
          alice: {audio: voices/alice.wav, transcript: "Hello, I am Alice."}
          bob: {description: deep male voice}
        script:
          - id: intro
            title: The Opening
            task: dialogue
            lines:
              - alice: "Welcome </script> to the <b>show</b>!"
              - bob: How are you doing today?
                id: bob-asks
          - id: outro
            task: dialogue
            lines:
              - alice: Goodbye, everyone.
        """), encoding="utf-8")
    return folder


def _distinct_colours(page, png: bytes) -> int:
    """How many colours the screenshot holds, decoded by the browser itself."""
    return page.evaluate("""async (src) => {
        const img = new Image(); img.src = src; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, c.width, c.height).data, seen = new Set();
        for (let i = 0; i < px.length && seen.size < 50; i += 4 * 97) {
            seen.add(px[i] << 16 | px[i + 1] << 8 | px[i + 2]);
        }
        return seen.size;
    }""", "data:image/png;base64," + base64.b64encode(png).decode())


@pytest.mark.slow  # starts a browser
@pytest.mark.needs_chromium
def test_the_review_page_shows_every_line_and_plays_it(cli, fake_model, browser, tmp_path):
    show = _show(tmp_path / "show")
    summary = render(cli, show)
    page_file = show / "build" / "review.html"
    assert Path(summary["outputs"]["review"]) == page_file
    manifest = manifest_of(show)
    assert manifest["outputs"]["review"] == "review.html"

    page = browser.new_page(viewport={"width": 1200, "height": 800})
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready='true']", timeout=10_000)

    rows = page.locator("tr.line")
    assert rows.count() == len(manifest["lines"]) == 3
    for i, line in enumerate(manifest["lines"]):
        row = rows.nth(i)
        assert row.locator("td.text .written").inner_text() == line["text"]  # shown as text, never as markup
        assert row.locator("td.text .spoken").inner_text() == line["prompt_text"]  # as the model read it
        assert row.locator("td.speaker").inner_text() == line["speaker"]
        assert row.locator("td.state").inner_text() == "generated"
        assert row.locator("audio").get_attribute("src") == line["stem"]
        assert row.locator("audio").get_attribute("preload") == "metadata"
        for flag in line["flags"]:  # the quality guards' findings, when there are any
            assert flag["message"] in row.locator("td.flags").inner_text()
    assert page.locator(".lane").count() == 2 and page.locator(".block").count() == 3
    assert page.title() == "Review <Me> & Co: review"
    assert "id bob-asks" in rows.nth(1).locator("td.ref").inner_text()
    assert page.locator(".marker").all_inner_texts() == ["The Opening", "outro"]  # a chapter marker per section
    # a player knows its length before it is played (the stem's header, read as metadata)
    page.wait_for_function("() => [...document.querySelectorAll('tr.line audio')].every(a => a.paused"
                           " && a.duration > 0 && isFinite(a.duration))", timeout=10_000)

    rows.nth(1).locator("td.text").click()
    assert page.locator("body").get_attribute("data-played") == "1"
    assert "playing" in (rows.nth(1).get_attribute("class") or "")
    page.wait_for_function("() => { const a = document.querySelector('tr.line[data-i=\"1\"] audio');"
                           " return !a.paused && a.currentTime > 0; }", timeout=10_000)  # its stem plays
    page.locator(".block").nth(2).click()  # a line in a speaker lane
    assert page.locator("body").get_attribute("data-played") in {"1", "2"}

    assert _distinct_colours(page, page.screenshot(full_page=True)) > 3  # not blank
    assert _distinct_colours(page, page.locator("#wave").screenshot()) > 1  # the waveform is drawn
    assert _distinct_colours(page, page.locator("#ruler").screenshot()) > 1  # and the time ruler
    assert all(url.startswith(("file:", "data:")) for url in requests), requests  # no network
    assert problems == []


def test_the_review_page_marks_missing_and_re_renders_with_the_build(cli, fake_model, tmp_path):
    show = _show(tmp_path / "show")
    render(cli, show)
    first = (show / "build" / "review.html").read_text(encoding="utf-8")
    assert first.count('<tr class="line ') == 3 and "&lt;b&gt;show&lt;/b&gt;" in first
    assert "</script> to the" not in first.split('id="review-data">')[1].split("</script>")[0]  # escaped JSON
    for args in (("takes", show, "intro:2", "--count", "2"), ("pick", show, "intro:2", "2"),
                 ("approve", show, "intro:1")):
        assert cli("project", *args).exit_code == 0
    render(cli, show)
    again = (show / "build" / "review.html").read_text(encoding="utf-8")
    assert again.count('<tr class="line cached"') == 3  # the second render took every line from the cache
    rows = again.split('<tr class="line ')[1:]  # the approval and the pick are shown on their lines
    assert ['<td class="approved">approved</td>' in row for row in rows] == [True, False, False]
    assert ['<td class="take">2</td>' in row for row in rows] == [False, True, False]
