/**
 * Browser end-to-end: the gateway process crashes (SIGKILL) mid-conversation and comes
 * back on the same port and data dir. What users typed meanwhile waits in the outbox
 * (in localStorage, surviving a reload) and is delivered once, in order, to everyone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, messageRows, recordStates, say, signIn, statesSeen, waitConnected, waitForMessage } from './support.js';

let gw: GatewayProcess;
let kit: BrowserKit;

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-r1', CONFAB_REGION: 'fra' });
  await gw.start();
  kit = await startBrowser();
});

after(async () => {
  await kit?.close();
  await gw?.dispose();
});

async function pendingTexts(page: Page): Promise<string[]> {
  return page.$$eval('[data-testid="outbox"] [data-testid="pending"]', (els) => els.map((e) => e.textContent ?? ''));
}

async function waitState(page: Page, states: string[], timeout = T.short): Promise<void> {
  await page.waitForFunction((s) => s.includes(document.querySelector('[data-testid="status"]')?.getAttribute('data-state') ?? ''), states, { timeout });
}

test('server restart mid-conversation: every message shown exactly once, in the same order, after reconnecting', async () => {
  const a = await kit.newPage();
  const b = await kit.newPage();
  await signIn(a, gw.url, 'anna');
  await signIn(b, gw.url, 'ben');
  await say(a, 'a1 before');
  await waitForMessage(b, 'a1 before');
  await say(b, 'b1 before');
  await waitForMessage(a, 'b1 before');
  await recordStates(a);
  await recordStates(b);

  await gw.kill('SIGKILL');
  await waitState(a, ['reconnecting', 'connecting']);
  await waitState(b, ['reconnecting', 'connecting']);
  assert.match((await a.getByTestId('status').textContent()) ?? '', /reconnecting|connecting/);
  assert.equal(await a.getByTestId('send-error').isVisible(), false, 'a restart is not an error');

  await say(a, 'a2 during');
  await say(b, 'b2 during');
  await say(a, 'a3 during');
  await a.waitForFunction(() => document.querySelectorAll('[data-testid="outbox"] [data-testid="pending"]').length === 2, undefined, { timeout: T.short });
  await b.waitForFunction(() => document.querySelectorAll('[data-testid="outbox"] [data-testid="pending"]').length === 1, undefined, { timeout: T.short });
  assert.deepEqual(await pendingTexts(a), ['a2 during', 'a3 during'], 'kept in the outbox, in order');

  await gw.start();
  for (const page of [a, b]) {
    await waitConnected(page, T.long);
    for (const t of ['a2 during', 'a3 during', 'b2 during']) await waitForMessage(page, t, T.long);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="outbox"] [data-testid="pending"]').length === 0, undefined, { timeout: T.short });
  }
  const rowsA = await messageRows(a);
  const rowsB = await messageRows(b);
  assert.deepEqual(rowsA, rowsB, 'both pages show the same messages in the same order');
  const texts = rowsA.map(([, t]) => t);
  assert.equal(texts.length, 5, `exactly five messages, got ${JSON.stringify(texts)}`);
  assert.equal(new Set(texts).size, 5, 'no duplicates');
  assert.deepEqual(texts.slice(0, 2), ['a1 before', 'b1 before']);
  assert.ok(texts.indexOf('a2 during') < texts.indexOf('a3 during'), 'a user\'s queued messages keep their order');
  const offsets = rowsA.map(([o]) => o);
  assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!), `offsets increase: ${offsets}`);
  for (const page of [a, b]) {
    const seen = await statesSeen(page);
    assert.ok(seen.includes('reconnecting'), `status went through reconnecting: ${seen}`);
    assert.equal(seen.at(-1), 'connected');
    assert.ok(!seen.includes('closed'), `never closed: ${seen}`);
    assert.equal(await page.getByTestId('send-error').isVisible(), false);
  }
  await a.context().close();
  await b.context().close();
});

test('a message typed while the server is down survives a page reload and is delivered once it is back', async () => {
  const c = await kit.newPage();
  const d = await kit.newPage();
  await signIn(c, gw.url, 'cleo');
  await signIn(d, gw.url, 'dan');
  await say(c, 'c1 online');
  await waitForMessage(d, 'c1 online');

  await gw.kill('SIGKILL');
  await waitState(c, ['reconnecting', 'connecting']);
  await say(c, 'c2 typed offline');
  await c.getByTestId('pending').filter({ hasText: 'c2 typed offline' }).waitFor({ timeout: T.short });
  const stored = await c.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith(':outbox')).map((k) => localStorage.getItem(k) ?? '').join(''));
  assert.match(stored, /c2 typed offline/, 'the outbox is in localStorage');

  // The page goes away while the server is down (a reload cannot even fetch the page then);
  // the same browser profile opens it again once the server is back.
  const ctx = c.context();
  await c.close();
  await gw.start();
  const c2 = await ctx.newPage();
  await c2.goto(gw.url);
  await waitConnected(c2, T.long);
  await waitForMessage(c2, 'c2 typed offline', T.long);
  await waitForMessage(d, 'c2 typed offline', T.long);
  await c2.waitForFunction(() => document.querySelectorAll('[data-testid="outbox"] [data-testid="pending"]').length === 0, undefined, { timeout: T.short });
  assert.equal(await c2.getByTestId('me').textContent(), 'cleo', 'same handle after the reload');
  for (const page of [c2, d]) {
    const texts = (await messageRows(page)).map(([, t]) => t);
    assert.equal(texts.filter((t) => t === 'c2 typed offline').length, 1, `delivered exactly once: ${JSON.stringify(texts)}`);
    assert.equal(texts.filter((t) => t === 'c1 online').length, 1);
    assert.ok(texts.indexOf('c1 online') < texts.indexOf('c2 typed offline'));
  }
  const stillStored = await c2.evaluate(() => Object.keys(localStorage).filter((k) => k.endsWith(':outbox')).length);
  assert.equal(stillStored, 0, 'the acknowledged message left localStorage');
  await ctx.close();
  await d.context().close();
});

test('a reload while connected keeps the handle and the conversation, and resumes without duplicates', async () => {
  const e = await kit.newPage();
  const f = await kit.newPage();
  await signIn(e, gw.url, 'edna');
  await signIn(f, gw.url, 'fred');
  await say(e, 'e1 before reload');
  await waitForMessage(f, 'e1 before reload');
  await e.reload();
  await waitConnected(e);
  await waitForMessage(e, 'e1 before reload');
  assert.equal(await e.getByTestId('me').textContent(), 'edna');
  await say(f, 'f1 after reload');
  await waitForMessage(e, 'f1 after reload');
  const texts = (await messageRows(e)).map(([, t]) => t);
  assert.equal(texts.filter((t) => t === 'e1 before reload').length, 1, `no duplicate after reload: ${JSON.stringify(texts)}`);
  await e.context().close();
  await f.context().close();
});
