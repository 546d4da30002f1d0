// The studio page: the project's lines, the selected line's panel, actions and keys.
// Every action is one request to the studio, which calls the library function its CLI command calls;
// the page then reads the whole state again. Nothing is fetched from anywhere but the studio.
(function () {
  'use strict';
  const token = new URLSearchParams(location.search).get('token') || '';
  const $ = id => document.getElementById(id);
  const W = window.StudioWave;
  let state = null, selected = 0, takes = null, polling = null, lastJob = null;

  function url(path, params) {
    const q = new URLSearchParams(params || {}); q.set('token', token);
    return path + '?' + q.toString();
  }

  async function call(path, body, params) {
    const options = { headers: { 'X-Studio-Token': token } };
    if (body !== undefined) {
      options.method = 'POST'; options.body = JSON.stringify(body);
      options.headers['Content-Type'] = 'application/json';
    }
    const response = await fetch(url(path, params), options);
    const data = await response.json().catch(() => ({ error: 'the studio answered ' + response.status }));
    if (!response.ok) {
      const error = new Error(data.error || ('HTTP ' + response.status));
      error.hint = data.hint; error.status = response.status; throw error;
    }
    return data;
  }

  function say(text, isError) {
    const box = $('message');
    box.hidden = !text; box.textContent = text || '';
    box.classList.toggle('error', !!isError);
    document.body.dataset.message = text || '';
  }

  function fail(error) {
    say(error.message + (error.hint ? ' (' + error.hint + ')' : ''), true);
    document.body.dataset.lastStatus = String(error.status || 0);
  }

  async function act(path, body, done) {
    try {
      const data = await call(path, Object.assign({ sha: state && state.sha }, body));
      say('');
      document.body.dataset.lastStatus = '200';
      if (done) done(data);
      if (data && data.state === 'running') watch(); else await refresh();
      return data;
    } catch (error) { fail(error); return null; }
  }

  function line() { return state && state.lines[selected]; }

  function keyAudio(l) { return l && l.cached && l.key ? url('/audio/key/' + l.key) : ''; }

  function seconds(l) {
    return l.start !== null && l.end !== null ? (l.end - l.start).toFixed(1) + ' s' : '';
  }

  function badge(text, kind) {
    const b = document.createElement('span'); b.className = 'badge ' + (kind || ''); b.textContent = text; return b;
  }

  function row(l) {
    const tr = document.createElement('tr');
    tr.className = 'line ' + l.state + (l.i === selected ? ' selected' : '');
    tr.dataset.i = l.i; tr.dataset.ref = l.ref;
    const cells = ['ref', 'speaker', 'text', 'state', 'marks', 'play'].map(name => {
      const td = document.createElement('td'); td.className = name; tr.appendChild(td); return td;
    });
    cells[0].textContent = l.ref; if (l.id) cells[0].appendChild(badge('id ' + l.id));
    cells[1].textContent = state.names[l.speaker] || l.speaker;
    const text = document.createElement('div'); text.className = 'written'; text.textContent = l.text;
    cells[2].appendChild(text);
    if (l.spoken !== l.text) {
      const spoken = document.createElement('div'); spoken.className = 'spoken'; spoken.textContent = l.spoken;
      cells[2].appendChild(spoken);
    }
    cells[3].textContent = l.state; cells[3].classList.add(l.state);
    if (l.approved) cells[4].appendChild(badge('approved', 'approved'));
    if (l.changed_since_approval) cells[4].appendChild(badge('changed since approval', 'changed'));
    if (l.context_changed) cells[4].appendChild(badge('context changed', 'changed'));
    if (l.take) cells[4].appendChild(badge('take ' + l.take, 'take'));
    if (l.pick_changes && l.pick_changes.length) {
      cells[4].appendChild(badge('take made under other ' + l.pick_changes.join(', '), 'changed'));
    }
    if (l.reasons && l.reasons.length) cells[4].appendChild(badge('next render generates it: ' + l.reasons.join(', '), 'changed'));
    l.flags.forEach(f => cells[4].appendChild(badge(f, 'flag')));
    const play = document.createElement('button');
    play.type = 'button'; play.className = 'play'; play.disabled = !keyAudio(l);
    play.textContent = '\u25B6 ' + (seconds(l) || (l.cached ? 'play' : 'none'));
    play.addEventListener('click', e => { e.stopPropagation(); select(l.i); toggle(); });
    cells[5].appendChild(play);
    tr.addEventListener('click', () => select(l.i));
    return tr;
  }

  function drawTimeline(at) {
    const total = state.build.duration;
    W.ruler($('ruler'), total);
    W.wave($('wave'), state.peaks, total, at);
  }

  function draw() {
    $('title').textContent = state.title; document.title = state.title + ': studio';
    const counts = Object.entries(state.counts).filter(e => e[1]).map(e => e[1] + ' ' + e[0]).join(', ');
    $('summary').textContent = state.lines.length + ' lines: ' + counts + (state.marks.approved ?
      ', ' + state.marks.approved + ' approved' : '') + (state.build.current ? '; the build is current' : '')
      + (state.model_loaded ? '' : '; the model loads when a line is generated');
    $('lock').hidden = !state.lock; $('lock').textContent = state.lock ? 'Locked: ' + state.lock : '';
    const master = $('master');
    const src = state.build.master && state.build.in_project ? url('/files/' + state.build.master,
      { v: state.build.rendered_at || '' }) : '';
    if (src && master.dataset.src !== src) { master.src = src; master.dataset.src = src; }
    master.hidden = !src;
    drawTimeline();
    W.markers($('markers'), state.sections, state.build.duration);
    W.lanes($('lanes'), state, selected, i => { select(i); toggle(); });
    const body = $('lines').tBodies[0]; body.textContent = '';
    state.lines.forEach(l => body.appendChild(row(l)));
    const snaps = $('snapshots'); snaps.textContent = '';
    state.snapshots.slice().reverse().forEach(s => {
      const li = document.createElement('li');
      const code = document.createElement('code'); code.textContent = s.id; li.appendChild(code);
      li.appendChild(document.createTextNode(' ' + (s.lines || 0) + ' lines, ' + (s.generated || 0) + ' generated '));
      const button = document.createElement('button'); button.type = 'button'; button.textContent = 'restore';
      button.title = 'Write this render\'s outputs again (project restore)';
      button.addEventListener('click', () => act('/api/restore', { snapshot: s.id }));
      const whole = document.createElement('button'); whole.type = 'button'; whole.textContent = '+ project.yaml';
      whole.title = 'Also bring back its project.yaml and lock file (restore --with-project; the current ones are kept as a snapshot)';
      whole.addEventListener('click', () => act('/api/restore', { snapshot: s.id, with_project: true }));
      li.appendChild(button); li.appendChild(whole); snaps.appendChild(li);
    });
    panel();
  }

  function panel() {
    const l = line();
    if (!l) return;
    document.body.dataset.selected = l.ref;
    $('panel-ref').textContent = l.ref + (l.id ? ' (' + l.id + ')' : '') + ' \u2014 ' + (state.names[l.speaker] || l.speaker);
    $('panel-text').textContent = l.text;
    $('panel-spoken').textContent = l.spoken; $('panel-spoken').hidden = l.spoken === l.text;
    const audio = $('panel-audio'), src = keyAudio(l);
    if (audio.dataset.src !== src) { audio.src = src; audio.dataset.src = src; }
    $('approve').textContent = (l.approved ? 'Unapprove' : 'Approve') + ' (A)';
    $('approve').disabled = !l.cached;
    drawTakes();
  }

  function drawTakes() {
    const list = $('takes'); list.textContent = ''; $('uses').textContent = '';
    const l = line();
    if (!takes || !l || takes.ref !== l.ref) return;
    takes.takes.forEach(t => {
      const li = document.createElement('li'); li.value = t.take; li.dataset.take = t.take;
      li.className = t.picked ? 'picked' : '';
      li.appendChild(document.createTextNode('seed ' + t.seed + ', ' + t.seconds.toFixed(1) + ' s'
        + (t.flags && t.flags.length ? ', flagged' : '') + (t.picked ? ' (picked)' : '')
        + (t.changes && t.changes.length ? ', made under other ' + t.changes.join(', ') : '') + ' '));
      const button = document.createElement('button'); button.type = 'button';
      button.textContent = 'pick (' + t.take + ')'; button.addEventListener('click', () => pick(t.take));
      li.appendChild(button);
      if (t.href || (t.cached && t.key)) {
        const audio = document.createElement('audio'); audio.controls = true; audio.preload = 'metadata';
        audio.src = t.href ? url('/files/' + t.href) : url('/audio/key/' + t.key);
        li.appendChild(audio);
      }
      list.appendChild(li);
    });
    if (!takes.takes.length) list.appendChild(document.createTextNode('none yet: T makes some'));
    $('uses').textContent = takes.uses && takes.uses.says ? 'The next render uses ' + takes.uses.says + '.' : '';
  }

  async function loadTakes() {
    const l = line();
    if (!l) return;
    try { takes = await call('/api/takes', undefined, { ref: l.ref }); } catch (error) { takes = null; }
    drawTakes();
  }

  async function refresh() {
    try {
      state = await call('/api/state');
      selected = Math.min(selected, Math.max(0, state.lines.length - 1));
      draw(); await loadTakes();
      showJob(state.job);
      if (state.job && state.job.state === 'running') watch();
      document.body.dataset.sha = state.sha;
      document.body.dataset.ready = 'true';
    } catch (error) { fail(error); }
  }

  function select(i) {
    if (!state || i < 0 || i >= state.lines.length) return;
    const changed = i !== selected; selected = i;
    document.querySelectorAll('tr.line.selected, .block.selected').forEach(e => e.classList.remove('selected'));
    document.querySelectorAll('tr.line[data-i="' + i + '"], .block[data-i="' + i + '"]')
      .forEach(e => e.classList.add('selected'));
    const tr = document.querySelector('tr.line[data-i="' + i + '"]');
    if (tr && tr.scrollIntoView) tr.scrollIntoView({ block: 'nearest' });
    document.body.dataset.selected = state.lines[i].ref;
    if (changed) { stopAll(); takes = null; panel(); loadTakes(); }
  }

  function stopAll() { document.querySelectorAll('audio').forEach(a => { if (!a.paused) a.pause(); }); }

  function toggle() {
    const l = line(), player = $('player'), src = keyAudio(l);
    if (!src) return;
    if (player.dataset.src === src && !player.paused) { player.pause(); return; }
    stopAll();
    if (player.dataset.src !== src) { player.src = src; player.dataset.src = src; }
    player.play().then(() => { document.body.dataset.played = l.ref; }).catch(() => {});
    if (l.start !== null) drawTimeline(l.start);
  }

  function showJob(job) {
    const box = $('job');
    if (!job) { box.hidden = true; return; }
    box.hidden = false;
    const p = job.progress || {};
    const what = job.kind + ' ' + job.what;
    if (job.state === 'running') {
      const stage = p.stage === 'starting' && !state.model_loaded ? 'loading the model' : (p.stage || '');
      $('job-text').textContent = what + ': ' + stage + ' ' + (p.done || 0) + '/' + (p.lines || 0) + ' lines'
        + (p.seconds_made ? ', ' + p.seconds_made + ' s of audio made' : '');
      $('job-bar').value = p.lines ? p.done / p.lines : 0;
    } else if (job.state === 'done') {
      $('job-text').textContent = what + ': done'; $('job-bar').value = 1;
    } else {
      $('job-text').textContent = what + ': failed'; $('job-bar').value = 0;
    }
    document.body.dataset.job = job.id + ':' + job.state;
  }

  function watch() {
    if (polling) return;
    polling = setInterval(async () => {
      let job;
      try { job = (await call('/api/job')).job; } catch (error) { fail(error); return; }
      if (!job || job.state === 'running') { showJob(job); return; }
      clearInterval(polling); polling = null;
      if (lastJob !== job.id) {
        lastJob = job.id;
        if (job.state === 'failed') fail({ message: job.error, hint: job.hint, status: job.status });
        else say('');
      }
      await refresh();  // shows the finished job last: data-job says done once the page is redrawn
    }, 250);
  }

  const approve = () => { const l = line(); if (l) act('/api/approve', { ref: l.ref, approved: !l.approved }); };
  const makeTakes = () => {
    const l = line(), count = Math.min(9, Math.max(1, parseInt($('take-count').value, 10) || 3));
    if (l) act('/api/takes', { ref: l.ref, count });
  };
  function playFrom() {  // the master from the selected line on
    const l = line(), master = $('master');
    if (!l || l.start === null || !master.src) return;
    stopAll(); master.currentTime = l.start; master.play().catch(() => {});
    document.body.dataset.played = 'master@' + l.ref;
  }
  const rerender = () => { const l = line(); if (l) act('/api/render', { lines: [l.ref] }); };
  const pick = n => { const l = line(); if (l) act('/api/pick', { ref: l.ref, take: n }); };

  function openEditor() {
    const l = line();
    if (!l) return;
    $('editor').hidden = false;
    $('edit-text').value = l.text;
    $('edit-scene').value = l.scene || ''; $('edit-seed').value = l.seed === null ? '' : l.seed;
    $('edit-pause').value = l.pause === null ? '' : l.pause;
    $('edit-text').focus(); $('edit-text').select();
  }

  async function saveEdit() {
    const l = line();
    const fields = [['text', $('edit-text').value], ['scene', $('edit-scene').value],
                    ['seed', $('edit-seed').value], ['pause', $('edit-pause').value]];
    const was = { text: l.text, scene: l.scene || '', seed: l.seed === null ? '' : String(l.seed),
                  pause: l.pause === null ? '' : String(l.pause) };
    for (const [field, value] of fields) {
      if (String(value) === was[field]) continue;
      const done = await act('/api/edit', { ref: l.ref, field, value: value.trim() === '' ? null : value });
      if (!done) return;
    }
    $('editor').hidden = true;
    document.activeElement.blur();
  }

  function help(show) { $('help').hidden = show === undefined ? !$('help').hidden : !show; }

  document.addEventListener('keydown', e => {
    if (e.target.closest('input, textarea')) {
      if (e.key === 'Escape') { $('editor').hidden = true; e.target.blur(); }
      else if (e.key === 'Enter' && !e.shiftKey && e.target.closest('#editor')) { e.preventDefault(); saveEdit(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || !state) return;
    const key = e.key;
    if (key === ' ') { e.preventDefault(); toggle(); }
    else if (key === 'j' || key === 'J' || key === 'ArrowDown') { e.preventDefault(); select(selected + 1); }
    else if (key === 'k' || key === 'K' || key === 'ArrowUp') { e.preventDefault(); select(selected - 1); }
    else if (key === 'a' || key === 'A') approve();
    else if (key === 'p' || key === 'P') playFrom();
    else if (key === 't' || key === 'T') makeTakes();
    else if (key === 'r' || key === 'R') rerender();
    else if (key === 'e' || key === 'E') { e.preventDefault(); openEditor(); }
    else if (key === '?') help();
    else if (key === 'Escape') help(false);
    else if (/^[0-9]$/.test(key)) pick(Number(key));
  });

  // a clicked button or player gives the focus back, so Space and the letters stay the page's keys
  document.addEventListener('click', e => {
    const focused = e.target.closest && e.target.closest('button, audio');
    if (focused) setTimeout(() => focused.blur(), 0);
  });
  $('approve').addEventListener('click', approve);
  $('make-takes').addEventListener('click', makeTakes);
  $('play-from').addEventListener('click', playFrom);
  $('rerender').addEventListener('click', rerender);
  $('render-section').addEventListener('click', () => { const l = line(); if (l) act('/api/render', { sections: [l.section] }); });
  $('render-all').addEventListener('click', () => act('/api/render', {}));
  $('edit').addEventListener('click', openEditor);
  $('editor').addEventListener('submit', e => { e.preventDefault(); saveEdit(); });
  $('edit-cancel').addEventListener('click', () => { $('editor').hidden = true; });
  $('show-keys').addEventListener('click', () => help());
  $('help-close').addEventListener('click', () => help(false));
  $('wave').addEventListener('click', e => {
    const master = $('master'), total = state && state.build.duration;
    if (!total || !master.src) return;
    const r = $('wave').getBoundingClientRect();
    stopAll(); master.currentTime = (e.clientX - r.left) / r.width * total; master.play().catch(() => {});
  });
  $('master').addEventListener('timeupdate', () => {
    if (!state) return;
    const t = $('master').currentTime;
    drawTimeline(t);
    const now = state.lines.find(l => l.start !== null && t >= l.start && t < l.end);  // the line playing
    document.querySelectorAll('.playing').forEach(e => e.classList.remove('playing'));
    if (now) document.querySelectorAll('[data-i="' + now.i + '"]').forEach(e => e.classList.add('playing'));
  });
  window.addEventListener('resize', () => { if (state) drawTimeline(); });
  refresh();
})();
