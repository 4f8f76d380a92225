// The dashboard: sign-in, the period controls, the cards, the charts, the
// breakdown, the latest responses (live) and the settings form. Every
// piece of data comes from the public GraphQL API (see queries.js).
// Text from the API is only ever set with textContent, never as HTML.

import { Client, Live } from './graphql.js';
import * as Q from './queries.js';
import * as D from './dates.js';

const KEY_STORE = 'csat.apiKey';
const PREFS_STORE = 'csat.dashboard';
const PAGE_SIZE = 10;
const COLORS = {
  responses: '#2563eb',
  average: '#d97706',
  rating: { 1: '#dc2626', 2: '#ea580c', 3: '#ca8a04', 4: '#65a30d', 5: '#15803d' },
  grid: '#e5e7eb',
  text: '#4b5563',
};

const $ = (sel) => document.querySelector(sel);

const state = {
  client: null,
  live: null,
  preset: '30',
  start: '',
  end: '',
  tz: D.browserZone(),
  granularity: 'DAY',
  by: 'byAgent',
  analytics: null,
  list: { cursor: null, dir: 'first', page: null },
  charts: {},
  loadSeq: 0,
  refreshTimer: 0,
};

// ---------- small DOM helpers ----------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function announce(msg) {
  const a = $('#announcer');
  a.textContent = '';
  // A fresh text node makes screen readers speak a repeated message too.
  setTimeout(() => { a.textContent = msg; }, 50);
}

const fmtInt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const fmt1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

const num = (v) => (v == null || Number.isNaN(v) ? null : Number(v));
const pct = (v) => (num(v) == null ? '–' : fmt1.format(v) + '%');
const avg = (v) => (num(v) == null ? '–' : fmt1.format(v)); // the API rounds to one decimal
const rateOf = (sent, responses) => (sent > 0 ? (100 * responses) / sent : null);

// ---------- preferences (never the key) ----------

function loadPrefs() {
  try {
    const p = JSON.parse(localStorage.getItem(PREFS_STORE) || '{}');
    if (['7', '30', '90', 'custom'].includes(p.preset)) state.preset = p.preset;
    if (p.tz && D.timeZones().includes(p.tz)) state.tz = p.tz;
    if (['DAY', 'WEEK', 'MONTH'].includes(p.granularity)) state.granularity = p.granularity;
    if (['byAgent', 'byTeam', 'byChannel'].includes(p.by)) state.by = p.by;
    if (D.isDate(p.start) && D.isDate(p.end)) { state.start = p.start; state.end = p.end; }
  } catch {
    // Unreadable preferences: keep the defaults.
  }
}

function savePrefs() {
  const { preset, tz, granularity, by, start, end } = state;
  try {
    localStorage.setItem(PREFS_STORE, JSON.stringify({ preset, tz, granularity, by, start, end }));
  } catch {
    // Storage full or disabled: preferences are a convenience only.
  }
}

// ---------- sign-in ----------

function showSignIn(message) {
  stopLive();
  state.client = null;
  sessionStorage.removeItem(KEY_STORE);
  $('#dashboard').hidden = true;
  $('#signout').hidden = true;
  $('#live').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message || '';
  $('#apikey').setAttribute('aria-invalid', message ? 'true' : 'false');
  $('#apikey').focus();
}

async function signIn(key) {
  const client = new Client(new URL('../graphql', location.href).href, key);
  await client.request(Q.SIGN_IN);
  sessionStorage.setItem(KEY_STORE, key);
  state.client = client;
  $('#signin').hidden = true;
  $('#dashboard').hidden = false;
  $('#signout').hidden = false;
  $('#apikey').value = '';
  startLive(key);
  await Promise.all([loadAnalytics(), loadList(), loadConfig()]);
}

function onSignInSubmit(ev) {
  ev.preventDefault();
  const key = $('#apikey').value.trim();
  if (!key) {
    $('#signin-error').textContent = 'Enter an API key.';
    $('#apikey').setAttribute('aria-invalid', 'true');
    return;
  }
  const button = ev.submitter || $('#signin-form button');
  button.disabled = true;
  signIn(key)
    .catch((err) => {
      const msg = err.code === 'UNAUTHENTICATED' ? 'This API key is not valid.'
        : err.code === 'FORBIDDEN' ? 'This API key lacks the csat:read scope.'
          : err.message;
      showSignIn(msg);
    })
    .finally(() => { button.disabled = false; });
}

// handleAuth signs out when the key stopped working; it reports whether
// it did.
function handleAuth(err) {
  if (err && err.code === 'UNAUTHENTICATED') {
    showSignIn('Your API key is no longer accepted. Sign in again.');
    return true;
  }
  return false;
}

// ---------- period ----------

function currentRange() {
  if (state.preset === 'custom' && D.isDate(state.start) && D.isDate(state.end)) {
    return { start: state.start, end: state.end };
  }
  return D.lastDays(Number(state.preset === 'custom' ? 30 : state.preset), state.tz);
}

function syncControls() {
  const r = document.querySelector(`input[name=preset][value="${state.preset}"]`);
  if (r) r.checked = true;
  $('#custom-range').hidden = state.preset !== 'custom';
  const range = currentRange();
  $('#start').value = range.start;
  $('#end').value = range.end;
  $('#tz').value = state.tz;
  const g = document.querySelector(`input[name=granularity][value="${state.granularity}"]`);
  if (g) g.checked = true;
  const b = document.querySelector(`input[name=by][value="${state.by}"]`);
  if (b) b.checked = true;
}

function fillZones() {
  const sel = $('#tz');
  for (const z of D.timeZones()) sel.append(el('option', { value: z, text: z.replaceAll('_', ' ') }));
  if (!D.timeZones().includes(state.tz)) state.tz = 'UTC';
}

// ---------- analytics ----------

async function loadAnalytics() {
  if (!state.client) return;
  const seq = ++state.loadSeq;
  const { start, end } = currentRange();
  const prev = D.previousPeriod(start, end);
  $('#period').textContent = `${D.formatRange(start, end)} (${state.tz.replaceAll('_', ' ')}), compared with ${D.formatRange(prev.start, prev.end)}`;
  document.body.classList.add('loading');
  try {
    const data = await state.client.request(Q.ANALYTICS, {
      start, end, prevStart: prev.start, prevEnd: prev.end, timezone: state.tz, granularity: state.granularity,
    });
    if (seq !== state.loadSeq) return; // a newer load superseded this one
    state.analytics = data;
    $('#load-error').hidden = true;
    renderAnalytics();
  } catch (err) {
    if (seq !== state.loadSeq || handleAuth(err)) return;
    $('#load-error').textContent = err.message;
    $('#load-error').hidden = false;
  } finally {
    if (seq === state.loadSeq) document.body.classList.remove('loading');
  }
}

// refreshSoon reloads the analytics once a burst of live events settles.
function refreshSoon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(loadAnalytics, 400);
}

function renderAnalytics() {
  const { current: c, previous: p } = state.analytics;
  renderCards(c, p);
  renderTrend(c.trend);
  renderDistribution(c.ratingDistribution);
  renderBreakdown();
}

// Each card: the value, and the change against the previous period as a
// relative change for counts and as points for rates and averages.
const CARDS = {
  sent: { get: (a) => a.totalSurveysSent, show: (v) => fmtInt.format(v), change: 'relative' },
  responses: { get: (a) => a.totalResponses, show: (v) => fmtInt.format(v), change: 'relative' },
  // A rate over nothing is no rate (the API answers 0 there).
  rate: { get: (a) => (a.totalSurveysSent ? a.responseRate : null), show: pct, change: 'points' },
  average: { get: (a) => a.averageRating, show: (v) => (num(v) == null ? '–' : avg(v) + ' / 5'), change: 'absolute' },
  score: { get: (a) => (a.totalResponses ? a.satisfactionScore : null), show: pct, change: 'points' },
};

function describeChange(kind, cur, prev) {
  if (num(cur) == null || num(prev) == null) return { text: 'no data for the previous period', dir: 'none' };
  const d = cur - prev;
  const dir = Math.abs(d) < 1e-9 ? 'flat' : d > 0 ? 'up' : 'down';
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
  const abs = Math.abs(d);
  let text;
  if (kind === 'relative') {
    if (prev === 0) return { text: cur === 0 ? 'no change' : `up from 0`, dir: cur === 0 ? 'flat' : 'up' };
    text = `${sign}${fmt1.format((100 * abs) / prev)}%`;
  } else if (kind === 'points') {
    text = `${sign}${fmt1.format(abs)} pts`;
  } else {
    text = `${sign}${fmt1.format(abs)}`;
  }
  return { text: dir === 'flat' ? 'no change' : text, dir };
}

function renderCards(c, p) {
  for (const [metric, def] of Object.entries(CARDS)) {
    const card = document.querySelector(`.card[data-metric="${metric}"]`);
    const v = def.get(c);
    card.querySelector('.value').textContent = v == null ? '–' : def.show(v);
    const ch = describeChange(def.change, v, def.get(p));
    const delta = card.querySelector('.delta');
    delta.dataset.dir = ch.dir;
    const parts = [
      el('span', { class: 'arrow', 'aria-hidden': 'true', text: { up: '▲', down: '▼', flat: '●', none: '' }[ch.dir] }),
      el('span', { text: ` ${ch.text}` }),
    ];
    if (ch.dir !== 'none') parts.push(el('span', { class: 'muted', text: ' vs previous period' }));
    delta.replaceChildren(...parts);
  }
}

function chartDefaults() {
  const C = window.Chart;
  if (!C || C.defaults.__csat) return;
  C.defaults.__csat = true;
  C.defaults.font.family = getComputedStyle(document.body).fontFamily;
  C.defaults.color = COLORS.text;
  C.defaults.animation = false; // calmer, and no half-drawn screenshots
  C.defaults.maintainAspectRatio = false;
}

function renderTrend(trend) {
  const labels = trend.map((b) => D.bucketLabel(b.date, state.granularity));
  const responses = trend.map((b) => b.responses);
  const averages = trend.map((b) => num(b.averageRating));
  if (window.Chart) {
    chartDefaults();
    const data = {
      labels,
      datasets: [
        { type: 'bar', label: 'Responses', data: responses, backgroundColor: COLORS.responses + 'b3', borderRadius: 3, yAxisID: 'y', order: 2 },
        { type: 'line', label: 'Average rating', data: averages, borderColor: COLORS.average, backgroundColor: COLORS.average, yAxisID: 'y1', tension: 0.3, pointRadius: trend.length > 45 ? 0 : 3, spanGaps: true, order: 1 },
      ],
    };
    if (state.charts.trend) {
      state.charts.trend.data = data;
      state.charts.trend.update();
    } else {
      state.charts.trend = new window.Chart($('#trend-chart'), {
        data,
        options: {
          interaction: { mode: 'index', intersect: false },
          plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
          scales: {
            x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
            y: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: COLORS.grid }, title: { display: true, text: 'Responses' } },
            y1: { position: 'right', min: 1, max: 5, ticks: { stepSize: 1 }, grid: { display: false }, title: { display: true, text: 'Average' } },
          },
        },
      });
    }
  }
  const total = responses.reduce((a, b) => a + b, 0);
  $('#trend-chart').setAttribute('aria-label', `Responses and average rating per ${state.granularity.toLowerCase()}: ${total} responses in ${trend.length} periods. The table below has the numbers.`);
  $('#trend-table tbody').replaceChildren(...trend.map((b) => el('tr', {},
    el('th', { scope: 'row', text: D.bucketLabel(b.date, state.granularity) }),
    el('td', { class: 'num', text: fmtInt.format(b.surveysSent) }),
    el('td', { class: 'num', text: fmtInt.format(b.responses) }),
    el('td', { class: 'num', text: pct(b.responseRate) }),
    el('td', { class: 'num', text: avg(b.averageRating) }),
  )));
}

function renderDistribution(dist) {
  const counts = { 1: 0, 2: 0, 3: 0, 4: 0, 5: 0 };
  for (const d of dist) counts[d.rating] = d.count;
  const ratings = [5, 4, 3, 2, 1];
  const total = ratings.reduce((a, r) => a + counts[r], 0);
  const share = (r) => (total ? Math.round((100 * counts[r]) / total) : 0);
  if (window.Chart) {
    chartDefaults();
    const data = {
      labels: ratings.map((r) => `${r} ★`),
      datasets: [{ label: 'Responses', data: ratings.map((r) => counts[r]), backgroundColor: ratings.map((r) => COLORS.rating[r]), borderRadius: 3, barPercentage: 0.8 }],
    };
    if (state.charts.dist) {
      state.charts.dist.data = data;
      state.charts.dist.update();
    } else {
      state.charts.dist = new window.Chart($('#dist-chart'), {
        type: 'bar',
        data,
        options: {
          indexAxis: 'y',
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: (ctx) => ` ${ctx.raw} (${share(5 - ctx.dataIndex)}%)` } },
          },
          scales: {
            x: { beginAtZero: true, ticks: { precision: 0 }, grid: { color: COLORS.grid } },
            y: { grid: { display: false } },
          },
        },
      });
    }
  }
  const summary = ratings.map((r) => `${r} stars: ${counts[r]} (${share(r)}%)`);
  $('#dist-chart').setAttribute('aria-label', `Rating distribution. ${summary.join('; ')}.`);
  $('#dist-list').replaceChildren(...summary.map((s) => el('li', { text: s })));
}

function renderBreakdown() {
  if (!state.analytics) return;
  const rows = state.analytics.current[state.by] || [];
  const label = { byAgent: 'Agent', byTeam: 'Team', byChannel: 'Channel' }[state.by];
  $('#bd-key').textContent = label;
  $('#breakdown caption').textContent = `Breakdown by ${label.toLowerCase()}`;
  const body = $('#breakdown tbody');
  if (!rows.length) {
    body.replaceChildren(el('tr', {}, el('td', { colSpan: 5, class: 'muted', text: 'No surveys in this period.' })));
    return;
  }
  body.replaceChildren(...rows.map((r) => el('tr', {},
    el('th', { scope: 'row', text: r.key || '(none)' }),
    el('td', { class: 'num', text: fmtInt.format(r.surveysSent) }),
    el('td', { class: 'num', text: fmtInt.format(r.responses) }),
    el('td', { class: 'num', text: pct(rateOf(r.surveysSent, r.responses)) }),
    el('td', { class: 'num' }, ratingBar(r.averageRating)),
  )));
}

function ratingBar(v) {
  if (num(v) == null) return document.createTextNode('–');
  const wrap = el('span', { class: 'avg-cell' });
  const bar = el('span', { class: 'avg-bar', 'aria-hidden': 'true' });
  const fill = el('span', { class: 'avg-fill' });
  // Width through the CSSOM: the CSP allows no inline style attributes.
  fill.style.width = `${Math.max(0, Math.min(100, ((v - 1) / 4) * 100))}%`;
  bar.append(fill);
  wrap.append(bar, el('span', { text: avg(v) }));
  return wrap;
}

// ---------- latest responses ----------

function listFilter() {
  const f = {};
  const rating = $('#f-rating').value;
  const status = $('#f-status').value;
  if (rating) f.rating = [Number(rating)];
  if (status) f.status = [status];
  if ($('#f-feedback').checked) f.hasFeedback = true;
  return f;
}

function matchesFilter(s, f) {
  if (f.rating && !f.rating.includes(s.rating)) return false;
  if (f.status && !f.status.includes(s.status)) return false;
  if (f.hasFeedback && !(s.feedback && s.feedback.trim())) return false;
  return true;
}

// listOrder shows answered surveys by when they were answered, anything
// else by when it was created; newest first.
function listOrder(f) {
  const answered = (f.status && f.status.every((s) => s === 'COMPLETED')) || f.rating;
  return { field: answered ? 'RESPONDED_AT' : 'CREATED_AT', direction: 'DESC' };
}

async function loadList(dir = 'first', cursor = null) {
  if (!state.client) return;
  const filter = listFilter();
  const vars = { filter, orderBy: listOrder(filter) };
  if (dir === 'last') Object.assign(vars, { last: PAGE_SIZE, before: cursor });
  else Object.assign(vars, { first: PAGE_SIZE, after: cursor });
  try {
    const data = await state.client.request(Q.SURVEYS, vars);
    if (dir === 'last' && !data.surveys.pageInfo.hasPreviousPage && data.surveys.edges.length < PAGE_SIZE) {
      // Back at the newest surveys: show a full first page.
      return loadList();
    }
    state.list = { dir, cursor, page: data.surveys };
    renderList();
  } catch (err) {
    if (handleAuth(err)) return;
    $('#responses').replaceChildren(el('li', { class: 'field-error', text: err.message }));
  }
}

function isFirstPage() {
  const p = state.list.page;
  return p && !p.pageInfo.hasPreviousPage && !(state.list.dir === 'first' && state.list.cursor);
}


function renderList(highlightID) {
  const p = state.list.page;
  if (!p) return;
  const nodes = p.edges.map((e) => e.node);
  $('#responses').replaceChildren(...nodes.map((s) => responseItem(s, s.id === highlightID)));
  $('#resp-empty').hidden = nodes.length > 0;
  $('#resp-count').textContent = `${fmtInt.format(p.totalCount)} ${p.totalCount === 1 ? 'survey' : 'surveys'}`;
  // A forward page has newer ones before it when it started at a cursor; a
  // backward page always has older ones after it.
  const forward = state.list.dir === 'first';
  $('#page-newer').disabled = forward ? !(state.list.cursor || p.pageInfo.hasPreviousPage) : !p.pageInfo.hasPreviousPage;
  $('#page-older').disabled = forward ? !p.pageInfo.hasNextPage : false;
}

const STATUS_LABEL = { PENDING: 'Pending', SENT: 'Sent', COMPLETED: 'Completed', EXPIRED: 'Expired' };

function responseItem(s, fresh) {
  const who = s.contactName || s.contactEmail;
  const when = s.respondedAt || s.sentAt;
  const meta = [s.agentId && `Agent ${s.agentId}`, s.teamId && `Team ${s.teamId}`, s.channel].filter(Boolean).join(' · ');
  const badge = s.rating
    ? el('span', { class: 'rating', 'data-rating': String(s.rating), 'aria-label': `Rating ${s.rating} of 5`, text: `${s.rating}★` })
    : el('span', { class: 'rating rating-none', 'aria-label': 'Not rated', text: '–' });
  return el('li', { class: fresh ? 'response fresh' : 'response', 'data-id': s.id },
    badge,
    el('div', { class: 'response-body' },
      el('div', { class: 'response-head' },
        el('strong', { class: 'who', text: who }),
        el('span', { class: 'status', 'data-status': s.status, text: STATUS_LABEL[s.status] || s.status }),
        when ? el('time', { class: 'muted small', dateTime: when, text: D.formatTime(when, state.tz) }) : null,
      ),
      s.feedback ? el('p', { class: 'feedback', text: s.feedback }) : null,
      meta ? el('p', { class: 'meta muted small', text: meta }) : null,
    ),
  );
}

// onSurveyUpdated applies a live update: in place when the survey is on
// the page, at the top when it is new and the first page is shown; the
// cards and charts reload once the burst settles.
function onSurveyUpdated(s) {
  const p = state.list.page;
  if (p) {
    const i = p.edges.findIndex((e) => e.node.id === s.id);
    const f = listFilter();
    if (i >= 0 && matchesFilter(s, f)) {
      p.edges[i] = { ...p.edges[i], node: s };
      renderList(s.id);
    } else if (i >= 0) {
      p.edges.splice(i, 1);
      p.totalCount = Math.max(0, p.totalCount - 1);
      renderList();
    } else if (isFirstPage() && matchesFilter(s, f)) {
      // Newest first: an answer (or a new survey) belongs at the top;
      // anything else may sort further down, so ask again.
      const order = listOrder(f).field;
      if ((order === 'RESPONDED_AT' && s.respondedAt) || (order === 'CREATED_AT' && s.status === 'PENDING')) {
        p.edges.unshift({ cursor: null, node: s });
        p.totalCount += 1;
        if (p.edges.length > PAGE_SIZE) {
          p.edges.pop();
          p.pageInfo.hasNextPage = true;
        }
        renderList(s.id);
      } else {
        loadList();
      }
    }
  }
  if (s.status === 'COMPLETED' && s.rating) {
    announce(`New rating: ${s.rating} of 5 from ${s.contactName || s.contactEmail}.`);
  }
  refreshSoon();
}

function startLive(key) {
  stopLive();
  const url = new URL('../graphql', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  state.live = new Live(url.href, key, Q.SURVEY_UPDATED, {
    onData: (d) => d.surveyUpdated && onSurveyUpdated(d.surveyUpdated),
    onError: (err) => { if (!handleAuth(err)) console.warn('subscription:', err.message); },
    onState: setLiveState,
    // Events sent while we were away are lost: reload everything.
    onResume: () => { loadAnalytics(); loadList(); },
  });
  state.live.start();
}

function stopLive() {
  if (state.live) state.live.stop();
  state.live = null;
}

function setLiveState(s) {
  const badge = $('#live');
  badge.hidden = false;
  badge.dataset.state = s;
  badge.textContent = { connecting: 'Connecting…', live: 'Live', offline: 'Offline – reconnecting', unauthorized: 'Live updates refused' }[s] || s;
  badge.title = s === 'live' ? 'New ratings appear as they arrive' : '';
}

// ---------- settings ----------

const SETTINGS_FIELDS = {
  surveyDelayHours: { input: '#s-delay', error: '#s-delay-error', aliases: ['survey_delay_hours'] },
  surveyExpiryDays: { input: '#s-expiry', error: '#s-expiry-error', aliases: ['survey_expiry_days'] },
};

function fillConfig(c) {
  $('#s-enabled').checked = c.enabled;
  $('#s-delay').value = c.surveyDelayHours;
  $('#s-expiry').value = c.surveyExpiryDays;
}

async function loadConfig() {
  if (!state.client) return;
  try {
    const data = await state.client.request(Q.CONFIG);
    fillConfig(data.csatConfig);
  } catch (err) {
    if (!handleAuth(err)) $('#settings-status').textContent = err.message;
  }
}

function clearFieldErrors() {
  for (const f of Object.values(SETTINGS_FIELDS)) {
    $(f.error).textContent = '';
    $(f.input).removeAttribute('aria-invalid');
  }
}

// wholeNumber reads a number field. The range is the API's to check (its
// messages are shown as they are); only what cannot be sent as an Int at
// all is caught here.
function wholeNumber(sel) {
  const t = $(sel).value.trim();
  return /^-?\d{1,9}$/.test(t) ? Number(t) : null;
}

async function onSettingsSubmit(ev) {
  ev.preventDefault();
  clearFieldErrors();
  const status = $('#settings-status');
  status.dataset.kind = '';
  status.textContent = 'Saving…';
  const input = { enabled: $('#s-enabled').checked };
  let bad = null;
  for (const [name, f] of Object.entries(SETTINGS_FIELDS)) {
    const v = wholeNumber(f.input);
    if (v == null) {
      $(f.error).textContent = 'Enter a whole number.';
      $(f.input).setAttribute('aria-invalid', 'true');
      bad = bad || $(f.input);
    }
    input[name] = v;
  }
  if (bad) {
    status.dataset.kind = 'error';
    status.textContent = 'Check the highlighted fields.';
    bad.focus();
    return;
  }
  $('#settings-save').disabled = true;
  try {
    const data = await state.client.request(Q.UPDATE_CONFIG, { input });
    fillConfig(data.updateCsatConfig);
    status.dataset.kind = 'ok';
    status.textContent = 'Settings saved.';
  } catch (err) {
    if (handleAuth(err)) return;
    status.dataset.kind = 'error';
    status.textContent = err.code === 'FORBIDDEN' ? 'This API key may not change settings (it needs the config:write scope).' : err.message;
    let first = null;
    for (const [name, f] of Object.entries(SETTINGS_FIELDS)) {
      const msg = [name, ...f.aliases].map((k) => err.fields[k]).find(Boolean);
      if (msg) {
        $(f.error).textContent = msg;
        $(f.input).setAttribute('aria-invalid', 'true');
        first = first || $(f.input);
      }
    }
    if (first) first.focus();
  } finally {
    $('#settings-save').disabled = false;
  }
}

// ---------- wiring ----------

function onControlsChange(ev) {
  const t = ev.target;
  if (t.name === 'preset') {
    state.preset = t.value;
    if (t.value === 'custom') {
      const r = D.isDate(state.start) && D.isDate(state.end) ? { start: state.start, end: state.end } : D.lastDays(30, state.tz);
      Object.assign(state, r);
      syncControls();
      $('#start').focus();
    } else {
      syncControls();
    }
  } else if (t.id === 'tz') {
    state.tz = t.value;
    syncControls();
    renderList();
  } else {
    return;
  }
  savePrefs();
  loadAnalytics();
}

function applyCustomRange() {
  const start = $('#start').value;
  const end = $('#end').value;
  if (!D.isDate(start) || !D.isDate(end) || start > end) {
    $('#load-error').textContent = 'Choose a start date on or before the end date.';
    $('#load-error').hidden = false;
    return;
  }
  Object.assign(state, { start, end, preset: 'custom' });
  savePrefs();
  loadAnalytics();
}

function wire() {
  $('#signin-form').addEventListener('submit', onSignInSubmit);
  $('#signout').addEventListener('click', () => showSignIn(''));
  $('.controls').addEventListener('change', onControlsChange);
  $('#apply-range').addEventListener('click', applyCustomRange);
  for (const id of ['#start', '#end']) {
    $(id).addEventListener('keydown', (ev) => { if (ev.key === 'Enter') applyCustomRange(); });
  }
  $('#granularity').addEventListener('change', (ev) => {
    state.granularity = ev.target.value;
    savePrefs();
    loadAnalytics();
  });
  $('#breakdown-by').addEventListener('change', (ev) => {
    state.by = ev.target.value;
    savePrefs();
    renderBreakdown();
  });
  $('#resp-filter').addEventListener('change', () => loadList());
  $('#resp-filter').addEventListener('submit', (ev) => ev.preventDefault());
  $('#page-older').addEventListener('click', () => {
    const p = state.list.page;
    if (p && p.edges.length) loadList('first', p.pageInfo.endCursor);
  });
  $('#page-newer').addEventListener('click', () => {
    const p = state.list.page;
    if (p && p.edges.length) loadList('last', p.pageInfo.startCursor);
    else loadList();
  });
  $('#settings').addEventListener('submit', onSettingsSubmit);
}

function main() {
  loadPrefs();
  fillZones();
  syncControls();
  wire();
  const key = sessionStorage.getItem(KEY_STORE);
  if (!key) {
    showSignIn('');
    return;
  }
  signIn(key).catch((err) => showSignIn(err.code === 'UNAUTHENTICATED' ? 'Your API key is no longer accepted. Sign in again.' : err.message));
}

main();
