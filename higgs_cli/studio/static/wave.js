// The master's timeline: time ruler, waveform (peaks computed by the studio), chapter/section
// markers and a lane per speaker. Exposes window.StudioWave; draws only what it is given.
(function () {
  'use strict';
  const STEPS = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

  function clock(t) {
    const m = Math.floor(t / 60), s = t - m * 60;
    return m + ':' + (s < 10 ? '0' : '') + (Number.isInteger(s) ? s : s.toFixed(1));
  }

  function size(canvas) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    return ratio;
  }

  function ruler(canvas, total) {
    const ratio = size(canvas), ctx = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
    ctx.fillStyle = '#fafafa'; ctx.fillRect(0, 0, w, h);
    if (!(total > 0)) return;
    const step = STEPS.find(s => s / total * w >= 70 * ratio) || STEPS[STEPS.length - 1];
    ctx.fillStyle = '#555'; ctx.font = (11 * ratio) + 'px system-ui,sans-serif'; ctx.textBaseline = 'top';
    for (let t = 0; t <= total + 1e-9; t += step) {
      const x = Math.round(t / total * (w - 1));
      ctx.fillRect(x, h * 0.55, Math.max(1, ratio), h * 0.45);
      ctx.fillText(clock(t), x + 3 * ratio, 2 * ratio);
    }
    for (let t = step / 2; t < total; t += step) {  // minor ticks
      ctx.fillRect(Math.round(t / total * (w - 1)), h * 0.8, Math.max(1, ratio), h * 0.2);
    }
  }

  function wave(canvas, peaks, total, at) {
    size(canvas);
    const ctx = canvas.getContext('2d'), w = canvas.width, h = canvas.height;
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = '#ddd'; ctx.fillRect(0, Math.floor(h / 2), w, 1);
    const n = peaks.length;
    if (n) {
      ctx.fillStyle = '#3b6ea8';
      for (let x = 0; x < w; x++) {
        const p = peaks[Math.min(n - 1, Math.floor(x * n / w))];
        const top = (1 - p[1]) * h / 2, bottom = (1 - p[0]) * h / 2;
        ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
      }
    }
    if (at !== undefined && total > 0) { ctx.fillStyle = '#c33'; ctx.fillRect(at / total * w, 0, 2, h); }
  }

  function markers(box, sections, total) {
    box.textContent = '';
    if (!(total > 0)) return;
    sections.filter(s => s.start !== null && s.start !== undefined).forEach(s => {
      const m = document.createElement('div'); m.className = 'marker';
      m.style.left = (s.start / total * 100) + '%'; m.dataset.section = s.id;
      const label = document.createElement('span'); label.textContent = s.title; m.appendChild(label);
      box.appendChild(m);
    });
  }

  function lanes(box, state, selected, onPick) {
    box.textContent = '';
    const total = state.build.duration;
    state.speakers.forEach(name => {
      const lane = document.createElement('div'); lane.className = 'lane'; lane.dataset.speaker = name;
      const label = document.createElement('span'); label.className = 'lane-name';
      label.textContent = state.names[name] || name || '(no speaker)'; lane.appendChild(label);
      state.lines.filter(l => l.speaker === name && l.start !== null && total > 0).forEach(l => {
        const b = document.createElement('div');
        b.className = 'block' + (l.approved ? ' approved' : '') + (l.flags.length ? ' flagged' : '')
          + (l.i === selected ? ' selected' : '');
        b.dataset.i = l.i; b.title = l.ref + ': ' + l.text;
        b.style.left = (l.start / total * 100) + '%';
        b.style.width = (Math.max(l.end - l.start, 0) / total * 100) + '%';
        b.addEventListener('click', () => onPick(l.i));
        lane.appendChild(b);
      });
      box.appendChild(lane);
    });
  }

  window.StudioWave = { clock, ruler, wave, markers, lanes };
})();
