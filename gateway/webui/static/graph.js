// The connection graph as an SVG in two columns: nodes on the left,
// topics and services on the right; an edge per publish, subscribe and
// serve.

import { svg, el } from './view.js';

const rowH = 34;
const boxH = 26;
const charW = 7; // approximate width of one 12px character

function fit(name, width) {
  const max = Math.max(4, Math.floor((width - 16) / charW));
  return name.length > max ? name.slice(0, max - 1) + '…' : name;
}

// graphSVG draws g ({pubs, subs, svcs}: Map name → node ids) at width
// px; onTopic(name) is called when a topic is clicked.
export function graphSVG(g, width, onTopic) {
  const nodes = new Set();
  for (const m of [g.pubs, g.subs, g.svcs]) for (const ids of m.values()) ids.forEach((id) => nodes.add(id));
  const nodeList = [...nodes].sort();
  const topics = [...new Set([...g.pubs.keys(), ...g.subs.keys()])].sort();
  const services = [...g.svcs.keys()].sort();
  const right = [...topics.map((t) => ({ kind: 'topic', name: t })), ...services.map((s) => ({ kind: 'service', name: s }))];
  if (!nodeList.length && !right.length) return el('p', { class: 'note', text: 'No nodes yet.' });

  const W = Math.min(Math.max(320, width), 900); // wider only spreads the columns apart
  const gap = Math.min(220, Math.max(70, W * 0.28));
  const colW = (W - gap - 4) / 2;
  const rows = Math.max(nodeList.length, right.length);
  const H = rows * rowH + 8;
  const nodeY = new Map();
  const off = (n) => (H - n * rowH) / 2;
  nodeList.forEach((id, i) => nodeY.set(id, off(nodeList.length) + i * rowH + rowH / 2));
  const rightY = new Map();
  right.forEach((r, i) => rightY.set(r.kind + '\0' + r.name, off(right.length) + i * rowH + rowH / 2));

  const root = svg('svg', { class: 'graph', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'connection graph' });
  root.append(svg('defs', {},
    svg('marker', { id: 'arrow-pub', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'm-pub' })),
    svg('marker', { id: 'arrow-sub', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'm-sub' }))));
  const edges = svg('g', { class: 'edges' });
  root.append(edges);
  const x1 = 2 + colW;
  const x2 = W - 2 - colW;
  const curve = (ya, yb) => `M${x1},${ya} C${x1 + gap / 2},${ya} ${x2 - gap / 2},${yb} ${x2},${yb}`;
  const edge = (m, kind, cls, attrs) => {
    for (const [name, ids] of m) {
      const yb = rightY.get(kind + '\0' + name);
      for (const id of ids) {
        edges.append(svg('path', { d: curve(nodeY.get(id), yb), class: 'edge ' + cls, ...attrs },
          svg('title', { text: `${id} ${cls === 'e-pub' ? 'publishes' : cls === 'e-sub' ? 'subscribes to' : 'serves'} ${name}` })));
      }
    }
  };
  edge(g.pubs, 'topic', 'e-pub', { 'marker-end': 'url(#arrow-pub)' });
  edge(g.subs, 'topic', 'e-sub', { 'marker-start': 'url(#arrow-sub)' });
  edge(g.svcs, 'service', 'e-svc', {});

  for (const id of nodeList) {
    const y = nodeY.get(id);
    root.append(svg('g', { class: 'g-node', 'data-node': id },
      svg('rect', { x: 2, y: y - boxH / 2, width: colW, height: boxH, rx: 6 }),
      svg('text', { x: 10, y: y + 4, text: fit(id, colW) }),
      svg('title', { text: id })));
  }
  for (const r of right) {
    const y = rightY.get(r.kind + '\0' + r.name);
    const item = svg('g', { class: r.kind === 'topic' ? 'g-topic' : 'g-service', [r.kind === 'topic' ? 'data-topic' : 'data-service']: r.name },
      svg('rect', { x: x2, y: y - boxH / 2, width: colW, height: boxH, rx: r.kind === 'topic' ? 6 : boxH / 2 }),
      svg('text', { x: x2 + 10, y: y + 4, text: fit(r.name, colW) }),
      svg('title', { text: `${r.kind} ${r.name}` }));
    if (r.kind === 'topic') item.addEventListener('click', () => onTopic(r.name));
    root.append(item);
  }
  return root;
}
