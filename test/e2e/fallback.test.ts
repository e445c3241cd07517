/**
 * Browser end-to-end (issue 14): a page whose WebSocket is refused (every upgrade goes to a closed
 * port, as behind a proxy that refuses upgrades) chats over the HTTP fallback with a page on a
 * WebSocket. The gateway is killed (SIGKILL) in the middle and comes back on the same port and
 * data dir: what both typed meanwhile is delivered once, in order, to both; the status bar says
 * which transport each uses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, messageRows, say, signIn, waitConnected, waitForMessage } from './support.js';

let gw: GatewayProcess;
let kit: BrowserKit;

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-fb1', CONFAB_REGION: 'fra' });
  await gw.start();
  kit = await startBrowser();
});

after(async () => {
  await kit?.close();
  await gw?.dispose();
});

/** Every WebSocket this page opens goes to a closed port: the upgrade fails, as behind a proxy that refuses it. */
async function refuseWebSockets(page: Page): Promise<void> {
  // a string, not a function: the test runner's transpiler would add helpers the page does not have
  await page.addInitScript(`{
    const Orig = window.WebSocket;
    const Refused = function (url, protocols) { return new Orig(String(url).replace(/^(wss?:\\/\\/)[^/]+/, '$1127.0.0.1:9'), protocols); };
    Object.assign(Refused, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    window.WebSocket = Refused;
  }`);
}

async function transportOf(page: Page): Promise<string | null> {
  return page.getByTestId('status').getAttribute('data-transport');
}

async function waitPending(page: Page, n: number): Promise<void> {
  await page.waitForFunction((k) => document.querySelectorAll('[data-testid="outbox"] [data-testid="pending"]').length === k, n, { timeout: T.long });
}

test('WebSocket refused: one user on the fallback, one on WebSocket, chat across a kill -9 of the gateway with nothing lost or duplicated', async () => {
  const ws = await kit.newPage();
  const fb = await kit.newPage();
  await refuseWebSockets(fb);
  await signIn(ws, gw.url, 'wendy');
  await signIn(fb, gw.url, 'felix');
  assert.equal(await transportOf(ws), 'websocket');
  assert.equal(await transportOf(fb), 'fallback', 'the refused upgrade moved this page to the HTTP fallback');
  assert.match((await fb.getByTestId('status').textContent()) ?? '', /connected to node node-fb1 in region fra over HTTP fallback/);
  assert.match((await ws.getByTestId('status').textContent()) ?? '', /over WebSocket/);

  await say(ws, 'w1 before');
  await waitForMessage(fb, 'w1 before');
  await say(fb, 'f1 before');
  await waitForMessage(ws, 'f1 before');

  await gw.kill('SIGKILL');
  for (const p of [ws, fb]) await p.waitForFunction(() => document.querySelector('[data-testid="status"]')?.getAttribute('data-state') !== 'connected', undefined, { timeout: T.short });
  await say(fb, 'f2 during');
  await say(ws, 'w2 during');
  await say(fb, 'f3 during');
  await waitPending(fb, 2);
  await waitPending(ws, 1);

  await gw.start();
  for (const p of [ws, fb]) {
    await waitConnected(p, T.long);
    for (const t of ['f2 during', 'w2 during', 'f3 during']) await waitForMessage(p, t, T.long);
    await waitPending(p, 0);
  }
  assert.equal(await transportOf(fb), 'fallback');
  assert.equal(await transportOf(ws), 'websocket');
  // one more each way after the restart
  await say(fb, 'f4 after');
  await say(ws, 'w3 after');
  for (const p of [ws, fb]) for (const t of ['f4 after', 'w3 after']) await waitForMessage(p, t);

  const rowsW = await messageRows(ws);
  const rowsF = await messageRows(fb);
  assert.deepEqual(rowsF, rowsW, 'both pages show the same messages in the same order');
  const texts = rowsW.map(([, t]) => t);
  assert.equal(texts.length, 7, `exactly seven messages, got ${JSON.stringify(texts)}`);
  assert.equal(new Set(texts).size, 7, 'no duplicates');
  assert.ok(texts.indexOf('f2 during') < texts.indexOf('f3 during'), "the fallback user's queued messages keep their order");
  const offsets = rowsW.map(([o]) => o);
  assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!), `offsets increase: ${offsets}`);
  const problems = kit.problems(fb).filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|net::/.test(p));
  assert.deepEqual(problems, [], 'no page errors or CSP violations on the fallback page (the refused upgrades aside)');
  assert.deepEqual(kit.problems(ws).filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|net::|Failed to load resource/.test(p)), []);
});
