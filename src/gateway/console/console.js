// Switchboard console: a read-mostly view of one tenant, straight on the
// public /api/v1 (no framework, no build step). Served under a strict CSP,
// so everything is built with DOM calls and textContent: nothing from the
// API is ever parsed as HTML.

const API = '/api/v1';
const TOKEN_KEY = 'switchboard.token';
const END_STATUSES = new Set(['completed', 'busy', 'no_answer', 'failed', 'canceled', 'rejected']);
// The projection's rule (events::CallStatus::rank): status only moves
// forward, and the first end state (rank 4) is final.
const RANK = { requested: 0, dispatched: 1, ringing: 2, answered: 3 };
const rank = (s) => RANK[s] ?? 4;
// What each call event sets the status to (OriginateClaimed sets none).
const STATUS_OF = {
  OriginateRequested: 'requested', OriginateRejected: 'rejected', OriginateDispatched: 'dispatched',
  OriginateFailed: 'failed', CallRinging: 'ringing', CallAnswered: 'answered',
};
// The tenant's four caps: the rejection's dimension name, the limit field
// of /call-limits, and the counter of /call-limits/usage.
const DIMENSIONS = [
  { dim: 'concurrent', field: 'concurrent_max', used: 'concurrent', label: 'Concurrent calls' },
  { dim: 'calls_per_minute', field: 'calls_per_minute', used: 'calls_last_minute', label: 'Calls per minute' },
  { dim: 'daily_calls', field: 'daily_calls_max', used: 'daily_calls', label: 'Calls today (UTC)' },
  { dim: 'daily_minutes', field: 'daily_minutes_max', used: 'daily_minutes', label: 'Billed minutes today (UTC)' },
];
const MAX_CALLS_SHOWN = 200;
const CAPS_TRAIL = 25; // cap changes shown

const $ = (sel) => document.querySelector(sel);

/** A DOM element: h('td', {class: 'x', dataset: {id: 1}}, 'text', child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children.flat().filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

// Local time, unambiguous whatever the browser's locale: 2026-11-28 14:10:05.
const pad = (n) => String(n).padStart(2, '0');
const fmtTime = (iso) => {
  const d = new Date(iso);
  return iso ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : '';
};
const fmtDateTime = (iso) => {
  const d = new Date(iso);
  return iso ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(iso)}` : '';
};
const short = (id) => (id ? String(id).slice(0, 8) + '…' : '');

// ---------------------------------------------------------------- state

const state = {
  token: null,
  stopped: false, // set on a 401: nothing more is asked with this token
  calls: new Map(), // call_id → call view (the API's shape, kept up to date)
  limits: null,
  etag: null,
  feed: null, // AbortController of the live feed
  timers: [],
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The RFC 9457 problem of a failed response (or the best we can say). */
async function problemOf(res) {
  const text = await res.text().catch(() => '');
  try {
    const p = JSON.parse(text);
    if (p && typeof p === 'object') return p;
  } catch { /* not JSON */ }
  return { title: res.statusText || `HTTP ${res.status}`, status: res.status, detail: text.slice(0, 300) };
}

/** Calls the API with the token; throws ApiError on any non-2xx. */
async function api(path, { method = 'GET', body, headers = {}, signal } = {}) {
  if (!state.token) throw new ApiError(401, { title: 'no token', detail: 'paste an API token above' });
  const init = { method, signal, cache: 'no-store', headers: { Authorization: `Bearer ${state.token}`, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(API + path, init);
  if (!res.ok) {
    const err = new ApiError(res.status, await problemOf(res));
    if (res.status === 401) refuseToken(err);
    throw err;
  }
  return { res, body: res.status === 204 ? null : await res.json() };
}

/** Every item of a list (`{items, next_cursor}`) after `cursor`, up to `maxPages` pages. */
async function listAll(path, params = {}, maxPages = 10, cursor = null) {
  const items = [];
  for (let page = 0; page < maxPages; page++) {
    const q = new URLSearchParams({ limit: '500', ...params });
    if (cursor) q.set('cursor', cursor);
    const { body } = await api(`${path}?${q}`);
    items.push(...body.items);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return items;
}

// ---------------------------------------------------------------- errors

function describe(err) {
  if (!(err instanceof ApiError)) return `Could not reach the API: ${err.message}`;
  const p = err.problem;
  const what = [p.title, p.detail].filter(Boolean).join(' — ');
  if (err.status === 401) return `This token was refused: ${what}. Paste a valid token above.`;
  if (err.status === 403) return `This token may not do this: ${what}.`;
  if (err.status === 412) return `Someone else changed this meanwhile (${what}). It has been reloaded; try again.`;
  return `${err.status} ${what}`;
}

/** Shows an error in a panel (and, for a 403, says so in the banner too). */
function panelError(panel, err) {
  const box = $(`#${panel}-error`);
  const section = box.closest('section');
  if (err == null) {
    box.hidden = true;
    return;
  }
  if (err.name === 'AbortError' || (err instanceof ApiError && err.status === 401)) return;
  box.textContent = describe(err);
  box.hidden = false;
  if (section.dataset.state !== 'loaded') section.dataset.state = 'error';
  if (err instanceof ApiError && err.status === 403) banner(describe(err), 'warn');
}

function banner(text, kind = 'error') {
  const b = $('#token-error');
  b.textContent = text;
  b.dataset.kind = kind;
  b.hidden = !text;
}

/** A 401: stop everything this token runs and ask for another. */
function refuseToken(err) {
  if (state.stopped) return;
  stopAll();
  state.stopped = true;
  banner(describe(err));
  setFeedStatus('stopped', 'feed: stopped');
  for (const s of document.querySelectorAll('main section')) s.dataset.state = 'refused';
  for (const b of document.querySelectorAll('[data-kill]')) b.disabled = true;
  for (const td of document.querySelectorAll('tr.empty td')) td.textContent = 'Waiting for a valid token.';
  $('#token-input').focus();
}

// ---------------------------------------------------------------- token

/**
 * The token: from `#token=…` (then taken out of the address bar, so it is
 * neither bookmarked nor shown), else from this tab's sessionStorage. Never
 * in a query string or a cookie.
 */
function takeToken() {
  const frag = new URLSearchParams(location.hash.slice(1));
  const fromHash = frag.get('token');
  if (fromHash != null) {
    frag.delete('token');
    const rest = frag.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    sessionStorage.setItem(TOKEN_KEY, fromHash.trim());
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function useToken(token) {
  stopAll();
  Object.assign(state, { token, stopped: false, calls: new Map(), limits: null, etag: null,
    capsTrail: eventTail({ type: 'CallLimitsUpdated' }, CAPS_TRAIL + 1), auditTrail: eventTail({}, 50) });
  banner('');
  if (!token) {
    banner('Paste an API token above (or open this page as /console#token=…).', 'info');
    for (const s of document.querySelectorAll('main section')) s.dataset.state = 'idle';
    return;
  }
  start();
}

// ---------------------------------------------------------------- caps

function renderGauges() {
  const box = $('#caps-gauges');
  if (!box.childElementCount) {
    for (const d of DIMENSIONS) {
      const kill = h('button', { type: 'button', class: 'danger small', dataset: { kill: d.field } }, 'Kill switch');
      kill.addEventListener('click', () => killSwitch(d));
      box.append(h('div', { class: 'gauge', dataset: { dimension: d.dim, field: d.field } },
        h('div', { class: 'gauge-label' }, d.label),
        h('div', { class: 'gauge-value' }, '–'),
        h('div', { class: 'bar', role: 'meter', 'aria-label': d.label, 'aria-valuemin': 0 }, h('div', { class: 'fill' })),
        kill));
    }
  }
}

function showCaps(limits, usage) {
  for (const d of DIMENSIONS) {
    const g = $(`#caps-gauges .gauge[data-dimension="${d.dim}"]`);
    const limit = limits[d.field];
    const used = usage ? usage[d.used] : null;
    const pct = limit > 0 && used != null ? Math.min(100, (100 * used) / limit) : 100;
    g.dataset.limit = limit;
    g.dataset.used = used ?? '';
    g.dataset.state = limit === 0 ? 'blocked' : pct >= 100 ? 'full' : pct >= 80 ? 'warn' : 'ok';
    g.querySelector('.gauge-value').textContent =
      limit === 0 ? `${used ?? '–'} / 0 — blocked` : `${used ?? '–'} / ${limit}`;
    const bar = g.querySelector('.bar');
    bar.setAttribute('aria-valuenow', used ?? 0);
    bar.setAttribute('aria-valuemax', limit);
    // CSSOM, not a style attribute: allowed under style-src 'self'.
    g.querySelector('.fill').style.width = `${used == null && limit > 0 ? 0 : pct}%`;
    g.querySelector('[data-kill]').disabled = limit === 0;
  }
  $('#caps-version').textContent = limits.updated_at
    ? `version ${limits.version}, changed ${fmtDateTime(limits.updated_at)}`
    : 'shipped defaults (never changed)';
}

let capsBusy = false;
let capsAgain = false;
async function refreshCaps() {
  if (state.stopped) return;
  if (capsBusy) {
    capsAgain = true; // one more round once this one is done
    return;
  }
  capsBusy = true;
  try {
    const [lim, use] = await Promise.all([api('/call-limits'), api('/call-limits/usage')]);
    state.limits = lim.body;
    state.etag = lim.res.headers.get('ETag');
    showCaps(lim.body, use.body);
    $('#caps').dataset.state = 'loaded';
    panelError('caps', null);
  } catch (err) {
    panelError('caps', err);
  } finally {
    capsBusy = false;
    if (capsAgain) {
      capsAgain = false;
      refreshCaps();
    }
  }
}

/** The call_limits audit trail, each update shown as what it changed. */
async function refreshCapsAudit() {
  try {
    // One more event than shown is kept: the oldest shown row is a diff
    // too. Each event holds all four caps after the update.
    const events = await state.capsTrail();
    const tbody = $('#caps-audit');
    const rows = events.map((e, i) => {
      const prev = events[i - 1]?.data;
      const changes = DIMENSIONS.filter((d) => !prev || prev[d.field] !== e.data[d.field])
        .map((d) => (prev ? `${d.field} ${prev[d.field]} → ${e.data[d.field]}` : `${d.field} = ${e.data[d.field]}`));
      if (!prev && e.version === 1) changes.unshift('first update; caps now:');
      return h('tr', { dataset: { position: e.global_position } },
        h('td', {}, h('time', { datetime: e.recorded_at }, fmtDateTime(e.recorded_at))),
        h('td', {}, e.actor),
        h('td', {}, changes.join(', ').replace(':,', ':') || 'no change'));
    }).slice(events.length > CAPS_TRAIL ? 1 : 0).reverse();
    tbody.replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 3 }, 'Never changed: the shipped defaults apply.'))]));
  } catch (err) {
    panelError('caps', err);
  }
}

async function killSwitch(d) {
  const ok = await confirmDialog(
    `Set “${d.label}” (${d.field}) to 0? Every new call will be refused with 429 until the limit is raised again.`);
  if (!ok) return;
  let failure = null;
  try {
    if (!state.etag) await refreshCaps();
    // If-Match: a change someone made since this page last looked is a
    // 412, not silently overwritten.
    await api('/call-limits', { method: 'PATCH', body: { [d.field]: 0 }, headers: { 'If-Match': state.etag ?? '*' } });
  } catch (err) {
    failure = err;
  }
  await Promise.all([refreshCaps(), refreshCapsAudit(), loadAudit()]);
  // Its own box: the periodic refresh clears #caps-error, not this.
  panelError('kill', failure);
}

/** Resolves true when the in-page dialog is confirmed (not window.confirm). */
function confirmDialog(message) {
  const dlg = $('#confirm-dialog');
  $('#confirm-message').textContent = message;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
    $('#confirm-cancel').focus();
  });
}

// ---------------------------------------------------------------- calls

/** Folds a call view (from the list or GET /calls/{id}) into what we hold. */
function mergeView(v) {
  const held = state.calls.get(v.call_id);
  if (!held) {
    state.calls.set(v.call_id, { ...v, timeline: [...(v.timeline ?? [])] });
    return;
  }
  // The live feed may be ahead of the projection or behind it: keep the
  // union of the two timelines and the further status.
  for (const step of v.timeline ?? []) addStep(held, step);
  const status = pickStatus(held.status, v.status);
  for (const [k, val] of Object.entries(v)) if (val != null && k !== 'timeline') held[k] = val;
  held.status = status;
}

function pickStatus(a, b) {
  if (!a) return b;
  if (!b || rank(a) === 4) return a; // the first end is final
  return rank(b) >= rank(a) ? b : a;
}

function addStep(call, step) {
  if (call.timeline.some((s) => s.type === step.type && Date.parse(s.at) === Date.parse(step.at))) return;
  call.timeline.push(step);
  call.timeline.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
}

/** Applies one event envelope of a call stream, as the projection would. */
function applyCallEvent(env) {
  const id = env.stream_id;
  const d = env.data ?? {};
  let call = state.calls.get(id);
  if (!call) {
    call = { call_id: id, status: null, timeline: [], created_at: env.recorded_at };
    state.calls.set(id, call);
    // Joined mid-call: the rest of the row (numbers, earlier steps) comes
    // from the read side.
    if (env.type !== 'OriginateRequested') fetchCall(id);
  }
  addStep(call, { type: env.type, at: env.recorded_at });
  const next = env.type === 'CallEnded' ? d.status : STATUS_OF[env.type];
  if (next) call.status = pickStatus(call.status, next);
  switch (env.type) {
    case 'OriginateRequested':
      Object.assign(call, { from_number: d.from_number, to_number: d.to_number, agent_id: d.agent_id,
        provider: d.provider, session_id: d.session_id, created_at: env.recorded_at });
      break;
    case 'OriginateRejected': call.rejection = d; break;
    case 'OriginateFailed': call.error = d.error; break;
    case 'OriginateDispatched': call.provider_call_id = d.provider_call_id; break;
    case 'CallAnswered': call.answered_at = env.recorded_at; break;
    case 'CallEnded':
      Object.assign(call, { ended_at: env.recorded_at, duration_s: d.duration_s,
        billed_minutes: d.billed_minutes, hangup_cause: d.hangup_cause });
      break;
  }
  renderCallsSoon();
}

async function fetchCall(id) {
  try {
    mergeView((await api(`/calls/${encodeURIComponent(id)}`)).body);
    renderCallsSoon();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) panelError('calls', err);
  }
}

async function loadCalls() {
  try {
    const { body } = await api('/calls?limit=100');
    for (const v of body.items) mergeView(v);
    $('#calls-panel').dataset.state = 'loaded';
    panelError('calls', null);
    renderCallsSoon();
  } catch (err) {
    panelError('calls', err);
  }
}

let renderQueued = false;
function renderCallsSoon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderCalls();
  });
}

function renderCalls() {
  const when = (c) => Date.parse(c.created_at) || 0;
  const calls = [...state.calls.values()].sort((a, b) => when(b) - when(a) || (a.call_id < b.call_id ? 1 : -1));
  for (const old of calls.slice(MAX_CALLS_SHOWN)) state.calls.delete(old.call_id);
  const shown = calls.slice(0, MAX_CALLS_SHOWN);
  const live = shown.filter((c) => !END_STATUSES.has(c.status)).length;
  $('#calls-count').textContent = `${live} live, ${shown.length - live} ended`;
  const rows = shown.map((c) => {
    const t0 = Date.parse(c.timeline[0]?.at);
    const steps = c.timeline.map((s) => h('li', { dataset: { type: s.type } },
      h('span', { class: 'ev' }, s.type),
      h('time', { datetime: s.at, title: fmtDateTime(s.at) },
        Number.isNaN(t0) || s === c.timeline[0] ? fmtTime(s.at) : `+${((Date.parse(s.at) - t0) / 1000).toFixed(2)}s`)));
    const why = c.rejection
      ? `refused by ${c.rejection.dimension}${c.rejection.limit != null ? ` (limit ${c.rejection.limit})` : ''}`
      : c.error ?? c.hangup_cause ?? '';
    return h('tr', { dataset: { callId: c.call_id, status: c.status ?? 'unknown' } },
      h('td', {}, h('time', { datetime: c.created_at, title: c.call_id }, fmtTime(c.created_at)),
        h('div', { class: 'muted small mono' }, short(c.call_id))),
      h('td', { class: 'mono' }, `${c.from_number ?? '…'} → ${c.to_number ?? '…'}`),
      h('td', {}, h('span', { class: 'status', dataset: { status: c.status ?? 'unknown' } }, (c.status ?? '…').replace('_', ' ')),
        why && h('div', { class: 'muted small' }, why)),
      h('td', {}, h('ol', { class: 'timeline' }, steps)),
      h('td', { class: 'num' }, c.duration_s != null ? `${c.duration_s} s (${c.billed_minutes} min)` : ''));
  });
  $('#calls tbody').replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No calls yet.'))]));
}

// ---------------------------------------------------------------- live feed

function setFeedStatus(s, text) {
  const pill = $('#feed-status');
  pill.dataset.state = s;
  pill.textContent = text;
}

/**
 * Follows GET /events/stream?stream_type=call. EventSource cannot send an
 * Authorization header, so the stream is read with fetch and parsed here.
 * After a drop it reconnects with Last-Event-ID (no gap, no duplicate),
 * backing off 1 s, 2 s, … 30 s.
 */
async function followFeed() {
  const ctl = new AbortController();
  state.feed = ctl;
  let lastId = null;
  let delay = 1000;
  while (!ctl.signal.aborted && !state.stopped) {
    const opened = Date.now();
    try {
      await readFeed(ctl, lastId, (ev) => {
        if (ev.id) lastId = ev.id;
        if (ev.event === 'overflow' || ev.event === 'closing' || ev.event === 'unavailable') {
          // The server ends the stream and names where to resume.
          const r = JSON.parse(ev.data || '{}').resume_after;
          if (r) lastId = r;
          return;
        }
        if (!ev.data) return;
        const env = JSON.parse(ev.data);
        if (env.stream_type === 'call') {
          applyCallEvent(env);
          capsSoon();
          auditSoon();
        }
      }, async () => {
        setFeedStatus('live', 'feed: live');
        // Connected first, then the list: whatever happens meanwhile is in
        // one or the other, and mergeView folds the two together.
        if (lastId == null) await loadCalls();
      });
    } catch (err) {
      if (ctl.signal.aborted || state.stopped) return;
      // Never connected: show the calls list anyway, without live updates.
      if ($('#calls-panel').dataset.state !== 'loaded') await loadCalls();
      if (err instanceof ApiError && err.status !== 429 && err.status < 500) {
        // A 4xx will not heal by retrying (e.g. no audit:read scope): poll
        // the calls list instead.
        panelError('calls', err);
        setFeedStatus('stopped', 'feed: unavailable, polling');
        state.timers.push(setInterval(loadCalls, 5000));
        return;
      }
    }
    if (ctl.signal.aborted || state.stopped) return;
    // Back to 1 s only after a long, healthy run: a server that accepts and
    // drops at once still gets backed off.
    if (Date.now() - opened > 30_000) delay = 1000;
    setFeedStatus('reconnecting', `feed: reconnecting in ${Math.round(delay / 1000)} s`);
    await sleep(delay, ctl.signal);
    delay = Math.min(delay * 2, 30_000);
  }
}

async function readFeed(ctl, lastId, onEvent, onOpen) {
  const headers = { Accept: 'text/event-stream' };
  if (lastId != null) headers['Last-Event-ID'] = lastId;
  const { res } = await apiStream('/events/stream?stream_type=call', headers, ctl.signal);
  await onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  // A connection that went silent (no heartbeat for a minute) is dead.
  let watchdog;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => reader.cancel().catch(() => {}), 60_000);
  };
  let buf = '';
  let ev = { id: null, event: 'message', data: [] };
  try {
    for (arm(); ; arm()) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      // SSE lines end in \n, \r\n or \r; keep the unfinished tail.
      const lines = buf.split(/\r\n|\r|\n/);
      buf = lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (ev.data.length || ev.id) onEvent({ id: ev.id, event: ev.event, data: ev.data.join('\n') });
          ev = { id: null, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: the heartbeat
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'data') ev.data.push(value);
        else if (field === 'event') ev.event = value;
        else if (field === 'id') ev.id = value;
      }
    }
  } finally {
    clearTimeout(watchdog);
  }
}

/** Like api() but hands back the open response for streaming. */
async function apiStream(path, headers, signal) {
  const res = await fetch(API + path, { headers: { Authorization: `Bearer ${state.token}`, ...headers }, signal, cache: 'no-store' });
  if (!res.ok) {
    const err = new ApiError(res.status, await problemOf(res));
    if (res.status === 401) refuseToken(err);
    throw err;
  }
  return { res };
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/** `fn`, run once `ms` after the last of a burst of calls. */
function debounce(fn, ms) {
  let t = null;
  return () => {
    clearTimeout(t);
    t = setTimeout(fn, ms);
  };
}
const capsSoon = debounce(() => refreshCaps(), 250);
const auditSoon = debounce(() => loadAudit(), 1000);

// ---------------------------------------------------------------- providers, numbers

async function loadProviders() {
  try {
    const items = await listAll('/telephony/providers');
    state.providers = new Map(items.map((p) => [p.id, p]));
    const rows = items.map((p) => h('tr', { dataset: { providerId: p.id } },
      h('td', {}, p.label, h('div', { class: 'muted small mono' }, short(p.id))),
      h('td', {}, p.provider),
      h('td', { class: 'mono small' }, Object.entries(p.credentials ?? {}).map(([k, v]) => h('div', {}, `${k}: ${v}`)))));
    $('#providers tbody').replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 3 }, 'No providers.'))]));
    $('#providers').dataset.state = 'loaded';
    panelError('providers', null);
  } catch (err) {
    panelError('providers', err);
  }
}

async function loadNumbers() {
  try {
    const items = await listAll('/telephony/numbers');
    const rows = items.map((n) => h('tr', { dataset: { numberId: n.id, e164: n.e164 } },
      h('td', { class: 'mono' }, n.e164),
      h('td', {}, state.providers?.get(n.credentials_id)?.label ?? n.provider, h('div', { class: 'muted small' }, n.provider)),
      h('td', { class: 'mono small', title: n.agent_id ?? '' }, n.agent_id ? short(n.agent_id) : h('span', { class: 'muted' }, 'none')),
      h('td', {}, [n.outbound_enabled && 'out', n.inbound_enabled && 'in'].filter(Boolean).join(' + ') || 'disabled'),
      h('td', { class: 'num' }, n.daily_calls_max ?? h('span', { class: 'muted' }, 'tenant’s'))));
    $('#numbers tbody').replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No numbers.'))]));
    $('#numbers').dataset.state = 'loaded';
    panelError('numbers', null);
  } catch (err) {
    panelError('numbers', err);
  }
}

// ---------------------------------------------------------------- audit

/**
 * The newest `keep` events matching `params`. The audit list runs oldest
 * first with no reverse order, so walk forward from a recent `since`,
 * widening the window only while it holds too few events.
 */
async function latestEvents(params, keep) {
  const windows = [3_600e3, 86_400e3, 30 * 86_400e3, null];
  let found = [];
  for (const w of windows) {
    const q = w == null ? params : { ...params, since: new Date(Date.now() - w).toISOString() };
    found = (await listAll('/audit/events', q, 20)).slice(-keep);
    if (found.length >= keep) break;
  }
  return found;
}

/**
 * A refresher of the newest `keep` events matching `params`: the first
 * call finds them, later ones ask only for what came after the last one.
 */
function eventTail(params, keep) {
  let events = [];
  const run = async () => {
    const last = events.at(-1)?.global_position;
    const more = last == null
      ? await latestEvents(params, keep)
      : await listAll('/audit/events', params, 20, String(last));
    events = events.concat(more).slice(-keep);
    return events;
  };
  // One at a time, so two refreshes never append the same events twice.
  let chain = Promise.resolve();
  return () => (chain = chain.then(run, run));
}

async function loadAudit() {
  try {
    const events = [...(await state.auditTrail())].reverse();
    const rows = events.map((e) => h('tr', { dataset: { position: e.global_position, type: e.type } },
      h('td', { class: 'num muted' }, e.global_position),
      h('td', {}, h('time', { datetime: e.recorded_at }, fmtDateTime(e.recorded_at))),
      h('td', {}, e.actor),
      h('td', { class: 'small' }, e.stream_type, h('div', { class: 'muted mono' }, `${short(e.stream_id)} v${e.version}`)),
      h('td', {}, e.type),
      h('td', { class: 'mono small data-cell', title: JSON.stringify(e.data) }, JSON.stringify(e.data))));
    $('#audit-rows').replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 6 }, 'No events yet.'))]));
    $('#audit').dataset.state = 'loaded';
    panelError('audit', null);
  } catch (err) {
    panelError('audit', err);
  }
}

async function verifyChain() {
  const out = $('#verify-result');
  out.dataset.ok = '';
  out.textContent = 'hash chain: checking…';
  try {
    const { body: r } = await api('/audit/verify');
    out.dataset.ok = String(r.ok);
    out.textContent = r.ok
      ? `hash chain intact: ${r.events_checked} events in ${r.streams_checked} streams`
      : `hash chain BROKEN in ${r.breaks.length} stream(s): ` +
        r.breaks.map((b) => `${short(b.stream_id)} v${b.version} ${b.kind} (${b.detail})`).join('; ');
  } catch (err) {
    out.dataset.ok = 'error';
    out.textContent = 'hash chain: not checked';
    panelError('audit', err);
  }
}

// ---------------------------------------------------------------- wiring

function stopAll() {
  state.feed?.abort();
  state.feed = null;
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
}

async function start() {
  renderGauges();
  for (const s of document.querySelectorAll('main section')) s.dataset.state = 'loading';
  setFeedStatus('connecting', 'feed: connecting');
  // One request first: a refused token then shows one clear message
  // instead of a page of failures.
  await refreshCaps();
  if (state.stopped) return;
  await loadProviders(); // numbers show their provider's label
  loadNumbers();
  refreshCapsAudit();
  loadAudit();
  verifyChain();
  followFeed();
  state.timers.push(setInterval(refreshCaps, 2000));
  state.timers.push(setInterval(() => { refreshCapsAudit(); loadAudit(); }, 15000));
}

$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('#token-input').value.trim();
  $('#token-input').value = '';
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  useToken(t || sessionStorage.getItem(TOKEN_KEY));
});
$('#token-forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  useToken(null);
});
$('#verify-run').addEventListener('click', verifyChain);
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) useToken(takeToken());
});

useToken(takeToken());
