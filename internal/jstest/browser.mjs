// browser.mjs drives colugo web's page in headless Chromium:
//   node browser.mjs <page url> <screenshot dir>
// It checks the graph, a JSON topic's updates, a protobuf topic's decoding,
// a service call and the phone layout, prints the results as one JSON
// object on stdout (browser_test.go checks them too) and exits non-zero
// when a check fails. Every wait is bounded.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [url, shots] = process.argv.slice(2);
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
