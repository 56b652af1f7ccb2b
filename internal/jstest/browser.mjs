// browser.mjs drives colugo web's page in headless Chromium:
//   node browser.mjs <page url> <screenshot dir> [hostile topic]
// It checks the graph, a JSON topic's updates, a protobuf topic's decoding,
// a service call and the phone layout, prints the results as one JSON
// object on stdout (browser_test.go checks them too) and exits non-zero
// when a check fails. Every wait is bounded.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [url, shots, hostile] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node browser.mjs <page url> <screenshot dir>');
  process.exit(2);
}
const wait = 15000; // ms, for any one condition
const results = { checks: {}, screenshots: [], console: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Fresh profile (launch makes one), no network beyond the page's own host.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 20000,
});
let failed = false;
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(wait);
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') results.console.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => results.console.push('pageerror: ' + e.message));

  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#conn[data-state="up"]');

  // The graph: the example nodes and their topics and service.
  for (const n of ['publisher', 'subscriber', 'server', 'protobuf-pub', 'protobuf-serve']) await page.waitForSelector(`svg.graph [data-node="${n}"]`);
  for (const t of ['robot/pose', 'robot/pose.pb']) await page.waitForSelector(`svg.graph [data-topic="${t}"]`);
  await page.waitForSelector('svg.graph [data-service="math/add"]');
  results.checks.graph = await page.$$eval('svg.graph [data-node]', (es) => es.map((e) => e.dataset.node));
  results.checks.graphTopics = await page.$$eval('svg.graph [data-topic]', (es) => es.map((e) => e.dataset.topic));
  // The subscriber's edge: a subscribe edge exists.
  results.checks.subscribeEdges = await page.$$eval('svg.graph path.e-sub', (es) => es.length);

  // robot/pose: two different values, and a rate.
  await page.click('button.topic[data-topic="robot/pose"]');
  const latest = '#messages details[data-role="latest"] .tree';
  await page.waitForSelector(latest);
  const first = await page.textContent(latest);
  await page.waitForFunction(([sel, v]) => document.querySelector(sel)?.textContent !== v, [latest, first], { timeout: wait });
  const second = await page.textContent(latest);
  results.checks.pose = { first, second };
  await page.waitForFunction(() => /[1-9][\d.]* Hz/.test(document.querySelector('button.topic[data-topic="robot/pose"] .rate')?.textContent || ''));
  results.checks.poseRate = await page.textContent('button.topic[data-topic="robot/pose"] .rate');

  // robot/pose.pb: decoded to named fields.
  await page.click('button.topic[data-topic="robot/pose.pb"]');
  await page.waitForFunction((sel) => /"frame".*"map"/.test(document.querySelector(sel)?.textContent || ''), latest);
  results.checks.posePB = await page.textContent(latest);

  // math/add: {"a":2,"b":3} gives 5.
  const form = '.service[data-service="math/add"]';
  await page.fill(`${form} textarea`, '{"a": 2, "b": 3}');
  await page.click(`${form} button[type="submit"]`);
  await page.waitForFunction((sel) => /"sum"\s*:\s*5\b/.test(document.querySelector(sel)?.textContent || ''), `${form} .result`);
  results.checks.add = await page.textContent(`${form} .result .tree`);

  // math/add.pb: the request encoded to protobuf by the page, the reply decoded.
  const pform = '.service[data-service="math/add.pb"]';
  await page.waitForSelector(pform);
  results.checks.addPBPrefill = await page.inputValue(`${pform} textarea`);
  await page.fill(`${pform} textarea`, '{"a": 2, "b": "3"}');
  await page.click(`${pform} button[type="submit"]`);
  await page.waitForFunction((sel) => /"sum"\s*:\s*5\b/.test(document.querySelector(sel)?.textContent || ''), `${pform} .result`);
  results.checks.addPB = await page.textContent(`${pform} .result .tree`);
  // A field the request does not have is refused by the page.
  await page.fill(`${pform} textarea`, '{"c": 1}');
  await page.click(`${pform} button[type="submit"]`);
  await page.waitForSelector(`${pform} .result [data-role="failure"]`);
  results.checks.addPBBad = await page.textContent(`${pform} .result`);

  // The protobuf decoder and encoder on a schema with every kind of field,
  // run in the page (its module, its browser). The descriptors are written
  // by hand: descriptor.proto field numbers.
  results.checks.protobuf = await page.evaluate(async () => {
    const pb = await import('/protobuf.js');
    const enc = new TextEncoder();
    const cat = (...a) => { const n = a.reduce((s, x) => s + x.length, 0); const o = new Uint8Array(n); let i = 0; for (const x of a) { o.set(x, i); i += x.length; } return o; };
    const varint = (v) => { v = BigInt(v); const o = []; do { let b = Number(v & 0x7fn); v >>= 7n; if (v) b |= 0x80; o.push(b); } while (v); return Uint8Array.from(o); };
    const tag = (f, w) => varint((f << 3) | w);
    const ld = (f, b) => cat(tag(f, 2), varint(b.length), b);
    const s = (f, str) => ld(f, enc.encode(str));
    const vi = (f, v) => cat(tag(f, 0), varint(v));
    // FieldDescriptorProto: name 1, number 3, label 4, type 5, type_name 6, options 8 (packed 2).
    const field = (name, no, type, { label = 1, typeName, packed } = {}) => cat(s(1, name), vi(3, no), vi(4, label), vi(5, type),
      typeName ? s(6, typeName) : new Uint8Array(), packed === undefined ? new Uint8Array() : ld(8, vi(2, packed ? 1 : 0)));
    const entry = cat(s(1, 'MEntry'), ld(2, field('key', 1, 9)), ld(2, field('value', 2, 5)), ld(7, vi(7, 1)));
    const msg = cat(s(1, 'T'),
      ld(2, field('s', 1, 17)), ld(2, field('l', 2, 18)), ld(2, field('p', 3, 5, { label: 3 })),
      ld(2, field('u', 4, 5, { label: 3, packed: false })), ld(2, field('m', 5, 11, { label: 3, typeName: '.t.T.MEntry' })),
      ld(2, field('e', 6, 14, { typeName: '.t.E' })), ld(2, field('child', 7, 11, { typeName: '.t.T' })),
      ld(2, field('f32', 8, 7)), ld(2, field('sf', 9, 16)), ld(2, field('fl', 10, 2)), ld(2, field('b', 11, 12)),
      ld(2, field('ok', 12, 8)), ld(2, field('big', 13, 4)), ld(2, field('d', 14, 1)), ld(2, field('str', 15, 9)),
      ld(3, entry));
    const en = cat(s(1, 'E'), ld(2, cat(s(1, 'ZERO'), vi(2, 0))), ld(2, cat(s(1, 'TWO'), vi(2, 2))));
    const file = cat(s(1, 't.proto'), s(2, 't'), ld(4, msg), ld(5, en), s(12, 'proto3'));
    const reg = pb.Registry.fromSet(ld(1, file));
    const out = {};
    const v = { s: -3, l: '-9007199254740993', p: [1, -1, 300], u: [7, 8], m: { a: 1, b: -2 }, e: 'TWO',
      child: { s: 1, str: 'ü' }, f32: 4294967295, sf: -5, fl: 1.5, b: 'AAH/', ok: true, big: '18446744073709551615', d: -0.25, str: 'x"<b>' };
    const bytes = reg.encode('t.T', v);
    out.roundTrip = JSON.stringify(reg.decode('t.T', bytes));
    out.want = JSON.stringify(v);
    // sint32 -3 is zigzag 5; field u unpacked, p packed, as written.
    out.zigzag = Array.from(bytes.subarray(0, 2)).join(',');
    // The reverse of what the schema says is read too: p unpacked, u packed.
    out.bothWays = JSON.stringify(reg.decode('t.T', cat(vi(3, 5), vi(3, 6), ld(4, cat(varint(1), varint(2))))));
    out.enumUnknown = JSON.stringify(reg.decode('t.T', vi(6, 9)));
    out.unknown = JSON.stringify(reg.decode('t.T', cat(vi(99, 1), ld(98, Uint8Array.from([1, 2])))));
    const errs = [];
    for (const bad of [cat(tag(15, 2), varint(10), enc.encode('abc')), Uint8Array.from([0x80]), Uint8Array.from([0x0f]), Uint8Array.from([0x00, 0x01])]) {
      try { reg.decode('t.T', bad); errs.push('no error'); } catch (e) { errs.push(e.message); }
    }
    let deep = new Uint8Array(); // a child 100 levels down
    for (let i = 0; i < 100; i++) deep = ld(7, deep);
    try { reg.decode('t.T', deep); errs.push('no error'); } catch (e) { errs.push(e.message); }
    try { reg.encode('t.T', { nope: 1 }); errs.push('no error'); } catch (e) { errs.push(e.message); }
    try { reg.encode('t.T', { s: 'x' }); errs.push('no error'); } catch (e) { errs.push(e.message); }
    out.errors = errs;
    return out;
  });

  await page.click('button.topic[data-topic="robot/pose"]');
  await page.waitForSelector(latest);
  // Live off: the page unsubscribes (rates say so, counts stop); on again: it resubscribes.
  await page.uncheck('#live');
  await page.waitForFunction(() => document.querySelector('button.topic[data-topic="robot/pose"] .rate')?.textContent === 'not live');
  const count = () => page.evaluate(() => document.querySelector('#msg-meta .chip')?.textContent);
  await page.click('button.topic[data-topic="robot/pose"]');
  const off1 = await count();
  await page.waitForTimeout(600); // no event marks an absence: the page refreshes every 250 ms
  const off2 = await count();
  await page.check('#live');
  await page.waitForFunction((c) => document.querySelector('#msg-meta .chip')?.textContent !== c, off2);
  results.checks.liveToggle = { off1, off2, on: await count() };

  // A topic whose name and payload are markup: shown as text, never run.
  if (hostile) {
    await page.waitForFunction((name) => [...document.querySelectorAll('button.topic')].some((b) => b.dataset.topic === name), hostile);
    await page.evaluate((name) => [...document.querySelectorAll('button.topic')].find((b) => b.dataset.topic === name).click(), hostile);
    await page.waitForFunction(() => /script/.test(document.querySelector('#messages details[data-role="latest"] .tree')?.textContent || ''));
    results.checks.hostile = await page.evaluate((name) => ({
      xss: window.__xss ?? null,
      elements: document.querySelectorAll('main img, main script, main b, svg.graph img').length,
      shown: [...document.querySelectorAll('.tname .name')].some((e) => e.textContent === name),
      inGraph: [...document.querySelectorAll('svg.graph [data-topic]')].some((e) => e.dataset.topic === name),
    }), hostile);
  }
  await page.click('button.topic[data-topic="robot/pose"]');
  await page.waitForSelector(latest);
  await page.evaluate(() => window.scrollTo(0, 0));
  const desk = path.join(shots, 'web-desktop.png');
  await page.screenshot({ path: desk });
  results.screenshots.push(desk);

  // The phone: one column, no horizontal scroll, tap targets ≥ 40 px.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const pp = await phone.newPage();
  pp.setDefaultTimeout(wait);
  pp.on('pageerror', (e) => results.console.push('phone pageerror: ' + e.message));
  await pp.goto(url, { waitUntil: 'load' });
  await pp.waitForSelector('svg.graph [data-service="math/add"]');
  await pp.waitForSelector('button.topic[data-topic="robot/pose"]');
  await pp.tap('button.topic[data-topic="robot/pose"]');
  await pp.waitForSelector(latest);
  results.checks.phone = await pp.evaluate(() => {
    const d = document.documentElement;
    const small = [...document.querySelectorAll('button, input, textarea, summary, label.toggle')]
      .filter((e) => e.getClientRects().length && !e.closest('.tree'))
      .map((e) => ({ e, r: e.getBoundingClientRect() }))
      .filter(({ e, r }) => (e.tagName === 'INPUT' ? e.closest('label').getBoundingClientRect().height : r.height) < 40)
      .map(({ e, r }) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(r.width)}x${Math.round(r.height)}`);
    return { scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, columns: getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length, small };
  });
  await pp.evaluate(() => window.scrollTo(0, 0));
  const ph = path.join(shots, 'web-phone.png');
  await pp.screenshot({ path: ph });
  results.screenshots.push(ph);

  const p = results.checks.phone;
  const problems = [];
  if (first === second) problems.push('robot/pose did not change');
  const lt = results.checks.liveToggle;
  if (lt.off1 !== lt.off2) problems.push('live off: messages still counted: ' + JSON.stringify(lt));
  const h = results.checks.hostile;
  if (hostile && (h.xss !== null || h.elements !== 0 || !h.shown || !h.inGraph)) problems.push('hostile topic: ' + JSON.stringify(h));
  const pbc = results.checks.protobuf;
  if (pbc.roundTrip !== pbc.want) problems.push('protobuf round trip: ' + pbc.roundTrip);
  if (pbc.zigzag !== '8,5') problems.push('protobuf sint32 -3 written as ' + pbc.zigzag);
  if (pbc.bothWays !== '{"p":[5,6],"u":[1,2]}') problems.push('protobuf packed/unpacked: ' + pbc.bothWays);
  if (pbc.enumUnknown !== '{"e":9}') problems.push('protobuf unknown enum value: ' + pbc.enumUnknown);
  if (pbc.unknown !== '{"[unknown fields]":[{"field":99,"varint":1},{"field":98,"bytes":"0102"}]}') problems.push('protobuf unknown fields: ' + pbc.unknown);
  if (pbc.errors.includes('no error')) problems.push('protobuf bad data accepted: ' + pbc.errors.join('; '));
  if (p.scrollWidth > p.clientWidth) problems.push(`phone: horizontal scroll (${p.scrollWidth} > ${p.clientWidth})`);
  if (p.columns !== 1) problems.push(`phone: ${p.columns} columns`);
  if (p.small.length) problems.push('phone: small tap targets: ' + p.small.join(', '));
  if (results.console.some((m) => m.includes('pageerror'))) problems.push('page errors');
  results.problems = problems;
  failed = problems.length > 0;
} catch (e) {
  results.error = String(e?.stack || e);
  failed = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
process.exit(failed ? 1 : 0);
