"""`higgs project studio` (issue 32 items 3 and 6) in a real headless browser: Debian's chromium driven by
Playwright (never a downloaded browser), on a copy of the example podcast, a FakeSession for the model.

One server and one browser for the module. The producer's session: open the page, play a line, make three
takes, pick the second, re-render and approve it, edit another line's text and re-render it; then on disk
project.yaml changed in that line only (comments kept), the lock file holds the pick and the approval,
exactly one stem changed, and the page shows it. Besides: a request without the token is refused (403),
a stale tab's edit is refused (409), bad input is a 4xx, a held project lock is named, no console errors,
no request leaves the machine, and the screenshots are not blank."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from delivery_helpers import FAKE
from fakes import FakeSession

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT = 30_000  # ms: generous, the machine is shared; every wait is for a state, never a fixed time

pytestmark = pytest.mark.slow  # a render, a server and (one test) a browser


class _Opener:
    """The session seam (sessions.use_opener): every session is one FakeSession, keyed as FAKE."""

    def __init__(self) -> None:
        self.session = FakeSession()

    def identity(self, spec):
        return FAKE

    def load(self, spec, notes):
        return self.session


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """The podcast example copied, rendered once, and served by the studio on loopback."""
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project import render_project
    from higgs_cli.sessions import use_opener
    from higgs_cli.studio import Studio, start_studio

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HIGGS_HOME", str(tmp_path_factory.mktemp("studio_home")))
        previous = use_opener(_Opener())
        root = tmp_path_factory.mktemp("studio") / "podcast"
        shutil.copytree(ROOT / "projects" / "podcast", root)
        shop = Studio(root, tasks=get_tasks())
        render_project(shop.project(), shop.session(shop.project()), tasks=shop.tasks)
        running = start_studio(shop)
        try:
            yield running, root
        finally:
            running.stop()
            use_opener(previous)


def _ask(running, path: str, *, token: str | None = "", body: dict | None = None, host: str | None = None,
         raw: bytes | None = None) -> tuple[int, dict]:
    """(status, JSON) of one request; token "" is the studio's own, None none at all."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Studio-Token"] = token or running.token
    if host is not None:
        headers["Host"] = host
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"http://127.0.0.1:{running.port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload, status = error.read(), error.code
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, {}


def test_a_request_without_the_token_is_refused(studio):
    running, root = studio
    key = _ask(running, "/api/state")[1]["lines"][0]["key"]
    for path in ("/", "/api/state", "/api/job", "/static/studio.js", "/files/stems", f"/audio/key/{key}",
                 "/api/takes?ref=talk:1", "/no/such/page"):
        assert _ask(running, path, token=None)[0] == 403, path
        assert _ask(running, path, token="not-the-token")[0] == 403, path
    status, answer = _ask(running, "/api/approve", token=None, body={"ref": "talk:1"})
    assert status == 403 and "token" in answer["error"]
    assert _ask(running, "/api/state", host="evil.example:80")[0] == 403  # DNS rebinding: only loopback names
    state = _ask(running, "/api/state")
    assert state[0] == 200 and len(state[1]["peaks"]) > 100  # the master's peaks, as the render measured them
    assert running.url.startswith(f"http://127.0.0.1:{running.port}/?token=")


def test_bad_input_is_a_4xx_with_a_message_never_a_500(studio):
    running, root = studio
    before = (root / "project.yaml").read_bytes()
    sha = _ask(running, "/api/state")[1]["sha"]
    cases = [("/api/edit", {"ref": "talk:1", "field": "speaker", "value": "x", "sha": sha}, 400, "cannot be edited"),
             ("/api/edit", {"ref": "talk:1", "field": "seed", "value": "abc", "sha": sha}, 400, "whole number"),
             ("/api/edit", {"ref": "talk:1", "field": "text", "value": "", "sha": sha}, 400, "empty"),
             ("/api/edit", {"ref": "talk:1", "field": "pause", "value": -3, "sha": sha}, 400, "pause"),
             ("/api/edit", {"ref": "talk:99", "field": "text", "value": "x", "sha": sha}, 400, "talk has"),
             ("/api/approve", {"ref": "nowhere:1", "sha": sha}, 400, "no section"),
             ("/api/pick", {"ref": "talk:1", "take": 7, "sha": sha}, 400, "no take 7"),
             ("/api/takes", {"ref": "talk:1", "count": 99, "sha": sha}, 400, "count"),
             ("/api/render", {"lines": "talk:1", "sha": sha}, 400, "list"),
             ("/api/restore", {"snapshot": "nope", "sha": sha}, 400, "not a snapshot")]
    for path, body, status, words in cases:
        got, answer = _ask(running, path, body=body)
        assert (got, words in answer.get("error", "")) == (status, True), (path, body, got, answer)
    assert _ask(running, "/api/edit", raw=b"{not json")[0] == 400
    assert _ask(running, "/api/edit", raw=b"[1, 2]")[0] == 400
    assert _ask(running, "/audio/key/..%2F..%2Fproject.yaml")[0] in (400, 404)
    assert _ask(running, "/files/../project.yaml")[0] in (403, 404)
    assert _ask(running, "/files/review.html")[0] == 403  # only the build's audio is served
    assert _ask(running, "/files/manifest.json")[0] == 403
    assert (root / "project.yaml").read_bytes() == before  # nothing was written


def test_a_held_project_lock_is_named_and_nothing_runs(studio):
    running, root = studio
    from higgs_cli.project import ProjectLayout

    sha = _ask(running, "/api/state")[1]["sha"]
    with ProjectLayout(root).lock("project Slow Travel Club (a render in a terminal)"):
        status, answer = _ask(running, "/api/render", body={"lines": ["talk:1"], "sha": sha})
        assert status == 409 and "in use by another higgs process" in answer["error"]
        assert f"pid {os.getpid()}" in answer["error"]  # what holds it: this process, from the lock's note
        assert "in use" in _ask(running, "/api/state")[1]["lock"]
        assert _ask(running, "/api/edit", body={"ref": "talk:1", "field": "seed", "value": 3, "sha": sha})[0] == 409
    assert _ask(running, "/api/state")[1]["lock"] is None
    status, answer = _ask(running, "/api/restore", body={"snapshot": "latest", "sha": sha})  # free again: it runs
    assert status == 200 and answer["files"] and answer["sha"] == sha


def _distinct_colours(page, png: bytes) -> int:
    """How many colours a screenshot holds, decoded by the browser itself."""
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


def _stems(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "build" / "stems").iterdir())}


def _job_done(page, before: str | None) -> None:
    """Wait until a job other than `before` has finished, and the page has read the state after it."""
    page.wait_for_function("(before) => { const j = document.body.dataset.job || '';"
                           " return j !== before && /:(done|failed)$/.test(j) }",
                           arg=before or "", timeout=WAIT)
    assert page.locator("body").get_attribute("data-job").endswith(":done"), page.locator("#message").inner_text()


def _row(page, ref: str):
    return page.locator(f'tr.line[data-ref="{ref}"]')


@pytest.mark.needs_chromium
def test_a_producer_session_in_the_studio(studio):
    sync_api = pytest.importorskip("playwright.sync_api")
    running, root = studio
    original = (root / "project.yaml").read_text(encoding="utf-8")
    problems: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                            "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            here = f"http://127.0.0.1:{running.port}/"

            def loopback_only(route):
                if route.request.url.startswith(here):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", loopback_only)
            page.goto(running.url)
            page.wait_for_selector("body[data-ready='true']", timeout=WAIT)

            # the first line is selected; every line is listed with its text as written and as read
            rows = page.locator("tr.line")
            assert rows.count() == 12
            assert page.locator("body").get_attribute("data-selected") == "intro:1"
            assert "selected" in rows.nth(0).get_attribute("class")
            assert _row(page, "talk:3").locator(".written").inner_text() == "That sounds exhausting. [laugh]"
            assert "<SE>[Laughter]</SE>" in _row(page, "talk:3").locator(".spoken").inner_text()
            assert page.locator(".lane").count() == 2 and page.locator(".block").count() == 12
            assert page.locator(".marker").count() == 3  # intro, talk, outro
            assert page.locator("#master").get_attribute("src")
            # the line's player knows its length before it is played
            page.wait_for_function("() => { const a = document.getElementById('panel-audio');"
                                   " return a.paused && a.duration > 0 && isFinite(a.duration); }", timeout=WAIT)

            # play a line: Space
            page.keyboard.press("Space")
            page.wait_for_function("() => document.body.dataset.played === 'intro:1' && !document.getElementById"
                                   "('player').paused", timeout=WAIT)
            page.keyboard.press("Space")  # and pause it
            page.wait_for_function("() => document.getElementById('player').paused", timeout=WAIT)
            page.keyboard.press("p")  # the master from this line on
            page.wait_for_function("() => !document.getElementById('master').paused", timeout=WAIT)
            page.evaluate("() => document.getElementById('master').pause()")

            # three takes of talk:1 (J moves down), pick the second, re-render it, approve it
            page.keyboard.press("j")
            assert page.locator("body").get_attribute("data-selected") == "talk:1"
            page.keyboard.press("t")
            _job_done(page, None)
            page.wait_for_function("() => document.querySelectorAll('#takes li').length === 3", timeout=WAIT)
            assert "/files/takes/" in page.locator("#takes li audio").nth(1).get_attribute("src")  # its WAV file
            job = page.locator("body").get_attribute("data-job")
            page.keyboard.press("2")
            page.wait_for_selector("#takes li.picked[data-take='2']", timeout=WAIT)
            page.keyboard.press("r")
            _job_done(page, job)
            page.wait_for_function("() => { const r = document.querySelector('tr.line[data-ref=\"talk:1\"]');"
                                   " return r && r.querySelector('.state').textContent === 'rendered'; }", timeout=WAIT)
            page.keyboard.press("a")
            page.wait_for_selector('tr.line[data-ref="talk:1"] .badge.approved', timeout=WAIT)
            stems = _stems(root)

            # edit talk:3's text and re-render it
            page.keyboard.press("j")
            page.keyboard.press("ArrowDown")
            assert page.locator("body").get_attribute("data-selected") == "talk:3"
            job = page.locator("body").get_attribute("data-job")
            page.keyboard.press("e")
            page.fill("#edit-text", "That sounds tiring. [laugh]")
            sha = page.locator("body").get_attribute("data-sha")
            page.keyboard.press("Enter")
            page.wait_for_function("(sha) => document.body.dataset.sha !== sha", arg=sha, timeout=WAIT)
            assert "next render generates it: text" in _row(page, "talk:3").locator(".marks").inner_text()
            page.keyboard.press("r")
            _job_done(page, job)
            page.wait_for_function("() => { const r = document.querySelector('tr.line[data-ref=\"talk:3\"]');"
                                   " return r.querySelector('.written').textContent === 'That sounds tiring. [laugh]'"
                                   " && r.querySelector('.state').textContent === 'rendered'; }", timeout=WAIT)

            # on disk: one line of project.yaml changed, comments kept; the pick and approval held; one stem
            edited = (root / "project.yaml").read_text(encoding="utf-8")
            changed = [(a, b) for a, b in zip(original.splitlines(), edited.splitlines(), strict=True) if a != b]
            assert changed == [('      - maya: "That sounds exhausting. [laugh]"',
                                '      - maya: "That sounds tiring. [laugh]"')]
            lock = yaml.safe_load((root / "project.lock.yaml").read_text(encoding="utf-8"))
            entry = lock["lines"]["talk:1"]
            assert entry["take"] == 2 and entry.get("approved")
            after = _stems(root)
            assert [name for name in stems if stems[name] != after[name]] == ["talk_003_maya.wav"]
            talk1 = _row(page, "talk:1").locator(".marks").inner_text()
            assert "approved" in talk1 and "take 2" in talk1

            # screenshots are not blank; the waveform is drawn
            shot = page.screenshot(full_page=True)
            assert _distinct_colours(page, shot) > 3
            assert _distinct_colours(page, page.locator("#wave").screenshot()) > 1
            (root / "studio.png").write_bytes(shot)
            assert problems == [] and outside == []

            # a stale tab: project.yaml changed on disk since the page read it; its edit is refused
            (root / "project.yaml").write_text(edited + "# touched in an editor\n", encoding="utf-8")
            page.keyboard.press("k")
            page.keyboard.press("e")
            page.fill("#edit-text", "Fine, thanks, a stale tab says.")
            page.keyboard.press("Enter")
            page.wait_for_function("() => document.body.dataset.lastStatus === '409'", timeout=WAIT)
            assert "changed on disk" in page.locator("#message").inner_text()
            assert (root / "project.yaml").read_text(encoding="utf-8") == edited + "# touched in an editor\n"
            assert all("409" in p for p in problems), problems  # only the refused request, as the browser logs it
            assert outside == []
        finally:
            browser.close()
