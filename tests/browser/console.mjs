// End-to-end check of the browser console (/console) in headless Chromium.
//
//   BASE_URL=http://127.0.0.1:8080 TOKEN=<jwt, every scope> [ARTIFACTS=dir] \
//   [FROM_NUMBER=+14155550100] [TO_NUMBER=+442071838750] [AGENT_ID=<uuid>] \
//   [CHROMIUM=/usr/bin/chromium] node tests/browser/console.mjs
//
// The tenant must hold at least one outbound-enabled number (FROM_NUMBER, or
// else the first one listed) on a provider, and the built-in Call Processor
// simulator must complete calls. Step 3 sets concurrent_max to 0; the script
// puts the previous value back at the end, pass or fail.
//
// Prints one line per step; exits 1 with the reason on the first failure,
// including any browser console error or uncaught page error.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v == null || v === '') fail(`environment variable ${name} is required`);
  return v;
};
function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

const BASE_URL = env('BASE_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const ARTIFACTS = env('ARTIFACTS', join(tmpdir(), `switchboard-console-${Date.now()}`));
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const TO_NUMBER = env('TO_NUMBER', '+442071838750');
const END = ['completed', 'busy', 'no_answer', 'failed', 'canceled'];

// ---------------------------------------------------------------- API from Node

async function call(method, path, { body, headers = {} } = {}) {
  const res = await fetch(`${BASE_URL}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

async function originate(from, agentId) {
  const body = { from_number: from, to_number: TO_NUMBER, ...(agentId ? { agent_id: agentId } : {}) };
  return call('POST', '/calls/originate', { body, headers: { 'Idempotency-Key': randomUUID() } });
}

/** FROM_NUMBER, or the tenant's first outbound number; and the agent to send. */
async function caller() {
  const r = await call('GET', '/telephony/numbers?limit=500');
  if (r.status !== 200) throw new Error(`GET /telephony/numbers answered ${r.status}: ${r.text}`);
  const numbers = r.json.items.filter((n) => n.outbound_enabled);
  const n = process.env.FROM_NUMBER
    ? numbers.find((x) => x.e164 === process.env.FROM_NUMBER)
    : numbers[0];
  if (!n) throw new Error(`the tenant has no outbound number ${process.env.FROM_NUMBER ?? ''}: create a provider and a number first`);
  // A pinned number takes no agent_id (another one would be a 409).
  const agent = n.agent_id ? process.env.AGENT_ID ?? null : process.env.AGENT_ID ?? randomUUID();
  return { from: n.e164, agent };
}

// ---------------------------------------------------------------- browser

const problems = []; // console errors and page errors, as they come
// 401s the bad-token page is expected to log as "Failed to load resource".
const expected401 = new WeakSet();

function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expected401.has(page) && /status of 401/.test(m.text())) return;
    const at = m.location()?.url ? ` (${m.location().url}:${m.location().lineNumber})` : '';
    problems.push(`[${label}] console error: ${m.text()}${at}`);
  });
  page.on('pageerror', (e) => problems.push(`[${label}] uncaught error: ${e.message}`));
  page.on('crash', () => problems.push(`[${label}] page crashed`));
}

function checkBrowser() {
  if (problems.length) throw new Error(`browser reported errors:\n  ${problems.join('\n  ')}`);
}

let n = 0;
let running = null; // "N - name" of the step under way
let current = null; // the page to screenshot on failure
async function step(name, fn) {
  n += 1;
  running = `${n} - ${name}`;
  const t0 = Date.now();
  const detail = await fn();
  checkBrowser();
  console.log(`ok ${n} - ${name}${detail ? `: ${detail}` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

const shot = (page, file) => page.screenshot({ path: join(ARTIFACTS, file), fullPage: true });

async function main() {
  await mkdir(ARTIFACTS, { recursive: true });
  const profile = await mkdtemp(join(tmpdir(), 'switchboard-chromium-'));
  let context;
  let restore = null;
  try {
    // launchPersistentContext: Playwright refuses --user-data-dir in args.
    // headless: true adds --headless itself.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
    });
    context.setDefaultTimeout(15_000);
    const page = context.pages()[0] ?? (await context.newPage());
    current = page;
    watch(page, 'console');

    await step('console loads with the token from the fragment', async () => {
      const res = await page.goto(`${BASE_URL}/console#token=${encodeURIComponent(TOKEN)}`);
      if (!res || res.status() !== 200) throw new Error(`GET /console answered ${res?.status()}`);
      if (!res.headers()['content-security-policy']) throw new Error('GET /console has no Content-Security-Policy');
      // Loaded, or refused (then fail at once with the page's message).
      const panels = ['providers', 'numbers', 'caps'];
      await page.waitForFunction((ids) => document.querySelector('#token-error[data-kind="error"]:not([hidden])')
        || ids.every((id) => document.getElementById(id).dataset.state === 'loaded'), panels).catch(() => {});
      for (const id of panels) {
        if (await page.locator(`#${id}[data-state="loaded"]`).count()) continue;
        const msg = await page.locator(`#${id}-error, #token-error`).allTextContents();
        throw new Error(`panel #${id} did not load: ${msg.filter(Boolean).join(' | ') || 'no message'}`);
      }
      await page.waitForSelector('#feed-status[data-state="live"]');
      if ((await page.evaluate(() => location.href)).includes('token')) throw new Error('the token is still in the address bar');
      const counts = await page.evaluate(() => [
        document.querySelectorAll('#providers tr[data-provider-id]').length,
        document.querySelectorAll('#numbers tr[data-number-id]').length,
        document.querySelectorAll('#caps .gauge[data-dimension][data-limit]').length,
      ]);
      if (counts[2] !== 4) throw new Error(`expected 4 cap gauges, found ${counts[2]}`);
      await shot(page, 'loaded.png');
      return `${counts[0]} provider(s), ${counts[1]} number(s), 4 gauges, feed live`;
    });

    let from;
    let agent;
    await step('an originated call shows up live and ends', async () => {
      ({ from, agent } = await caller());
      const r = await originate(from, agent);
      if (r.status !== 200 && r.status !== 202) throw new Error(`originate answered ${r.status}: ${r.text}`);
      const id = r.json.call_id;
      const row = `#calls tr[data-call-id="${id}"]`;
      await page.waitForSelector(row, { timeout: 10_000 });
      await page.waitForFunction(([sel, end]) => end.includes(document.querySelector(sel)?.dataset.status),
        [row, END], { timeout: 30_000 }).catch(async () => {
        const s = await page.locator(row).getAttribute('data-status');
        throw new Error(`call ${id} did not end within 30 s (status ${s})`);
      });
      const steps = await page.locator(`${row} .timeline li`).evaluateAll((lis) => lis.map((li) => li.dataset.type));
      for (const t of ['OriginateRequested', 'OriginateDispatched', 'CallEnded']) {
        if (!steps.includes(t)) throw new Error(`call ${id}'s timeline lacks ${t}: ${steps.join(', ')}`);
      }
      await shot(page, 'call.png');
      return `call ${id} ${await page.locator(row).getAttribute('data-status')}, timeline ${steps.join(' › ')}`;
    });

    await step('the concurrent kill switch blocks new calls', async () => {
      const before = await call('GET', '/call-limits');
      if (before.status !== 200) throw new Error(`GET /call-limits answered ${before.status}: ${before.text}`);
      if (before.json.concurrent_max === 0) throw new Error('concurrent_max is already 0');
      restore = before.json.concurrent_max;
      const gauge = '#caps .gauge[data-dimension="concurrent"]';
      await page.click('[data-kill="concurrent_max"]');
      await page.waitForSelector('#confirm-dialog[open]');
      await page.click('#confirm-ok');
      await page.waitForSelector(`${gauge}[data-limit="0"]`, { timeout: 10_000 }).catch(async () => {
        const msg = await page.locator('#caps-error').textContent();
        throw new Error(`the concurrent gauge did not show limit 0: ${msg || 'no message'}`);
      });
      await page.waitForSelector('#caps-audit tr', { state: 'attached' });
      const r = await originate(from, agent);
      if (r.status !== 429) throw new Error(`originate with concurrent_max 0 answered ${r.status}, not 429: ${r.text}`);
      if (r.json?.dimension !== 'concurrent') throw new Error(`429 names dimension ${r.json?.dimension}, not concurrent`);
      await page.waitForSelector(`#calls tr[data-call-id="${r.json.call_id}"][data-status="rejected"]`, { timeout: 10_000 });
      await page.waitForFunction(() => /concurrent_max (\d+ → |= )0\b/.test(document.querySelector('#caps-audit')?.textContent ?? ''),
        null, { timeout: 20_000 }).catch(() => { throw new Error('the caps audit trail does not show concurrent_max → 0'); });
      await shot(page, 'killed.png');
      return `limit 0 shown, originate 429 (${r.json.detail ?? r.json.title}), rejected call listed`;
    });

    await step('a bad token gets a clear message', async () => {
      const bad = await context.newPage();
      current = bad;
      expected401.add(bad);
      watch(bad, 'bad-token');
      await bad.goto(`${BASE_URL}/console#token=not-a-token`);
      const banner = bad.locator('#token-error');
      await banner.waitFor({ state: 'visible' });
      const text = (await banner.textContent()).trim();
      if (!/refused/i.test(text)) throw new Error(`unexpected message: ${text}`);
      if ((await bad.evaluate(() => location.href)).includes('token=')) throw new Error('the token is still in the address bar');
      await shot(bad, 'bad-token.png');
      await bad.close();
      current = page;
      return JSON.stringify(text);
    });
  } catch (e) {
    if (current && !current.isClosed()) await shot(current, 'failure.png').catch(() => {});
    console.error(`FAIL ${running ?? 'before the first step'}: ${e.message.replace(/\x1b\[[0-9;]*m/g, '')}`);
    if (problems.length && !e.message.includes('browser reported')) console.error(`  browser errors:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } finally {
    if (restore != null) {
      const now = await call('GET', '/call-limits');
      const r = await call('PATCH', '/call-limits', { body: { concurrent_max: restore }, headers: { 'If-Match': now.headers.get('etag') ?? '*' } });
      if (r.status !== 200) {
        console.error(`FAIL: could not restore concurrent_max to ${restore}: ${r.status} ${r.text}`);
        process.exitCode = 1;
      }
    }
    await context?.close().catch(() => {});
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
  if (!process.exitCode) console.log(`all ${n} steps passed; screenshots in ${ARTIFACTS}`);
}

await main();
