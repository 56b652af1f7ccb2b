// DOM helpers and the message views. Everything from the network goes
// into the page as text nodes or attribute values, never as markup:
// topic names and payloads are chosen by whoever publishes them.

import { hex } from './protobuf.js';

const svgNS = 'http://www.w3.org/2000/svg';

// el makes an element; attrs are its attributes (class, text, on*
// listeners, data-*), children are nodes or strings (as text).
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(svgNS, tag), attrs, children);
}

function build(e, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function clear(e) {
  while (e.firstChild) e.firstChild.remove();
  return e;
}

// Bounds on what one message view renders.
const maxString = 2000; // characters of one string
const maxItems = 200; // entries of one array or object
const maxNodes = 3000; // values of one message
const openDepth = 2; // levels shown expanded

// jsonTree renders a decoded value as a collapsible tree.
export function jsonTree(value) {
  const budget = { nodes: maxNodes };
  const root = el('div', { class: 'tree' });
  root.append(node(value, 0, budget));
  if (budget.nodes <= 0) root.append(el('p', { class: 'note', text: `Showing the first ${maxNodes} values of this message.` }));
  return root;
}

function node(v, depth, budget) {
  budget.nodes--;
  if (v === null) return el('span', { class: 'j-null', text: 'null' });
  switch (typeof v) {
    case 'string': {
      const s = v.length > maxString ? JSON.stringify(v.slice(0, maxString)).slice(0, -1) + `…" (${v.length} characters)` : JSON.stringify(v);
      return el('span', { class: 'j-str', text: s });
    }
    case 'number': return el('span', { class: 'j-num', text: String(v) });
    case 'boolean': return el('span', { class: 'j-bool', text: String(v) });
    case 'object': break;
    default: return el('span', { text: String(v) });
  }
  const isArr = Array.isArray(v);
  const keys = isArr ? null : Object.keys(v);
  const n = isArr ? v.length : keys.length;
  const [open, close] = isArr ? ['[', ']'] : ['{', '}'];
  if (n === 0) return el('span', { class: 'j-punct', text: open + close });
  const list = el('ul');
  for (let i = 0; i < n && i < maxItems; i++) {
    if (budget.nodes <= 0) { list.append(el('li', { class: 'note', text: '…' })); break; }
    const key = isArr ? i : keys[i];
    list.append(el('li', {}, el('span', { class: isArr ? 'j-idx' : 'j-key', text: isArr ? `${key}` : `${JSON.stringify(key)}` }),
      el('span', { class: 'j-punct', text: ': ' }), node(v[key], depth + 1, budget)));
  }
  if (n > maxItems) list.append(el('li', { class: 'note', text: `… ${n - maxItems} more` }));
  const summary = el('summary', {}, el('span', { class: 'j-punct', text: open }), el('span', { class: 'j-count', text: isArr ? ` ${n} items ` : ` ${n} fields ` }), el('span', { class: 'j-punct', text: close }));
  return el('details', { open: depth < openDepth }, summary, list);
}

export function errorBox(msg, bytes) {
  return el('div', { class: 'err' }, el('strong', { text: 'Cannot decode: ' }), msg,
    bytes ? el('pre', { class: 'hex', text: hex(bytes, 256) }) : null);
}

const utf8 = new TextDecoder('utf-8');
const maxJSONBytes = 1 << 20; // larger JSON messages are shown as text, cut
const maxProtoBytes = 4 << 20;

// rawView shows opaque bytes: hex, and the text when it reads as UTF-8.
export function rawView(bytes) {
  const cut = bytes.subarray(0, 4096);
  let text = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(cut);
  } catch { /* not text */ }
  const printable = text !== null && !/[\x00-\x08\x0e-\x1f]/.test(text);
  return el('div', {},
    printable ? el('pre', { class: 'text', text: text + (bytes.length > cut.length ? `\n… (${bytes.length} bytes)` : '') }) : null,
    el('pre', { class: 'hex', text: hex(bytes, 256) }));
}

// messageView decodes one message of a channel for display.
export function messageView(ch, bytes, registry) {
  try {
    switch (ch.encoding) {
      case 'json': {
        if (bytes.length > maxJSONBytes) {
          return el('div', {}, el('p', { class: 'note', text: `A ${bytes.length}-byte message: showing its first 4 KiB as text.` }),
            el('pre', { class: 'text', text: utf8.decode(bytes.subarray(0, 4096)) + '…' }));
        }
        let v;
        try {
          v = JSON.parse(utf8.decode(bytes));
        } catch (e) {
          return errorBox(`not JSON (${e.message})`, bytes);
        }
        return jsonTree(v);
      }
      case 'protobuf': {
        if (bytes.length > maxProtoBytes) return el('div', {}, el('p', { class: 'note', text: `A ${bytes.length}-byte message: too large to decode here.` }), rawView(bytes));
        if (!registry) return errorBox('the channel has no protobuf schema', bytes);
        return jsonTree(registry().decode(ch.schemaName, bytes));
      }
      default:
        return rawView(bytes);
    }
  } catch (e) {
    return errorBox(e.message || String(e), bytes);
  }
}

export function fmtRate(hz) {
  if (!hz) return '0 Hz';
  // Tiers on the rounded value, so 9.999 reads 10.0, not 10.00.
  return hz >= 99.95 ? `${hz.toFixed(0)} Hz` : hz >= 9.995 ? `${hz.toFixed(1)} Hz` : `${hz.toFixed(2)} Hz`;
}

export function fmtBytes(n) {
  if (n < 1000) return `${n.toFixed(0)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

// plot draws rate (line) and bandwidth (area, its own scale) points on a
// small canvas.
export function plot(canvas, points) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 120;
  const h = canvas.clientHeight || 32;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(canvas);
  const slots = 60;
  const x = (i) => w - (points.length - 1 - i) * (w / (slots - 1));
  // Headroom above the highest point, so a steady rate is not drawn on the edge.
  const maxHz = 1.25 * Math.max(1e-9, ...points.map((p) => p.hz));
  const maxBw = 1.25 * Math.max(1e-9, ...points.map((p) => p.bw));
  if (points.length > 1) {
    ctx.beginPath();
    ctx.moveTo(x(0), h);
    points.forEach((p, i) => ctx.lineTo(x(i), h - 2 - (p.bw / maxBw) * (h - 4)));
    ctx.lineTo(x(points.length - 1), h);
    ctx.closePath();
    ctx.fillStyle = style.getPropertyValue('--plot-bw').trim() || 'rgba(128,128,128,.2)';
    ctx.fill();
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(i), h - 2 - (p.hz / maxHz) * (h - 4)));
    ctx.strokeStyle = style.getPropertyValue('--accent').trim() || '#36c';
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}
