// The page: a Foxglove WebSocket client (foxglove/ws-protocol spec) of
// the gateway that serves it. It shows the connection graph, every
// channel's rate and bandwidth, a topic's latest messages, and calls
// services.

import { el, clear, messageView, fmtRate, fmtBytes, plot, errorBox, rawView } from './view.js';
import { Registry } from './protobuf.js';
import { graphSVG } from './graph.js';

const subprotocols = ['foxglove.sdk.v1', 'foxglove.websocket.v1'];
const keepMessages = 10; // latest messages kept per channel
const showMessages = 5; // of which shown
const keepSends = 4000; // send times kept per channel for its rate
const rateWindow = 2e9; // ns of send times a rate is computed over
const plotPoints = 60; // one a second: the last minute
const maxStatuses = 5;
const callTimeout = 10000; // ms; the gateway gives a service 5 s
const utf8enc = new TextEncoder();

const $ = (id) => document.getElementById(id);

const state = {
  ws: null,
  caps: [],
  channels: new Map(), // id → channel
  subs: new Map(), // subscription id → channel id
  services: new Map(), // id → advertised service
  graph: { pubs: new Map(), subs: new Map(), svcs: new Map() },
  hasGraph: false,
  live: true,
  selected: null, // topic name
  nextSub: 1,
  nextCall: 1,
  calls: new Map(), // call id → {resolve, reject, timer}
  statuses: [],
  backoff: 500,
};

// ---- connection

function wsURL() {
  const u = new URL('/', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = new URLSearchParams(location.search).get('token');
  u.search = token ? '?token=' + encodeURIComponent(token) : '';
  u.hash = '';
  return u.toString();
}

function setConn(s, text) {
  const c = $('conn');
  c.dataset.state = s;
  c.textContent = text;
}

function connect() {
  setConn('connecting', 'connecting…');
  let ws;
  try {
    ws = new WebSocket(wsURL(), subprotocols);
  } catch (e) {
    retry(String(e));
    return;
  }
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onmessage = (ev) => {
    if (state.ws !== ws) return;
    try {
      if (typeof ev.data === 'string') onText(JSON.parse(ev.data));
      else onBinary(new DataView(ev.data));
    } catch (e) {
      addStatus({ level: 2, message: 'bad message from the gateway: ' + e.message });
    }
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    reset();
    retry(ev.reason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`));
  };
}

// retry reconnects after a backoff that doubles up to 10 s, jittered so
// that many pages do not come back at once.
function retry(why) {
  const wait = state.backoff * (0.75 + Math.random() * 0.5);
  state.backoff = Math.min(state.backoff * 2, 10000);
  const until = Date.now() + wait;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    setConn('down', `disconnected: ${why}; retrying in ${Math.max(left, 0)} s`);
  };
  tick();
  const iv = setInterval(tick, 1000);
  setTimeout(() => { clearInterval(iv); connect(); }, wait);
}

function reset() {
  state.channels.clear();
  state.subs.clear();
  state.services.clear();
  state.graph = { pubs: new Map(), subs: new Map(), svcs: new Map() };
  for (const c of state.calls.values()) { clearTimeout(c.timer); c.reject(new Error('disconnected from the gateway')); }
  state.calls.clear();
  schedule();
}

function send(obj) {
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(obj));
}

function onText(m) {
  switch (m.op) {
    case 'serverInfo':
      state.caps = m.capabilities || [];
      state.backoff = 500;
      setConn('up', 'connected');
      $('server').textContent = `${m.name || 'gateway'}${m.metadata?.version ? ' ' + m.metadata.version : ''} · ${wsURL().replace(/\?.*/, '')}`;
      state.hasGraph = state.caps.includes('connectionGraph');
      if (state.hasGraph) send({ op: 'subscribeConnectionGraph' });
      break;
    case 'status': addStatus(m); break;
    case 'removeStatus':
      state.statuses = state.statuses.filter((s) => !s.id || !(m.statusIds || []).includes(s.id));
      renderStatuses();
      break;
    case 'advertise':
      for (const c of m.channels || []) addChannel(c);
      schedule();
      break;
    case 'unadvertise':
      for (const id of m.channelIds || []) {
        const ch = state.channels.get(id);
        if (ch?.sub) state.subs.delete(ch.sub);
        state.channels.delete(id);
      }
      schedule();
      break;
    case 'advertiseServices':
      for (const s of m.services || []) state.services.set(s.id, s);
      schedule();
      break;
    case 'unadvertiseServices':
      for (const id of m.serviceIds || []) state.services.delete(id);
      schedule();
      break;
    case 'connectionGraphUpdate': onGraph(m); break;
    case 'serviceCallFailure': {
      const c = state.calls.get(m.callId);
      if (c) { state.calls.delete(m.callId); clearTimeout(c.timer); c.reject(new Error(m.message || 'call failed')); }
      break;
    }
    default: break; // ops this page does not use
  }
}

function onBinary(d) {
  const op = d.getUint8(0);
  if (op === 0x01) { // messageData: subscription id, send time (ns), payload
    const ch = state.channels.get(state.subs.get(d.getUint32(1, true)));
    if (!ch) return;
    const t = d.getBigUint64(5, true);
    const data = new Uint8Array(d.buffer, d.byteOffset + 13);
    ch.msgs.push({ t, at: Date.now(), data });
    if (ch.msgs.length > keepMessages) ch.msgs.shift();
    ch.sends.push({ t: Number(t), n: data.length });
    if (ch.sends.length > keepSends) ch.sends.splice(0, ch.sends.length - keepSends);
    ch.count++;
    if (ch.topic === state.selected) msgDirty = true;
  } else if (op === 0x03) { // serviceCallResponse
    const callId = d.getUint32(5, true);
    const encLen = d.getUint32(9, true);
    const c = state.calls.get(callId);
    if (!c) return;
    state.calls.delete(callId);
    clearTimeout(c.timer);
    c.resolve(new Uint8Array(d.buffer, d.byteOffset + 13 + encLen));
  }
}

function addChannel(c) {
  const ch = { ...c, msgs: [], sends: [], points: [], count: 0, sub: null, registry: null };
  // The registry is parsed once, when first needed.
  if (c.encoding === 'protobuf' && c.schema) ch.registry = lazyRegistry(c.schema);
  state.channels.set(c.id, ch);
  if (state.live) subscribe([ch]);
}

function lazyRegistry(b64) {
  let reg = null;
  return () => (reg ??= Registry.fromBase64(b64));
}

function subscribe(chs) {
  const subscriptions = [];
  for (const ch of chs) {
    if (ch.sub) continue;
    ch.sub = state.nextSub++;
    state.subs.set(ch.sub, ch.id);
    subscriptions.push({ id: ch.sub, channelId: ch.id });
  }
  if (subscriptions.length) send({ op: 'subscribe', subscriptions });
}

function unsubscribeAll() {
  const ids = [];
  for (const ch of state.channels.values()) {
    if (!ch.sub) continue;
    ids.push(ch.sub);
    state.subs.delete(ch.sub);
    ch.sub = null;
  }
  if (ids.length) send({ op: 'unsubscribe', subscriptionIds: ids });
}

function onGraph(m) {
  const g = state.graph;
  for (const t of m.publishedTopics || []) g.pubs.set(t.name, t.publisherIds || []);
  for (const t of m.subscribedTopics || []) g.subs.set(t.name, t.subscriberIds || []);
  for (const s of m.advertisedServices || []) g.svcs.set(s.name, s.providerIds || []);
  for (const name of m.removedTopics || []) { g.pubs.delete(name); g.subs.delete(name); }
  for (const name of m.removedServices || []) g.svcs.delete(name);
  for (const mm of [g.pubs, g.subs]) for (const [k, v] of mm) if (!v.length) mm.delete(k);
  schedule();
}

function addStatus(m) {
  const s = { level: m.level ?? 0, message: String(m.message ?? ''), id: m.id, at: new Date() };
  state.statuses = state.statuses.filter((x) => !s.id || x.id !== s.id);
  state.statuses.push(s);
  if (state.statuses.length > maxStatuses) state.statuses.shift();
  renderStatuses();
}

// ---- rendering: structure when something changes (batched per frame),
// stats once a second, the chosen topic's messages at most 4 times a second.

let scheduled = false;
let msgDirty = false;

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => { scheduled = false; render(); });
}

function render() {
  renderGraph();
  renderTopics();
  renderServices();
  msgDirty = true;
}

let graphWidth = 0;
let nodesOpen = false;
function renderGraph() {
  const box = $('graph');
  graphWidth = box.clientWidth;
  clear(box).append(graphSVG(state.hasGraph ? state.graph : graphFromChannels(), graphWidth, select));
  const nodes = clear($('nodes'));
  if (!state.hasGraph) nodes.append(el('p', { class: 'note', text: 'This gateway does not offer the connection graph: showing its topics only.' }));
  const byNode = new Map();
  const add = (m, kind) => { for (const [name, ids] of m) for (const id of ids) { if (!byNode.has(id)) byNode.set(id, { pub: [], sub: [], svc: [] }); byNode.get(id)[kind].push(name); } };
  add(state.graph.pubs, 'pub'); add(state.graph.subs, 'sub'); add(state.graph.svcs, 'svc');
  if (!byNode.size) return;
  const table = el('table', { class: 'nodetable' }, el('thead', {}, el('tr', {}, el('th', { text: 'Node' }), el('th', { text: 'Publishes' }), el('th', { text: 'Subscribes' }), el('th', { text: 'Serves' }))));
  const tb = el('tbody');
  for (const id of [...byNode.keys()].sort()) {
    const n = byNode.get(id);
    const cell = (label, list) => el('td', { 'data-label': label, class: list.length ? null : 'empty' }, list.length ? list.sort().join(', ') : '—');
    tb.append(el('tr', { 'data-node': id }, el('td', { class: 'nodename', 'data-label': 'Node' }, id, id.startsWith('colugo-web') ? el('span', { class: 'tag', text: 'this page’s gateway' }) : null),
      cell('Publishes', n.pub), cell('Subscribes', n.sub), cell('Serves', n.svc)));
  }
  table.append(tb);
  // Closed by default: the graph says the same; kept open across updates.
  const det = el('details', { class: 'nodelist', open: nodesOpen, ontoggle: (e) => { nodesOpen = e.target.open; } },
    el('summary', { text: `${byNode.size} nodes as a table` }), table);
  nodes.append(det);
}

function graphFromChannels() {
  const g = { pubs: new Map(), subs: new Map(), svcs: new Map() };
  for (const ch of state.channels.values()) g.pubs.set(ch.topic, []);
  for (const s of state.services.values()) g.svcs.set(s.name, []);
  return g;
}

const topicRows = new Map(); // channel id → row elements

function renderTopics() {
  const box = $('topics');
  const chans = [...state.channels.values()].sort((a, b) => a.topic.localeCompare(b.topic) || a.id - b.id);
  for (const [id, row] of topicRows) if (!state.channels.has(id)) { row.root.remove(); topicRows.delete(id); }
  if (!chans.length) {
    if (!box.querySelector('.note')) clear(box).append(el('p', { class: 'note', text: 'No topics yet.' }));
    return;
  }
  box.querySelector(':scope > .note')?.remove();
  for (const ch of chans) {
    let row = topicRows.get(ch.id);
    if (!row) {
      const rate = el('span', { class: 'rate', text: '—' });
      const bw = el('span', { class: 'bw', text: '' });
      const canvas = el('canvas', { class: 'spark', width: 120, height: 32, 'aria-hidden': 'true' });
      const root = el('button', { type: 'button', class: 'topic', 'data-topic': ch.topic, 'data-channel': ch.id, onclick: () => select(ch.topic) },
        el('span', { class: 'tname' }, el('span', { class: 'name', text: ch.topic }),
          el('span', { class: 'type', text: `${ch.encoding}${ch.schemaName ? ' · ' + ch.schemaName : ''}` })),
        el('span', { class: 'stats' }, rate, bw), canvas);
      row = { root, rate, bw, canvas };
      topicRows.set(ch.id, row);
    }
    row.root.classList.toggle('selected', ch.topic === state.selected);
    box.append(row.root); // in sorted order
  }
}

// tickStats computes each channel's rate from the send times of its last
// rateWindow: (n-1) intervals over their span, summed over publishers
// because a channel merges them; bandwidth is rate times mean size.
function tickStats() {
  for (const ch of state.channels.values()) {
    let hz = 0;
    let bw = 0;
    const s = ch.sends;
    if (s.length > 1) {
      let maxT = -Infinity;
      for (const x of s) maxT = Math.max(maxT, x.t);
      const recent = s.filter((x) => x.t >= maxT - rateWindow);
      const stale = Date.now() - (ch.msgs.at(-1)?.at ?? 0) > 3000;
      if (recent.length > 1 && !stale) {
        const minT = Math.min(...recent.map((x) => x.t));
        if (maxT > minT) {
          hz = (recent.length - 1) / ((maxT - minT) / 1e9);
          bw = hz * recent.reduce((a, x) => a + x.n, 0) / recent.length;
        }
      }
      // Keep what a later window needs only.
      const cut = s.findIndex((x) => x.t >= maxT - rateWindow);
      if (cut > 0) s.splice(0, cut);
    }
    ch.points.push({ hz, bw });
    if (ch.points.length > plotPoints) ch.points.shift();
    const row = topicRows.get(ch.id);
    if (row) {
      row.rate.textContent = ch.sub ? fmtRate(hz) : 'not live';
      row.bw.textContent = ch.sub ? `${fmtBytes(bw)}/s` : '';
      plot(row.canvas, ch.points);
    }
  }
}

function select(topic) {
  state.selected = topic;
  frozen = false;
  for (const [id, row] of topicRows) row.root.classList.toggle('selected', state.channels.get(id)?.topic === topic);
  msgDirty = true;
  renderMessages();
  if (matchMedia('(max-width: 760px)').matches) $('messages-card').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

let frozen = false;

function renderMessages() {
  if (!msgDirty || frozen) return;
  msgDirty = false;
  const topic = state.selected;
  if (topic === null) return;
  $('msg-title').textContent = topic;
  const chans = [...state.channels.values()].filter((c) => c.topic === topic);
  const meta = clear($('msg-meta'));
  const box = clear($('messages'));
  if (!chans.length) {
    box.append(el('p', { class: 'note', text: 'No publisher of this topic is advertised to the gateway.' }));
    return;
  }
  meta.append(el('button', { type: 'button', class: 'small', onclick: (e) => { frozen = !frozen; e.target.textContent = frozen ? 'resume' : 'pause'; if (!frozen) { msgDirty = true; renderMessages(); } } , text: 'pause' }));
  for (const ch of chans) {
    meta.append(el('span', { class: 'chip', text: `${ch.encoding}${ch.schemaName ? ' · ' + ch.schemaName : ''} · ${ch.count} received` }));
    if (!ch.sub) box.append(el('p', { class: 'note', text: 'Live is off: no new messages.' }));
    if (!ch.msgs.length) { box.append(el('p', { class: 'note', text: 'No message yet.' })); continue; }
    const msgs = [...ch.msgs].reverse().slice(0, showMessages);
    msgs.forEach((m, i) => {
      const when = new Date(Number(m.t / 1000000n));
      const body = messageView(ch, m.data, ch.registry);
      const summary = el('summary', {}, el('span', { text: i === 0 ? 'latest' : `${i} before` }),
        el('span', { class: 'when', text: `sent ${clock(when)} · ${fmtBytes(m.data.length)}` }));
      box.append(el('details', { class: 'msg', open: i === 0, 'data-role': i === 0 ? 'latest' : 'older' }, summary, body));
    });
  }
}

// clock is a time of day to the millisecond, as a log shows it.
function clock(d) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// ---- services

const serviceCards = new Map(); // id → card

function renderServices() {
  const box = $('services');
  for (const [id, card] of serviceCards) if (!state.services.has(id)) { card.remove(); serviceCards.delete(id); }
  if (!state.services.size) {
    if (!box.querySelector('.note')) clear(box).append(el('p', { class: 'note', text: 'No services.' }));
    return;
  }
  box.querySelector(':scope > .note')?.remove();
  for (const s of [...state.services.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    let card = serviceCards.get(s.id);
    if (!card) { card = serviceCard(s); serviceCards.set(s.id, card); }
    box.append(card);
  }
}

function reqDesc(s) { return s.request || { encoding: 'json', schemaName: s.type, schema: s.requestSchema, schemaEncoding: 'jsonschema' }; }
function respDesc(s) { return s.response || { encoding: reqDesc(s).encoding, schemaName: '', schema: s.responseSchema }; }

function serviceCard(s) {
  const req = reqDesc(s);
  const resp = respDesc(s);
  let reqReg = null;
  let note = null;
  let prefill = '{}';
  try {
    if (req.encoding === 'protobuf' && req.schema) {
      reqReg = Registry.fromBase64(req.schema);
      prefill = JSON.stringify(reqReg.template(req.schemaName), null, 2);
      note = 'Protobuf request: write it as JSON (field names; 64-bit integers as numbers or strings, enums by name, bytes as base64); the page encodes it.';
    } else if (req.encoding === 'json' && req.schema) {
      prefill = JSON.stringify(fromSchema(JSON.parse(req.schema), 0), null, 2);
    } else if (req.encoding === 'protobuf') {
      note = 'This protobuf service advertises no schema: the page cannot encode its request.';
    } else if (req.encoding !== 'json') {
      prefill = '';
      note = `Encoding ${req.encoding}: the text is sent as UTF-8 bytes.`;
    }
  } catch (e) {
    note = 'Cannot read the request schema: ' + e.message;
  }
  const area = el('textarea', { rows: Math.min(8, prefill.split('\n').length + 1), spellcheck: 'false', 'aria-label': `request to ${s.name}`, 'data-service': s.name });
  area.value = prefill;
  const result = el('div', { class: 'result', 'data-role': 'result', 'aria-live': 'polite' });
  const button = el('button', { type: 'submit', class: 'primary', text: 'Call' });
  const form = el('form', { class: 'call', onsubmit: (e) => {
    e.preventDefault();
    button.disabled = true;
    clear(result).append(el('p', { class: 'note', text: 'calling…' }));
    const started = performance.now();
    call(s, req, reqReg, area.value).then((bytes) => {
      const ms = performance.now() - started;
      const view = resp.encoding === 'protobuf' && resp.schema
        ? messageView({ encoding: 'protobuf', schemaName: resp.schemaName }, bytes, lazyRegistry(resp.schema))
        : resp.encoding === 'json' ? messageView({ encoding: 'json' }, bytes, null) : rawView(bytes);
      clear(result).append(el('p', { class: 'ok', text: `Reply in ${ms.toFixed(0)} ms` }), view);
    }, (err) => {
      clear(result).append(errorBox(err.message));
      result.firstChild.dataset.role = 'failure';
    }).finally(() => { button.disabled = false; });
  } }, area, el('div', { class: 'row' }, button, note ? el('span', { class: 'note', text: note }) : null), result);
  return el('div', { class: 'service', 'data-service': s.name },
    el('div', { class: 'shead' }, el('span', { class: 'name', text: s.name }),
      el('span', { class: 'type', text: `${req.encoding} · ${req.schemaName || s.type || '?'} → ${resp.schemaName || '?'}` })),
    form);
}

// fromSchema is an example value of a JSON Schema, for the form.
function fromSchema(sch, depth) {
  if (!sch || typeof sch !== 'object' || depth > 5) return null;
  if ('default' in sch) return sch.default;
  if (Array.isArray(sch.examples) && sch.examples.length) return sch.examples[0];
  if ('const' in sch) return sch.const;
  if (Array.isArray(sch.enum) && sch.enum.length) return sch.enum[0];
  const type = Array.isArray(sch.type) ? sch.type.find((t) => t !== 'null') : sch.type;
  switch (type) {
    case 'object': {
      const o = {};
      for (const [k, v] of Object.entries(sch.properties || {})) o[k] = fromSchema(v, depth + 1);
      return o;
    }
    case 'array': return [];
    case 'string': return '';
    case 'integer': case 'number': return 0;
    case 'boolean': return false;
    default: return sch.properties ? fromSchema({ ...sch, type: 'object' }, depth) : null;
  }
}

function call(s, req, reqReg, text) {
  return new Promise((resolve, reject) => {
    if (state.ws?.readyState !== WebSocket.OPEN) throw new Error('not connected to the gateway');
    let payload;
    if (req.encoding === 'json') {
      JSON.parse(text); // a typo is caught here rather than by the service
      payload = utf8enc.encode(text);
    } else if (req.encoding === 'protobuf') {
      if (!reqReg) throw new Error('no schema to encode the request with');
      payload = reqReg.encode(req.schemaName, JSON.parse(text));
    } else {
      payload = utf8enc.encode(text);
    }
    const enc = utf8enc.encode(req.encoding);
    const callId = state.nextCall++;
    const buf = new Uint8Array(13 + enc.length + payload.length);
    const d = new DataView(buf.buffer);
    d.setUint8(0, 0x02); // serviceCallRequest
    d.setUint32(1, s.id, true);
    d.setUint32(5, callId, true);
    d.setUint32(9, enc.length, true);
    buf.set(enc, 13);
    buf.set(payload, 13 + enc.length);
    const timer = setTimeout(() => { state.calls.delete(callId); reject(new Error('no reply within 10 s')); }, callTimeout);
    state.calls.set(callId, { resolve, reject, timer });
    state.ws.send(buf);
  });
}

// ---- statuses

function renderStatuses() {
  const box = clear($('statuses'));
  const levels = ['info', 'warning', 'error'];
  for (const s of state.statuses) {
    const item = el('div', { class: 'status s-' + (levels[s.level] || 'info'), 'data-status-id': s.id ?? '' },
      el('span', { class: 'when', text: clock(s.at).slice(0, 8) }), el('span', { text: s.message }),
      el('button', { type: 'button', class: 'x', 'aria-label': 'dismiss', text: '×', onclick: () => { state.statuses = state.statuses.filter((x) => x !== s); renderStatuses(); } }));
    box.append(item);
  }
}

// ---- start

$('live').addEventListener('change', (e) => {
  state.live = e.target.checked;
  if (state.live) subscribe([...state.channels.values()]);
  else unsubscribeAll();
  $('live-note').classList.toggle('off', !state.live);
  msgDirty = true;
});
window.addEventListener('resize', () => { if ($('graph').clientWidth !== graphWidth) renderGraph(); });
setInterval(tickStats, 1000);
setInterval(renderMessages, 250);
render();
connect();

