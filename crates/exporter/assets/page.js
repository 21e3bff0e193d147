// tetherscope live page: polls /api/view and the baseline API and redraws
// the sections the server drew first. Every string from the network is set
// with textContent or setAttribute, never parsed as HTML.
'use strict';

const POLL_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';
// Triage needs the session cookie the login address sets (HttpOnly: this
// script never sees the secret); /api/session says whether it is there.
const NO_TRIAGE = 'Read-only: to accept or flag, open the login address that `tetherscope open` prints (or that the monitor printed at start).';
let triageAllowed = false;
fetch('/api/session', { cache: 'no-store' }).then(r => r.ok ? r.json() : {}).catch(() => ({})).then(s => {
  triageAllowed = s.triage === true;
  document.querySelectorAll('#triage-body button, #clients-body button').forEach(b => { b.disabled = !triageAllowed; });
  if (!triageAllowed) {
    document.getElementById('triage-status').textContent = NO_TRIAGE;
    document.getElementById('clients-status').textContent = NO_TRIAGE;
  }
});

// el('td', {class: 'num'}, 'text', childNode, ...)
function el(tag, attrs, ...children) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// As the server does: control characters shown as \xNN; format characters
// (bidirectional overrides, zero-width spaces, ...) and line separators as
// \u{XXXX}, so no name can hide characters or pass for another.
function shown(s) {
  return String(s ?? '').replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, c => {
    const u = c.codePointAt(0);
    return u <= 0x9f ? '\\x' + u.toString(16).padStart(2, '0') : '\\u{' + u.toString(16).padStart(4, '0') + '}';
  });
}

function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n, u = 0;
  while (v >= 1000 && u + 1 < units.length) { v /= 1000; u++; }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function time(secs) {
  if (!secs) return '-';
  return new Date(secs * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

const COLOURS = {
  'os-update': '#4e79a7', 'filter-update': '#76b7b2', 'location': '#59a14f', 'gnss-assistance': '#8cd17d',
  'connectivity-check': '#b6992d', 'time-sync': '#f1ce63', 'device-registration': '#499894',
  'key-attestation': '#86bcb6', 'push': '#f28e2b', 'app-store': '#ffbe7d', 'google-services': '#a0cbe8',
  'dns': '#bab0ac', 'encrypted-dns': '#79706e', 'local-network': '#d4a6c8', 'tracking': '#e15759',
  'advertising': '#ff9d9a', 'analytics': '#b07aa1', 'malware': '#9d2222',
};
const colour = p => COLOURS[p] || '#9c755f';

function table(caption, headers, rows) {
  const head = el('tr', {}, ...headers.map(h => el('th', { scope: 'col' }, h)));
  return el('div', { class: 'scroll' },
    el('table', {}, el('caption', {}, caption), el('thead', {}, head), el('tbody', {}, ...rows)));
}

function replace(id, ...nodes) {
  document.getElementById(id)?.replaceChildren(...nodes);
}

let lastTriage = null; // the new destinations last drawn, as JSON

function destinationRow(d, mac) {
  const first = el('th', { scope: 'row' }, el('span', { class: 'dest' }, shown(d.destination)));
  const others = d.names.filter(n => n !== d.destination);
  if (others.length) first.append(el('ul', { class: 'names' }, ...others.map(n => el('li', {}, shown(n)))));
  if (d.cname_chain.length) first.append(el('div', { class: 'cname' }, 'CNAME → ' + d.cname_chain.map(shown).join(' → ')));
  // A bare address: the network serving it says more (as the server draws it).
  if (d.network && !d.names.length) first.append(el('div', { class: 'network' }, shown(d.network)));
  if (d.clients && d.clients.length) first.append(el('div', { class: 'meta clients' }, 'client: ' + d.clients.map(shown).join(', ')));
  first.append(el('div', { class: 'meta' }, `${d.protocols.join(', ')} · named by ${d.name_sources.length ? d.name_sources.join(', ') : 'nothing'}`));
  let clear;
  if (d.cleartext_bytes > 0) {
    clear = el('td', { class: 'cleartext' }, el('strong', {}, 'cleartext'), ' ' + bytes(d.cleartext_bytes));
    if (d.cleartext_requests.length) {
      clear.append(el('ul', { class: 'requests' },
        ...d.cleartext_requests.map(r => el('li', {}, el('code', {}, shown(`${r.method} ${r.host}${r.path}`))))));
    }
  } else {
    clear = el('td', {}, 'encrypted');
  }
  const state = d.novelty || '-';
  return el('tr', { 'data-destination': d.destination },
    first,
    el('td', {}, el('span', { class: 'purpose', 'data-purpose': d.purpose }, d.purpose)),
    el('td', {}, shown(d.owner_text || '-'), el('div', { class: 'meta' }, shown(d.service || ''))),
    el('td', { class: `verdict-${d.verdict}` }, d.verdict),
    el('td', { class: `novelty novelty-${state}` }, state),
    clear,
    el('td', { class: 'num' }, `${bytes(d.bytes_up)} / ${bytes(d.bytes_down)}`),
    el('td', { class: 'num' }, d.flows),
    el('td', { class: 'when' }, time(d.first_seen), el('br'), time(d.last_seen)));
}

const DEST_COLUMNS = ['Destination', 'Purpose', 'Owner / service', 'Verdict', 'Novelty', 'Cleartext',
  'Bytes up / down', 'Flows', 'First / last seen'];

function deviceList(view) {
  if (!view.devices.length) return [el('p', { class: 'empty' }, 'No device seen yet.')];
  return view.devices.map(dev => {
    const h = el('h3', { class: 'device' }, shown(dev.device));
    if (dev.dhcp_name) h.append(' ', el('span', { class: 'mac' }, dev.mac));
    if (dev.randomised) h.append(' ', el('span', { class: 'badge' }, 'randomised'));
    if (dev.profile) h.append(' ', el('span', { class: 'profile' }, `profile ${shown(dev.profile)}`));
    const id = dev.identity || {};
    const identity = [id.os, id.vendor, id.model, id.mdns_name || id.mdns_host].filter(Boolean).join(' · ');
    if (identity) h.append(' ', el('span', { class: 'identity' }, shown(identity)));
    h.append(el('span', { class: 'meta' }, ` ${dev.flows} flows, ${bytes(dev.bytes)}`));
    const art = el('article', { class: 'device', 'data-mac': dev.mac }, h,
      table(`Destinations of ${shown(dev.device)}`, DEST_COLUMNS, dev.destinations.map(d => destinationRow(d, dev.mac))));
    if (dev.destinations_more) art.append(el('p', { class: 'meta' }, `${dev.destinations_more} more destinations, less busy, not listed.`));
    if (dev.folded_flows) art.append(el('p', { class: 'meta' }, `${dev.folded_flows} more flows to destinations past the per-device limit.`));
    return art;
  });
}

function activeTable(view) {
  const rows = view.active.map(a => el('tr', {},
    el('td', { class: 'name' }, shown(a.device)), el('th', { scope: 'row', class: 'dest' }, shown(a.destination)),
    el('td', { class: 'name' }, shown(a.name || a.network || '-')),
    el('td', {}, a.server), el('td', {}, a.protocol + (a.cleartext ? ' (cleartext)' : '')), el('td', {}, a.purpose),
    el('td', { class: 'num' }, bytes(a.bytes)), el('td', { class: 'when' }, time(a.last_seen))));
  const out = [table('Connections active now', ['Device', 'Destination', 'Name', 'Server', 'Protocol', 'Purpose', 'Bytes', 'Last packet'], rows)];
  if (!rows.length) out.push(el('p', { class: 'empty' }, 'No connection is active.'));
  if (view.active_more) out.push(el('p', { class: 'meta' }, `${view.active_more} more active connections, less recent, not listed.`));
  return out;
}

function timelineChart(t) {
  const [w, h, left, bottom] = [640, 220, 56, 24];
  const svg = el('svg:svg', { class: 'chart', viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': 'Bytes by purpose over time' });
  const totals = t.bytes.map(b => b.reduce((x, y) => x + y, 0));
  const max = Math.max(1, ...totals);
  const bar = (w - left) / Math.max(1, t.starts.length);
  const plot = h - bottom - 8;
  svg.append(el('svg:text', { x: 4, y: 14, class: 'axis' }, bytes(max)),
    el('svg:line', { x1: left, y1: h - bottom, x2: w, y2: h - bottom, stroke: '#888' }));
  t.bytes.forEach((b, i) => {
    let y = h - bottom;
    b.forEach((v, j) => {
      if (!v) return;
      const bh = plot * v / max;
      y -= bh;
      svg.append(el('svg:rect', { x: (left + i * bar).toFixed(1), y: y.toFixed(1), width: Math.max(1, bar - 1).toFixed(1), height: bh.toFixed(1), fill: colour(t.purposes[j]) },
        el('svg:title', {}, `${t.purposes[j]}: ${bytes(v)}`)));
    });
  });
  if (t.starts.length) {
    svg.append(el('svg:text', { x: left, y: h - 6, class: 'axis' }, time(t.starts[0])),
      el('svg:text', { x: w, y: h - 6, class: 'axis', 'text-anchor': 'end' }, time(t.starts[t.starts.length - 1] + t.bucket_seconds)));
  }
  const legend = el('ul', { class: 'legend' }, ...t.purposes.map(p => el('li', {},
    el('svg:svg', { width: 12, height: 12, 'aria-hidden': 'true' }, el('svg:rect', { width: 12, height: 12, fill: colour(p) })), ' ' + p)));
  return [svg, legend];
}

function topChart(view) {
  const rows = view.top_destinations;
  const [w, row, labelW] = [640, 22, 220];
  const h = Math.max(1, rows.length) * row + 4;
  const max = Math.max(1, ...rows.map(r => r.bytes));
  const svg = el('svg:svg', { class: 'chart', viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': 'Busiest destinations' });
  rows.forEach((r, i) => {
    const y = i * row + 2;
    const bw = Math.max(1, (w - labelW - 80) * r.bytes / max);
    const name = shown(r.destination);
    svg.append(el('svg:text', { x: labelW - 6, y: y + 15, 'text-anchor': 'end', class: 'label' }, name.length > 28 ? name.slice(0, 27) + '…' : name),
      el('svg:rect', { x: labelW, y, width: bw.toFixed(1), height: row - 6, fill: colour(r.purpose) }, el('svg:title', {}, r.purpose)),
      el('svg:text', { x: (labelW + bw + 4).toFixed(1), y: y + 15, class: 'axis' }, bytes(r.bytes)));
  });
  return [svg];
}

function blindTable(view) {
  return [table('Traffic tetherscope could not name or read', ['Reason', 'What it means', 'Flows', 'Bytes'],
    view.blind_spots.map(b => el('tr', {}, el('th', { scope: 'row' }, b.reason), el('td', {}, b.explanation),
      el('td', { class: 'num' }, b.flows), el('td', { class: 'num' }, bytes(b.bytes)))))];
}

async function triageAction(action, entry, buttons) {
  buttons.forEach(b => { b.disabled = true; });
  const status = document.getElementById('triage-status');
  try {
    const resp = await fetch(`/api/baseline/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ device: entry.mac, destination: entry.destination }),
    });
    status.textContent = resp.ok ? `${action === 'accept' ? 'Accepted' : 'Flagged'} ${shown(entry.destination)}` : `Could not ${action} ${shown(entry.destination)}: HTTP ${resp.status}`;
  } catch (e) {
    status.textContent = `Could not ${action}: ${e}`;
  }
  await refresh();
}

function triageTable(entries) {
  const fresh = entries.filter(e => e.state === 'new');
  if (!fresh.length) return [el('p', { class: 'empty' }, 'No new destination awaits triage.')];
  const rows = fresh.map(e => {
    const accept = el('button', { type: 'button', class: 'accept' }, 'Accept');
    const flag = el('button', { type: 'button', class: 'flag' }, 'Flag');
    const buttons = [accept, flag];
    accept.addEventListener('click', () => triageAction('accept', e, buttons));
    flag.addEventListener('click', () => triageAction('flag', e, buttons));
    if (!triageAllowed) buttons.forEach(b => { b.disabled = true; });
    return el('tr', { 'data-destination': e.destination },
      el('td', { class: 'name' }, shown(e.device)), el('th', { scope: 'row', class: 'dest' }, shown(e.destination)), el('td', {}, e.purpose),
      el('td', {}, shown(e.owner || '-')), el('td', { class: 'when' }, time(e.first_seen)), el('td', { class: 'num' }, e.flows),
      el('td', {}, accept, flag));
  });
  return [table('Destinations first seen after learning, not yet accepted or flagged',
    ['Device', 'Destination', 'Purpose', 'Owner', 'First seen', 'Flows', 'Triage'], rows)];
}

// New software: a TLS client (JA4 fingerprint) a device first used after
// learning, with the destinations it contacted. Triage goes to the device
// the client was seen on.
async function clientAction(action, entry, buttons) {
  buttons.forEach(b => { b.disabled = true; });
  const status = document.getElementById('clients-status');
  try {
    const resp = await fetch(`/api/clients/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ device: entry.mac, client: entry.client }),
    });
    status.textContent = resp.ok ? `${action === 'accept' ? 'Accepted' : 'Flagged'} ${shown(entry.client)} on ${shown(entry.device)}` : `Could not ${action} ${shown(entry.client)}: HTTP ${resp.status}`;
  } catch (e) {
    status.textContent = `Could not ${action}: ${e}`;
  }
  await refresh();
}

function clientTable(entries) {
  if (!entries.length) return [el('p', { class: 'empty' }, 'No new software awaits triage.')];
  const rows = entries.map(e => {
    const accept = el('button', { type: 'button', class: 'accept' }, 'Accept');
    const flag = el('button', { type: 'button', class: 'flag' }, 'Flag');
    const buttons = [accept, flag];
    accept.addEventListener('click', () => clientAction('accept', e, buttons));
    flag.addEventListener('click', () => clientAction('flag', e, buttons));
    if (!triageAllowed) buttons.forEach(b => { b.disabled = true; });
    return el('tr', { 'data-client': e.client },
      el('td', { class: 'name' }, shown(e.device)), el('th', { scope: 'row', class: 'dest' }, shown(e.client)),
      el('td', {}, (e.destinations || []).map(shown).join(', ')),
      el('td', { class: 'when' }, time(e.first_seen)), el('td', { class: 'num' }, e.flows),
      el('td', {}, accept, flag));
  });
  return [table('TLS clients first seen after learning, not yet accepted or flagged',
    ['Device', 'Client (JA4)', 'Destinations it contacted', 'First seen', 'Flows', 'Triage'], rows)];
}

let lastClients = null;
async function redrawClients() {
  try {
    const { data } = await getJson('/api/clients?state=new');
    const seen = JSON.stringify(data);
    // Redrawn only when it changed, so keyboard focus on a button stays put.
    if (seen !== lastClients) {
      lastClients = seen;
      replace('clients-body', ...clientTable(data));
    }
  } catch (e) {
    lastClients = null;
    replace('clients-body', el('p', { class: 'empty' }, 'No baseline store is available to this monitor.'));
  }
}

// The last answer per URL and its ETag: an unchanged resource costs a
// 304 and no redraw.
const known = new Map(); // url -> {etag, data}

// {data, changed}; sends the ETag of the last answer.
async function getJson(path) {
  const last = known.get(path);
  const headers = { Accept: 'application/json' };
  if (last) headers['If-None-Match'] = last.etag;
  const resp = await fetch(path, { headers, cache: 'no-store' });
  if (resp.status === 304 && last) return { data: last.data, changed: false, next: last.next };
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  const data = await resp.json();
  const next = /<([^>]+)>;\s*rel="next"/.exec(resp.headers.get('Link') || '')?.[1];
  const etag = resp.headers.get('ETag');
  if (known.size > 16) known.clear(); // cursors change: keep it small
  if (etag) known.set(path, { etag, data, next });
  return { data, changed: true, next };
}

// Destinations awaiting triage, page after page (bounded: a flood of new
// destinations lists its first pages, not the whole store).
const TRIAGE_PAGES = 5;
async function newDestinations() {
  let path = '/api/baseline?state=new', changed = false;
  const all = [];
  for (let i = 0; path && i < TRIAGE_PAGES; i++) {
    const page = await getJson(path);
    changed = changed || page.changed;
    all.push(...page.data);
    path = page.next;
  }
  return { entries: all, changed };
}

async function redraw() {
  try {
    const { entries, changed } = await newDestinations();
    // Redrawn only when it changed, so keyboard focus on a button stays put.
    if (changed || lastTriage === null) {
      const seen = JSON.stringify(entries);
      if (seen !== lastTriage) {
        lastTriage = seen;
        replace('triage-body', ...triageTable(entries));
      }
    }
  } catch (e) {
    lastTriage = null;
    replace('triage-body', el('p', { class: 'empty' }, 'No baseline store is available to this monitor.'));
  }
  await redrawClients();
  try {
    const { data: view, changed } = await getJson('/api/view');
    if (changed) {
      replace('active-body', ...activeTable(view));
      replace('timeline-body', ...timelineChart(view.timeline));
      replace('top-body', ...topChart(view));
      replace('devices-body', ...deviceList(view));
      replace('blind-body', ...blindTable(view));
    }
    document.getElementById('status').textContent = `${view.flows} flows · ${view.devices.length} devices · updated ${time(Date.now() / 1000)}`;
    document.body.dataset.updated = String(Date.now());
  } catch (e) {
    document.getElementById('status').textContent = `Not updating: ${e.message}`;
  }
}

// One refresh at a time: a call while one runs asks for one more after it.
let inflight = null;
let again = false;
function refresh() {
  if (inflight) {
    again = true;
    return inflight;
  }
  inflight = (async () => {
    do {
      again = false;
      await redraw();
    } while (again);
  })().finally(() => { inflight = null; });
  return inflight;
}

// The next poll is scheduled when the previous one has finished, so a slow
// monitor never has polls piling up.
async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}

poll();
