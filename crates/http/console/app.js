// The WAIaaS owner console: talks to the public API only, with a session token kept in
// sessionStorage and sent as a bearer token. Every text from the API is set as text (never
// as HTML). Live updates come from each wallet's event stream (SSE read through fetch, so
// the token travels in a header), resumed with Last-Event-ID after a drop.
'use strict';

const TOKEN = 'waiaas.session';
const MAX_STREAMS = 12; // the API allows 16 streams per owner and instance
const ZERO_DECIMALS = new Set(['JPY', 'KRW', 'VND', 'CLP', 'ISK', 'XAF', 'XOF', 'UGX']);
const THREE_DECIMALS = new Set(['BHD', 'KWD', 'OMR', 'JOD', 'TND', 'IQD', 'LYD']);

const state = {
  token: sessionStorage.getItem(TOKEN),
  home: null,
  streams: new Map(), // wallet id -> {controller, last}
  refresh: null,
  walletNames: new Map(),
};

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function decimals(asset) {
  if (ZERO_DECIMALS.has(asset)) return 0;
  if (THREE_DECIMALS.has(asset)) return 3;
  return 2;
}

function money(minor, asset) {
  if (minor === null || minor === undefined) return '—';
  const d = decimals(asset);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  const whole = Math.floor(abs / 10 ** d).toLocaleString('en-US');
  const frac = d ? '.' + String(abs % 10 ** d).padStart(d, '0') : '';
  return `${sign}${whole}${frac} ${asset}`;
}

function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

// Ids are UUIDv7: their first characters are a time stamp, shared by ids made together.
function short(id) {
  return id ? id.slice(-8) : '';
}

class ApiFailure extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
  describe() {
    return `${this.message} (${this.code})`;
  }
}

async function api(method, path, body, extra) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  Object.assign(headers, (extra && extra.headers) || {});
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiFailure(0, 'network', 'The service cannot be reached; try again.');
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401 && state.token && !(extra && extra.signingIn)) {
      signOut('Your session ended; sign in again.');
    }
    throw new ApiFailure(res.status, err.code || `http_${res.status}`, err.message || res.statusText, err);
  }
  return data;
}

function notice(text, ok) {
  const el = document.getElementById('notice');
  el.textContent = text;
  el.classList.toggle('ok', Boolean(ok));
  el.hidden = !text;
}

// ---------------------------------------------------------------- session

async function signIn(key) {
  const session = await api('POST', '/v1/sessions', undefined, {
    headers: { Authorization: `Bearer ${key}` },
    signingIn: true,
  });
  state.token = session.token;
  try {
    await api('GET', '/v1/home', undefined, { signingIn: true });
  } catch (e) {
    const token = state.token;
    state.token = null;
    await fetch('/v1/sessions/current', { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
    if (e.status === 403) throw new ApiFailure(403, 'forbidden', 'This console is for owners: use an owner’s API key.');
    throw e;
  }
  sessionStorage.setItem(TOKEN, state.token);
}

function signOut(message) {
  const token = state.token;
  state.token = null;
  sessionStorage.removeItem(TOKEN);
  stopStreams();
  if (token) {
    fetch('/v1/sessions/current', { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  state.home = null;
  notice(message || '', false);
  route();
}

// ---------------------------------------------------------------- live updates

function setLive() {
  const el = document.getElementById('live');
  const open = [...state.streams.values()].filter((s) => s.open).length;
  el.textContent = open ? `live · ${open} wallet${open === 1 ? '' : 's'}` : 'offline';
  el.classList.toggle('on', open > 0);
}

// Whether the user is editing a form of the page: the focus in one of its fields, or a field
// changed and not yet submitted.
function editing() {
  const view = document.getElementById('view');
  const active = document.activeElement;
  if (active && view.contains(active) && active.matches('form input, form textarea, form select')) return true;
  return [...view.querySelectorAll('form input, form textarea, form select')].some((el) => (el.tagName === 'SELECT'
    ? [...el.options].some((o) => o.selected !== o.defaultSelected)
    : el.value !== el.defaultValue || el.checked !== el.defaultChecked));
}

// A live update re-renders the page, but never under a form the user is editing (what they
// typed would be lost): it waits until they are done.
function scheduleRefresh() {
  clearTimeout(state.refresh);
  state.refresh = setTimeout(function later() {
    if (editing()) {
      state.refresh = setTimeout(later, 1000);
      return;
    }
    render(false);
  }, 250);
}

function syncStreams(walletIds) {
  const wanted = new Set(walletIds.slice(0, MAX_STREAMS));
  for (const [id, s] of state.streams) {
    if (!wanted.has(id)) {
      s.controller.abort();
      state.streams.delete(id);
    }
  }
  for (const id of wanted) {
    if (!state.streams.has(id)) openStream(id, { last: null, delay: 1000, open: false, controller: null });
  }
  setLive();
}

function stopStreams() {
  for (const s of state.streams.values()) s.controller.abort();
  state.streams.clear();
  setLive();
}

async function openStream(id, s) {
  s.controller = new AbortController();
  state.streams.set(id, s);
  const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
  if (s.last !== null) headers['Last-Event-ID'] = String(s.last);
  try {
    const res = await fetch(`/v1/wallets/${id}/events`, { headers, signal: s.controller.signal });
    if (res.status === 401) { signOut('Your session ended; sign in again.'); return; }
    if (res.status === 410) { s.last = null; }
    if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
    // Back after a drop: the stream resumes after the last event it delivered, but one that
    // had delivered none cannot know where it stopped, so show the current state as well.
    const reopened = s.opened === true;
    s.open = true;
    s.opened = true;
    s.delay = 1000;
    setLive();
    if (reopened) scheduleRefresh();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let eventId = null;
        let hasData = false;
        for (const line of frame.split('\n')) {
          if (line.startsWith('id:')) eventId = line.slice(3).trim();
          else if (line.startsWith('data:')) hasData = true;
        }
        if (eventId !== null && /^\d+$/.test(eventId)) s.last = Number(eventId);
        if (hasData) scheduleRefresh();
      }
    }
  } catch (e) {
    if (s.controller.signal.aborted) return;
  }
  s.open = false;
  setLive();
  if (state.streams.get(id) !== s || !state.token) return;
  const delay = s.delay;
  s.delay = Math.min(s.delay * 2, 15000);
  setTimeout(() => {
    if (state.streams.get(id) === s && state.token) openStream(id, s);
  }, delay);
}

// ---------------------------------------------------------------- views

function levelText(left, asset) {
  if (!left) return null;
  const parts = [];
  if (left.daily_remaining !== null && left.daily_remaining !== undefined) parts.push(`${money(left.daily_remaining, asset)} today`);
  if (left.monthly_remaining !== null && left.monthly_remaining !== undefined) parts.push(`${money(left.monthly_remaining, asset)} this month`);
  return parts.length ? parts.join(', ') : 'no limit';
}

function budgetLeft(budget, asset) {
  const rows = [];
  const wallet = levelText(budget, asset);
  if (budget.daily_remaining !== null || budget.monthly_remaining !== null) rows.push(['wallet', wallet]);
  if (budget.agent) rows.push(['agent', levelText(budget.agent, asset)]);
  if (budget.owner) rows.push(['owner', levelText(budget.owner, asset)]);
  if (!rows.length) return h('span', { class: 'muted' }, 'no limits');
  return h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function walletLabel(id) {
  return state.walletNames.get(id) || (id ? `wallet ${short(id)}` : '—');
}

function pendingCard(tx) {
  const approve = h('button', { type: 'button', class: 'approve', id: `approve-${tx.id}` }, 'Approve');
  const reject = h('button', { type: 'button', class: 'danger', id: `reject-${tx.id}` }, 'Reject');
  const error = h('p', { class: 'error', role: 'alert' });
  const decide = (verb) => async () => {
    approve.disabled = true;
    reject.disabled = true;
    try {
      await api('POST', `/v1/transactions/${tx.id}/${verb}`);
      notice(`Transaction ${short(tx.id)} ${verb === 'approve' ? 'approved' : 'rejected'}.`, true);
      render(false);
    } catch (e) {
      error.textContent = e.describe();
      approve.disabled = false;
      reject.disabled = false;
    }
  };
  approve.addEventListener('click', decide('approve'));
  reject.addEventListener('click', decide('reject'));
  const to = tx.to_wallet_id ? walletLabel(tx.to_wallet_id) : tx.destination;
  return h('article', { class: 'card pending', 'data-transaction': tx.id },
    h('div', { class: 'row spread' },
      h('h3', {}, `${money(tx.amount, tx.asset)} ${tx.kind}`),
      h('span', { class: 'badge pending_approval' }, 'waiting for you')),
    h('dl', { class: 'kv' },
      h('dt', {}, 'from'), h('dd', {}, walletLabel(tx.from_wallet_id)),
      h('dt', {}, 'to'), h('dd', {}, to || '—'),
      tx.memo ? [h('dt', {}, 'memo'), h('dd', {}, tx.memo)] : null,
      h('dt', {}, 'asked by rule'), h('dd', {}, `${tx.rule || '—'}${tx.level ? ` (${tx.level})` : ''}`),
      tx.reason ? [h('dt', {}, 'why'), h('dd', {}, tx.reason)] : null,
      h('dt', {}, 'budget left'), h('dd', {}, budgetLeft(tx.budget, tx.asset)),
      h('dt', {}, 'decide by'), h('dd', {}, tx.approval_deadline ? when(tx.approval_deadline) : 'no deadline')),
    h('div', { class: 'row' }, approve, reject),
    error);
}

function agentActions(agent) {
  const error = h('p', { class: 'error', role: 'alert' });
  const run = (fn) => async (ev) => {
    ev.target.disabled = true;
    try { await fn(); render(false); } catch (e) { error.textContent = e.describe(); ev.target.disabled = false; }
  };
  const toggle = agent.status === 'active'
    ? h('button', { type: 'button', class: 'secondary', onclick: run(() => api('PATCH', `/v1/agents/${agent.id}`, { status: 'suspended' })) }, 'Suspend')
    : h('button', { type: 'button', class: 'secondary', onclick: run(() => api('PATCH', `/v1/agents/${agent.id}`, { status: 'active' })) }, 'Resume');
  const del = h('button', {
    type: 'button',
    class: 'danger',
    onclick: run(async () => {
      if (!window.confirm(`Delete agent “${agent.name}”? Its keys stop working at once.`)) throw new ApiFailure(0, 'cancelled', 'Not deleted.');
      await api('DELETE', `/v1/agents/${agent.id}`);
    }),
  }, 'Delete');
  return [h('div', { class: 'row' }, toggle, h('a', { href: `#/agent/${agent.id}` }, 'Keys and budget'), del), error];
}

function walletTable(wallets) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'wallet'), h('th', { scope: 'col', class: 'num' }, 'balance'),
      h('th', { scope: 'col', class: 'num' }, 'held'), h('th', { scope: 'col', class: 'num' }, 'available'),
      h('th', { scope: 'col', class: 'num' }, 'today'), h('th', { scope: 'col', class: 'num' }, 'month'),
      h('th', { scope: 'col' }, 'left'))),
    h('tbody', {}, wallets.map((w) => h('tr', { 'data-wallet': w.id },
      h('td', {}, h('a', { href: `#/wallet/${w.id}` }, w.name || `${w.asset} ${short(w.id)}`)),
      h('td', { class: 'num', 'data-field': 'balance' }, money(w.balance, w.asset)),
      h('td', { class: 'num' }, money(w.held, w.asset)),
      h('td', { class: 'num', 'data-field': 'available' }, money(w.available, w.asset)),
      h('td', { class: 'num' }, money(w.today.spent, w.asset)),
      h('td', { class: 'num' }, money(w.month.spent, w.asset)),
      h('td', {}, budgetLeft(w.budget, w.asset)))))));
}

function levelTable(levels) {
  if (!levels.length) return h('p', { class: 'muted' }, 'No budget set.');
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, ['asset', 'spent today', 'daily limit', 'spent this month', 'monthly limit', 'per transaction']
      .map((t, i) => h('th', { scope: 'col', class: i ? 'num' : null }, t)))),
    h('tbody', {}, levels.map((l) => h('tr', {},
      h('td', {}, l.asset),
      h('td', { class: 'num' }, money(l.spent_today, l.asset)),
      h('td', { class: 'num' }, money(l.daily_limit, l.asset)),
      h('td', { class: 'num' }, money(l.spent_month, l.asset)),
      h('td', { class: 'num' }, money(l.monthly_limit, l.asset)),
      h('td', { class: 'num' }, money(l.max_per_transaction, l.asset)))))));
}

// A background refresh that finds nothing changed keeps the page as it is (no button
// replaced under the pointer).
const UNCHANGED = Symbol('unchanged');

async function homeView(background) {
  const home = await api('GET', '/v1/home');
  const seen = JSON.stringify({ ...home, generated_at: null });
  if (background && seen === state.homeSeen) return UNCHANGED;
  state.homeSeen = seen;
  state.home = home;
  for (const a of home.agents) for (const w of a.wallets) state.walletNames.set(w.id, `${a.name} · ${w.name || w.asset}`);
  syncStreams(home.agents.flatMap((a) => a.wallets.map((w) => w.id)));
  const pending = home.pending.length
    ? home.pending.map(pendingCard)
    : [h('p', { class: 'muted', id: 'no-pending' }, 'Nothing waits for your approval.')];
  const more = home.pending_total > home.pending.length
    ? h('p', { class: 'muted' }, `${home.pending_total - home.pending.length} more not shown.`) : null;
  return [
    h('h1', {}, 'Home'),
    h('section', { 'aria-labelledby': 'pending-title', id: 'pending' },
      h('h2', { id: 'pending-title' }, `Waiting for your approval (${home.pending_total})`),
      h('div', { class: 'grid' }, pending), more),
    h('section', { 'aria-labelledby': 'agents-title' },
      h('h2', { id: 'agents-title' }, 'Agents'),
      home.agents.length ? null : h('p', { class: 'muted' }, 'No agents yet.'),
      home.agents.map((a) => h('article', { class: 'card', 'data-agent': a.id },
        h('div', { class: 'row spread' },
          h('h3', {}, a.name, ' ', h('span', { class: `badge ${a.status}` }, a.status)),
          h('span', { class: 'muted' }, a.online === true ? 'online' : a.online === false ? 'offline' : '')),
        agentActions(a),
        a.wallets.length ? walletTable(a.wallets) : h('p', { class: 'muted' }, 'No wallets.'),
        a.budgets.length ? [h('h4', {}, 'Agent budget'), levelTable(a.budgets)] : null))),
    h('section', { 'aria-labelledby': 'owner-budget-title' },
      h('h2', { id: 'owner-budget-title' }, 'Your budget over every wallet'),
      levelTable(home.budgets),
      budgetForm('/v1/owners/me/budget', home.budgets)),
    h('p', { class: 'muted' }, `Spend counted for ${home.day} (UTC). Updated ${when(home.generated_at)}.`),
  ];
}

function numberField(id, label, value) {
  return [h('label', { for: id }, label), h('input', { id, name: id, type: 'number', min: '0', step: '1', inputmode: 'numeric', value: value ?? '' })];
}

function readNumber(form, name) {
  const raw = form.elements[name].value.trim();
  return raw === '' ? null : Number(raw);
}

function budgetForm(path, levels) {
  const first = levels[0] || {};
  const error = h('p', { class: 'error', role: 'alert' });
  const prefix = path.includes('owners') ? 'ob' : 'ab';
  const form = h('form', { class: 'card', 'aria-label': 'Set a budget' },
    h('h3', {}, 'Set a budget (amounts in minor units, e.g. cents)'),
    h('label', { for: `${prefix}-asset` }, 'Asset'),
    h('input', { id: `${prefix}-asset`, name: `${prefix}-asset`, value: first.asset || 'USD', maxlength: '12', required: true }),
    numberField(`${prefix}-daily`, 'Daily limit', first.daily_limit),
    numberField(`${prefix}-monthly`, 'Monthly limit', first.monthly_limit),
    numberField(`${prefix}-max`, 'Per transaction', first.max_per_transaction),
    h('p', { class: 'muted' }, 'Saving replaces the budget: other assets keep their limits only if listed above.'),
    h('button', { type: 'submit' }, 'Save budget'),
    error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const body = {};
    for (const l of levels) {
      body[l.asset] = { daily_limit: l.daily_limit, monthly_limit: l.monthly_limit, max_per_transaction: l.max_per_transaction };
    }
    const asset = form.elements[`${prefix}-asset`].value.trim();
    body[asset] = {
      daily_limit: readNumber(form, `${prefix}-daily`),
      monthly_limit: readNumber(form, `${prefix}-monthly`),
      max_per_transaction: readNumber(form, `${prefix}-max`),
    };
    try {
      await api('PUT', path, body);
      notice('Budget saved.', true);
      render(false);
    } catch (e) {
      error.textContent = e.describe();
    }
  });
  return form;
}

async function agentView(id) {
  const [agent, keys, budget] = await Promise.all([
    api('GET', `/v1/agents/${id}`),
    api('GET', `/v1/agents/${id}/keys`),
    api('GET', `/v1/agents/${id}/budget`),
  ]);
  const levels = Object.entries(budget).map(([asset, l]) => ({ asset, ...l }));
  const secret = h('div', { id: 'new-key', 'aria-live': 'polite' });
  const newKey = h('button', {
    type: 'button',
    onclick: async () => {
      try {
        const key = await api('POST', `/v1/agents/${id}/keys`, {});
        const value = h('p', { class: 'secret', id: 'new-key-value' }, key.api_key);
        const copy = h('button', {
          type: 'button',
          class: 'secondary',
          onclick: async () => {
            try { await navigator.clipboard.writeText(key.api_key); copy.textContent = 'Copied'; } catch (e) { copy.textContent = 'Select and copy it by hand'; }
          },
        }, 'Copy');
        secret.replaceChildren(h('p', {}, 'The new key, shown once:'), value, copy);
        const list = await api('GET', `/v1/agents/${id}/keys`);
        document.getElementById('key-list').replaceWith(keyTable(id, list.items));
      } catch (e) {
        secret.replaceChildren(h('p', { class: 'error' }, e.describe()));
      }
    },
  }, 'New key');
  return [
    h('p', {}, h('a', { href: '#/' }, '← Home')),
    h('h1', {}, `Agent ${agent.name} `, h('span', { class: `badge ${agent.status}` }, agent.status)),
    agentActions(agent),
    h('h2', {}, 'API keys'),
    keyTable(id, keys.items),
    h('div', { class: 'row' }, newKey),
    secret,
    h('h2', {}, 'Budget over its wallets'),
    levelTable(levels.map((l) => ({ ...l, spent_today: null, spent_month: null }))),
    budgetForm(`/v1/agents/${id}/budget`, levels),
  ];
}

function keyTable(agentId, keys) {
  return h('div', { class: 'scroll', id: 'key-list' }, h('table', {},
    h('thead', {}, h('tr', {}, ['key', 'status', 'created', 'expires', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, keys.map((k) => h('tr', {},
      h('td', {}, short(k.id)),
      h('td', {}, h('span', { class: `badge ${k.status}` }, k.status)),
      h('td', {}, when(k.created_at)),
      h('td', {}, k.expires_at ? when(k.expires_at) : 'never'),
      h('td', {}, k.status === 'active' ? h('button', {
        type: 'button',
        class: 'secondary',
        onclick: async (ev) => {
          ev.target.disabled = true;
          try { await api('DELETE', `/v1/agents/${agentId}/keys/${k.id}`); render(false); } catch (e) { notice(e.describe()); ev.target.disabled = false; }
        },
      }, 'Revoke') : null))))));
}

function spendChart(transactions, walletId, asset) {
  const days = [];
  const today = new Date();
  today.setUTCHours(0, 0, 0, 0);
  for (let i = 29; i >= 0; i -= 1) days.push(new Date(today.getTime() - i * 86400000).toISOString().slice(0, 10));
  const totals = new Map(days.map((d) => [d, 0]));
  for (const t of transactions) {
    if (t.from_wallet_id !== walletId || t.status !== 'completed') continue;
    const d = t.created_at.slice(0, 10);
    if (totals.has(d)) totals.set(d, totals.get(d) + t.amount);
  }
  const max = Math.max(1, ...totals.values());
  const width = 600; const height = 160; const pad = 24; const bw = (width - pad) / days.length;
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height + 20}`, role: 'img', 'aria-label': `Spend per day over the last 30 days: ${money(total, asset)} in all` },
    days.map((d, i) => {
      const v = totals.get(d);
      const bh = Math.round((v / max) * height);
      return svg('rect', { class: 'bar-rect', x: pad + i * bw + 1, y: height - bh, width: Math.max(1, bw - 2), height: bh },
        svg('title', {}, `${d}: ${money(v, asset)}`));
    }),
    svg('line', { x1: pad, y1: height, x2: width, y2: height, stroke: '#8a939e' }),
    svg('text', { x: pad, y: height + 14 }, days[0]),
    svg('text', { x: width - 60, y: height + 14 }, days[days.length - 1]),
    svg('text', { x: 0, y: 10 }, money(max, asset)));
}

async function recentTransactions(id) {
  const from = new Date(Date.now() - 30 * 86400000).toISOString();
  const all = [];
  let cursor = null;
  for (let page = 0; page < 10; page += 1) {
    const q = new URLSearchParams({ limit: '200', from });
    if (cursor) q.set('cursor', cursor);
    const res = await api('GET', `/v1/wallets/${id}/transactions?${q}`);
    all.push(...res.items);
    cursor = res.next_cursor;
    if (!cursor) break;
  }
  return all;
}

function transactionRows(items) {
  return items.map((t) => h('tr', {},
    h('td', {}, when(t.created_at)),
    h('td', {}, t.kind),
    h('td', {}, h('span', { class: `badge ${t.status}` }, t.status)),
    h('td', { class: 'num' }, money(t.amount, t.asset)),
    h('td', {}, t.destination || walletLabel(t.to_wallet_id)),
    h('td', {}, t.reason || t.memo || '')));
}

async function walletView(id) {
  const [wallet, policy, mandates, holds, recent, page] = await Promise.all([
    api('GET', `/v1/wallets/${id}`),
    api('GET', `/v1/wallets/${id}/policy`),
    api('GET', `/v1/wallets/${id}/mandates`),
    api('GET', `/v1/wallets/${id}/holds`),
    recentTransactions(id),
    api('GET', `/v1/wallets/${id}/transactions?limit=20`),
  ]);
  syncStreams([id]);
  const body = h('tbody', {}, transactionRows(page.items));
  let cursor = page.next_cursor;
  const older = h('button', {
    type: 'button',
    class: 'secondary',
    hidden: !cursor,
    onclick: async () => {
      const next = await api('GET', `/v1/wallets/${id}/transactions?limit=20&cursor=${encodeURIComponent(cursor)}`);
      body.append(...transactionRows(next.items));
      cursor = next.next_cursor;
      older.hidden = !cursor;
    },
  }, 'Older transactions');
  return [
    h('p', {}, h('a', { href: '#/' }, '← Home')),
    h('h1', {}, wallet.name || `${wallet.asset} wallet ${short(wallet.id)}`),
    h('dl', { class: 'kv card' },
      h('dt', {}, 'balance'), h('dd', { 'data-field': 'balance' }, money(wallet.balance, wallet.asset)),
      h('dt', {}, 'held'), h('dd', {}, money(wallet.held, wallet.asset)),
      h('dt', {}, 'available'), h('dd', {}, money(wallet.available, wallet.asset))),
    h('h2', {}, 'Spend, last 30 days'),
    spendChart(recent, id, wallet.asset),
    h('h2', {}, 'Policy'),
    policyForm(id, policy, wallet.asset),
    h('h2', {}, 'Mandates'),
    mandates.items.length ? h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['status', 'up to', 'left', 'uses left', 'to', 'expires'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, mandates.items.map((m) => h('tr', {},
        h('td', {}, h('span', { class: `badge ${m.status}` }, m.status)),
        h('td', {}, money(m.max_amount, m.asset)),
        h('td', {}, m.remaining === null ? 'no total' : money(m.remaining, m.asset)),
        h('td', {}, String(m.uses_left)),
        h('td', {}, m.destination || walletLabel(m.to_wallet_id)),
        h('td', {}, when(m.expires_at)))))))
      : h('p', { class: 'muted' }, 'No mandates.'),
    h('h2', {}, 'Holds'),
    holds.items.length ? h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['status', 'amount', 'captured', 'to', 'expires'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, holds.items.map((x) => h('tr', {},
        h('td', {}, h('span', { class: `badge ${x.status}` }, x.status)),
        h('td', {}, money(x.amount, x.asset)),
        h('td', {}, money(x.captured, x.asset)),
        h('td', {}, x.destination || walletLabel(x.to_wallet_id)),
        h('td', {}, when(x.expires_at)))))))
      : h('p', { class: 'muted' }, 'No holds.'),
    h('h2', {}, 'Transactions'),
    h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['when', 'kind', 'status', 'amount', 'to', 'note'].map((t, i) => h('th', { scope: 'col', class: i === 3 ? 'num' : null }, t)))),
      body)),
    older,
  ];
}

function policyForm(id, policy, asset) {
  const error = h('p', { class: 'error', role: 'alert' });
  const list = (v) => (v || []).join(', ');
  const form = h('form', { class: 'card', 'aria-label': 'Wallet policy' },
    h('p', { class: 'muted' }, `Amounts in minor units of ${asset}. Version ${policy.version}. An empty field does not restrict.`),
    numberField('p-max', 'Most per transaction', policy.max_per_transaction),
    numberField('p-daily', 'Daily limit', policy.daily_limit),
    numberField('p-monthly', 'Monthly limit', policy.monthly_limit),
    numberField('p-approval', 'Ask me to approve above', policy.approval_above),
    numberField('p-timeout', 'Approval times out after (seconds)', policy.approval_timeout_s),
    numberField('p-rate', 'Most transactions per hour', policy.max_transactions_per_hour),
    h('label', { for: 'p-allowed' }, 'Only to (comma-separated; empty: anywhere)'),
    h('input', { id: 'p-allowed', name: 'p-allowed', value: list(policy.allowed_destinations) }),
    h('label', { for: 'p-blocked' }, 'Never to (comma-separated)'),
    h('input', { id: 'p-blocked', name: 'p-blocked', value: list(policy.blocked_destinations) }),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Save policy')),
    error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const split = (name) => form.elements[name].value.split(',').map((s) => s.trim()).filter(Boolean);
    const allowed = split('p-allowed');
    const body = {
      max_per_transaction: readNumber(form, 'p-max'),
      daily_limit: readNumber(form, 'p-daily'),
      monthly_limit: readNumber(form, 'p-monthly'),
      approval_above: readNumber(form, 'p-approval'),
      approval_timeout_s: readNumber(form, 'p-timeout'),
      max_transactions_per_hour: readNumber(form, 'p-rate'),
      allowed_destinations: allowed.length ? allowed : null,
      blocked_destinations: split('p-blocked'),
    };
    try {
      await api('PUT', `/v1/wallets/${id}/policy`, body);
      notice('Policy saved.', true);
      render(false);
    } catch (e) {
      error.textContent = e.describe();
    }
  });
  return form;
}

// ---------------------------------------------------------------- routing

let generation = 0;

async function render(focus) {
  const view = document.getElementById('view');
  const signin = document.getElementById('signin');
  const signout = document.getElementById('signout');
  if (!state.token) {
    stopStreams();
    view.replaceChildren();
    signin.hidden = false;
    signout.hidden = true;
    if (focus) document.getElementById('api-key').focus();
    return;
  }
  signin.hidden = true;
  signout.hidden = false;
  const mine = ++generation;
  const hash = location.hash || '#/';
  let parts;
  try {
    if ((parts = hash.match(/^#\/wallet\/([0-9a-f-]{36})$/))) parts = await walletView(parts[1]);
    else if ((parts = hash.match(/^#\/agent\/([0-9a-f-]{36})$/))) parts = await agentView(parts[1]);
    else parts = await homeView(!focus);
  } catch (e) {
    if (!state.token) return;
    parts = [h('p', { class: 'error', role: 'alert' }, e instanceof ApiFailure ? e.describe() : String(e)), h('p', {}, h('a', { href: '#/' }, 'Home'))];
  }
  if (mine !== generation || parts === UNCHANGED) return; // a newer render started meanwhile
  view.replaceChildren(...parts.flat(Infinity).filter((p) => p !== null && p !== undefined && p !== false));
  view.dataset.ready = String(mine);
  if (focus) document.getElementById('main').focus();
}

function route() {
  render(true);
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = document.getElementById('api-key');
    const error = document.getElementById('signin-error');
    error.textContent = '';
    try {
      await signIn(input.value.trim());
      input.value = '';
      notice('');
      route();
    } catch (e) {
      error.textContent = e instanceof ApiFailure ? e.describe() : String(e);
    }
  });
  document.getElementById('signout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', route);
  route();
});
