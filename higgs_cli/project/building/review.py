"""The review page (`build/review.html`): look at and listen to a build without reading its manifest.

One self-contained HTML file, written with every render: the track's
waveform under a time ruler with a marker where each chapter (section) starts,
a lane per speaker with each line on the timeline, and every line with its
reference and id, speaker, text as written and as the model read it (after
the lexicon), duration, cache state, approval, picked take, the quality
guards' flags and a player for its stem that shows its length before it is
played. Clicking a line (in a lane or the list) plays it. It is the read-only
export for sharing; `higgs project studio` is the page that edits. The
page loads nothing from the network: styles and script are inline, the audio
is linked relative to the page (the master and `stems/`), so the build folder
can be moved or zipped whole. The lines are in the HTML itself, so the page
reads without script too.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from higgs_cli.project.folder.manifest import BuildManifest, ManifestLine

REVIEW = "review.html"
PEAK_BUCKETS = 1600  # waveform columns: enough for a wide screen, ~20 kB in the page


class Peaks:
    """The lowest and highest sample in each of `buckets` equal stretches of a `total`-sample track,
    gathered from blocks as they stream past (the track is never held whole)."""

    def __init__(self, total: int, buckets: int = PEAK_BUCKETS) -> None:
        self.total, self.buckets = max(1, int(total)), max(1, min(buckets, max(1, int(total))))
        self.low = np.zeros(self.buckets, np.float32)
        self.high = np.zeros(self.buckets, np.float32)
        self.pos = 0

    def add(self, block: np.ndarray) -> None:
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if not x.size:
            return
        ids = np.minimum((np.arange(self.pos, self.pos + x.size, dtype=np.int64) * self.buckets) // self.total,
                         self.buckets - 1)
        starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
        where = ids[starts]
        np.minimum.at(self.low, where, np.minimum.reduceat(x, starts))
        np.maximum.at(self.high, where, np.maximum.reduceat(x, starts))
        self.pos += x.size

    def watch(self, blocks):
        """Yield `blocks` unchanged, gathering their peaks on the way."""
        for block in blocks:
            self.add(block)
            yield block

    def to_list(self) -> list[list[float]]:
        return [[round(float(lo), 3), round(float(hi), 3)] for lo, hi in zip(self.low, self.high, strict=True)]


def _state(line: ManifestLine) -> str:
    return "missing" if line.missing else ("generated" if line.source == "generated" else "cached")


def _flag_text(flag: dict) -> str:
    """A guard finding as a short phrase: its kind and, when given, its message."""
    if not isinstance(flag, dict):
        return str(flag)
    kind = flag.get("code") or flag.get("kind") or flag.get("guard") or "flag"
    message = flag.get("message") or flag.get("detail") or ""
    return f"{kind}: {message}" if message else str(kind)


def review_data(manifest: BuildManifest, peaks: Sequence[Sequence[float]],
                names: Mapping[str, str] | None = None, titles: Mapping[str, str] | None = None) -> dict:
    """What the page shows, as JSON-ready data; `names` maps speakers to their display names (`name:`),
    `titles` sections to their chapter titles (`title:`, else the id)."""
    names, titles = names or {}, titles or {}
    lines = []
    for i, line in enumerate(manifest.lines):
        lines.append({
            "i": i, "ref": line.ref or f"{line.section}:{line.index + 1}", "section": line.section,
            "speaker": names.get(line.speaker or "", line.speaker or ""), "text": line.text,
            "start": round(line.start, 3),
            "end": round(line.end, 3), "duration": round(max(0.0, line.end - line.start), 3),
            "state": _state(line), "flags": [_flag_text(f) for f in (line.flags or [])], "stem": line.stem,
            "finished": bool(line.finished), "tries": line.tries, "approved": bool(line.approved),
            "id": line.id, "take": line.take, "spoken": line.prompt_text})
    chapters = []
    for line in lines:
        if line["state"] != "missing" and (not chapters or chapters[-1]["section"] != line["section"]):
            chapters.append({"section": line["section"], "title": titles.get(line["section"], line["section"]),
                             "start": line["start"]})
    return {"title": manifest.title, "duration": round(manifest.duration, 3), "master": manifest.outputs.get("master"),
            "model": manifest.model, "is_random": manifest.is_random, "note": manifest.note,
            "rendered_at": manifest.rendered_at, "mastering": manifest.mastering or {}, "peaks": list(peaks),
            "speakers": list(dict.fromkeys(line["speaker"] for line in lines)), "lines": lines, "chapters": chapters}


def render_review(manifest: BuildManifest, peaks: Sequence[Sequence[float]],
                  names: Mapping[str, str] | None = None, titles: Mapping[str, str] | None = None) -> str:
    """The review page of `manifest` (its outputs relative to the build folder) as HTML text."""
    data = review_data(manifest, peaks, names, titles)
    esc = html.escape
    rows = []
    for line in data["lines"]:
        flags = "".join(f'<span class="flag">{esc(f)}</span>' for f in line["flags"])
        if not line["finished"] and line["state"] != "missing":
            flags += '<span class="flag">cut at max_seconds</span>'
        # the length shows before playing: the browser reads the stem's header (metadata), and the known
        # duration is written beside it for a browser that does not
        player = (f'<audio controls preload="metadata" src="{esc(line["stem"], quote=True)}"></audio>'
                  if line["stem"] else '<span class="none">no stem</span>')
        spoken = (f'<div class="spoken">{esc(line["spoken"])}</div>'
                  if line["spoken"] and line["spoken"] != line["text"] else "")
        ident = f'<div class="id">id {esc(line["id"])}</div>' if line["id"] else ""
        rows.append(
            f'<tr class="line {line["state"]}" data-i="{line["i"]}" tabindex="0">'
            f'<td class="ref">{esc(line["ref"])}{ident}</td><td class="speaker">{esc(line["speaker"])}</td>'
            f'<td class="text"><div class="written">{esc(line["text"])}</div>{spoken}</td>'
            f'<td class="dur">{line["duration"]:.2f} s</td><td class="state">{esc(line["state"])}</td>'
            f'<td class="approved">{"approved" if line["approved"] else ""}</td>'
            f'<td class="take">{esc(str(line["take"])) if line["take"] else ""}</td><td class="flags">{flags}</td>'
            f'<td class="player">{player}</td></tr>')
    note = (f'<p class="warning">{esc(data["note"] or "random-init weights: the audio is noise, not speech")}</p>'
            if data["is_random"] else "")
    master = (f'<audio id="master" controls preload="metadata" src="{esc(data["master"], quote=True)}"></audio>'
              if data["master"] else "")
    mastering = data["mastering"]
    figures = ", ".join(f"{label} {mastering[key]:g}" for key, label in
                        (("loudness_lufs", "LUFS"), ("true_peak_dbtp", "dBTP")) if mastering.get(key) is not None)
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return _PAGE.format(
        title=esc(data["title"]), summary=esc(f'{len(data["lines"])} lines, {data["duration"]:.1f} s, '
                                              f'{data["model"]}, rendered {data["rendered_at"]}'
                                              + (f"; master {figures}" if figures else "")),
        note=note, master=master, rows="\n".join(rows), payload=payload, style=_STYLE, script=_SCRIPT)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}.summary{color:#555;margin:0 0 .8em}
.warning{background:#fff3cd;border:1px solid #e0c36a;padding:.4em .6em}
#track{position:relative}#ruler{width:100%;height:22px;display:block;background:#fafafa;border:1px solid #ddd;
border-bottom:0}#wave{width:100%;height:120px;background:#fff;border:1px solid #ddd;display:block;cursor:pointer}
#markers{position:absolute;left:0;right:0;top:0;bottom:0;pointer-events:none}
.marker{position:absolute;top:0;bottom:0;border-left:2px solid #7a4fb3}
.marker span{position:absolute;top:24px;left:3px;font-size:11px;background:#f3ecfb;color:#4a2d75;padding:0 3px;
white-space:nowrap}.spoken{color:#666;font-size:12px}.spoken::before{content:"read as: "}
.id{color:#666;font-size:12px}td.approved{color:#276738}.block.approved{background:#4d9a5b}
#lanes{position:relative;border:1px solid #ddd;background:#fff;margin:.5em 0 1em}
.lane{position:relative;height:26px;border-top:1px solid #eee}.lane:first-child{border-top:0}
.lane-name{position:absolute;left:4px;top:4px;font-size:12px;color:#666;z-index:1;pointer-events:none}
.block{position:absolute;top:3px;height:20px;background:#6c9bd2;border-radius:3px;cursor:pointer;min-width:2px}
.block.missing{background:#ccc}.block.flagged{background:#e0925a}.block.playing,.line.playing{outline:2px solid #c33}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top}
th{background:#f0f0f0;text-align:left}tr.line{cursor:pointer}tr.missing{color:#999}
.flag{display:inline-block;background:#fde2cf;border-radius:3px;padding:0 4px;margin:1px;font-size:12px}
audio{height:28px;max-width:260px}#master{width:100%;max-width:none;margin:.5em 0}
"""

_SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('review-data').textContent);
  const total = Math.max(data.duration, 1e-6);
  const master = document.getElementById('master');
  const canvas = document.getElementById('wave');
  function draw(at) {
    const ctx = canvas.getContext('2d');
    const w = canvas.width = canvas.clientWidth * (window.devicePixelRatio || 1);
    const h = canvas.height = canvas.clientHeight * (window.devicePixelRatio || 1);
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#3b6ea8';
    const n = data.peaks.length;
    for (let x = 0; x < w; x++) {
      const p = data.peaks[Math.min(n - 1, Math.floor(x * n / w))] || [0, 0];
      const top = (1 - p[1]) * h / 2, bottom = (1 - p[0]) * h / 2;
      ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
    if (at !== undefined) { ctx.fillStyle = '#c33'; ctx.fillRect(at / total * w, 0, 2, h); }
  }
  function ruler() {
    const c = document.getElementById('ruler'), ratio = window.devicePixelRatio || 1;
    const w = c.width = c.clientWidth * ratio, h = c.height = c.clientHeight * ratio, ctx = c.getContext('2d');
    const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const step = steps.find(s => s / total * w >= 70 * ratio) || 3600;
    ctx.fillStyle = '#555'; ctx.font = (11 * ratio) + 'px sans-serif'; ctx.textBaseline = 'top';
    for (let t = 0; t <= total + 1e-9; t += step) {
      const x = Math.round(t / total * (w - 1)), m = Math.floor(t / 60), s = t - m * 60;
      ctx.fillRect(x, h * 0.55, ratio, h * 0.45);
      ctx.fillText(m + ':' + (s < 10 ? '0' : '') + s, x + 3 * ratio, 2 * ratio);
    }
  }
  const markers = document.getElementById('markers');
  data.chapters.forEach(ch => {
    const m = document.createElement('div'); m.className = 'marker'; m.dataset.section = ch.section;
    m.style.left = (ch.start / total * 100) + '%';
    const label = document.createElement('span'); label.textContent = ch.title; m.appendChild(label);
    markers.appendChild(m);
  });
  function mark(i) {
    document.querySelectorAll('.playing').forEach(e => e.classList.remove('playing'));
    document.querySelectorAll('[data-i="' + i + '"]').forEach(e => e.classList.add('playing'));
  }
  function stop() {
    document.querySelectorAll('audio').forEach(a => { if (!a.paused) a.pause(); });
  }
  function play(i) {
    const line = data.lines[i];
    if (!line || line.state === 'missing') return;
    stop(); mark(i);
    const row = document.querySelector('tr.line[data-i="' + i + '"]');
    const stem = row && row.querySelector('audio');
    if (stem) { stem.currentTime = 0; stem.play().catch(() => {}); }
    else if (master) { master.currentTime = line.start; master.play().catch(() => {}); }
    document.body.dataset.played = String(i);
    draw(line.start);
  }
  const lanes = document.getElementById('lanes');
  data.speakers.forEach(name => {
    const lane = document.createElement('div'); lane.className = 'lane';
    const label = document.createElement('span'); label.className = 'lane-name';
    label.textContent = name || '(no speaker)'; lane.appendChild(label);
    data.lines.filter(l => l.speaker === name).forEach(l => {
      const b = document.createElement('div');
      b.className = 'block ' + l.state + (l.flags.length ? ' flagged' : '') + (l.approved ? ' approved' : '');
      b.dataset.i = l.i; b.title = l.ref + ': ' + l.text;
      b.style.left = (l.start / total * 100) + '%';
      b.style.width = (Math.max(l.end - l.start, 0) / total * 100) + '%';
      b.addEventListener('click', () => play(l.i));
      lane.appendChild(b);
    });
    lanes.appendChild(lane);
  });
  document.querySelectorAll('tr.line').forEach(row => {
    row.addEventListener('click', e => { if (e.target.tagName !== 'AUDIO') play(+row.dataset.i); });
    row.addEventListener('keydown', e => { if (e.key === 'Enter') play(+row.dataset.i); });
  });
  canvas.addEventListener('click', e => {
    if (!master) return;
    const r = canvas.getBoundingClientRect();
    master.currentTime = (e.clientX - r.left) / r.width * total;
    stop(); master.play().catch(() => {});
  });
  if (master) {
    master.addEventListener('timeupdate', () => {
      draw(master.currentTime);
      const i = data.lines.findIndex(l => l.state !== 'missing' && master.currentTime >= l.start
                                          && master.currentTime < l.end);
      if (i >= 0) mark(i);
    });
  }
  window.addEventListener('resize', () => { draw(); ruler(); });
  draw(); ruler();
  document.body.dataset.ready = 'true';
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; media-src 'self' file: data:; img-src data:">
<title>{title}: review</title><style>{style}</style></head>
<body>
<h1>{title}</h1>
<p class="summary">{summary}</p>
{note}
{master}
<div id="track"><canvas id="ruler" aria-label="time ruler"></canvas>
<canvas id="wave" aria-label="waveform of the track"></canvas>
<div id="markers" aria-label="chapter markers"></div></div>
<div id="lanes" aria-label="speaker lanes"></div>
<table id="lines"><thead><tr><th>line</th><th>speaker</th><th>text (and as read)</th><th>duration</th>
<th>state</th><th>approved</th><th>take</th><th>flags</th><th>stem</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script type="application/json" id="review-data">{payload}</script>
<script>{script}</script>
</body></html>
"""
