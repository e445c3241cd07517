/**
 * The README's walkthrough and what tells a user where something happens (issue 12, items 2, 4
 * and 5), in Chromium: two windows of one browser are two users (per-tab identity); unread and
 * mention counts per room and in the title; the directory of rooms in use; alerts with a live
 * age, dismissable, replayed ones marked "missed", sent only after a confirmation. Screenshots
 * and axe-core at desktop and phone sizes (test-output/web/).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, say, waitConnected, waitForMessage } from './support.js';
import { DESKTOP, SHOTS, axeLog, shootBoth } from './web-support.js';

let gw: GatewayProcess;
let kit: BrowserKit;
let ctx: BrowserContext;
let w1: Page;
let w2: Page;

before(async () => {
  // alerts are rate-limited per user (6 a minute by default): this test sends seven in a row
  gw = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-n1', CONFAB_REGION: 'lis', CONFAB_PRESENCE_GRACE_MS: '200', CONFAB_ALERT_RATE_PER_MIN: '600' });
  await gw.start();
  kit = await startBrowser();
  ctx = await kit.browser.newContext({ viewport: DESKTOP });
});

after(async () => {
  writeFileSync(join(SHOTS, 'axe-notify.json'), JSON.stringify(axeLog, null, 2));
  await ctx?.close();
  await kit?.close();
  await gw?.dispose();
});

async function signInHere(page: Page, handle: string): Promise<void> {
  await page.bringToFront();
  await page.getByTestId('handle-input').waitFor({ timeout: T.short });
  await page.getByTestId('handle-input').fill(handle);
  await page.getByTestId('handle-submit').click();
  await waitConnected(page);
  await page.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
}

async function sendAlert(page: Page, text: string): Promise<void> {
  await page.bringToFront(); // pages of one context are tabs of one window: the one in front is not throttled
  await page.getByTestId('alert-input').fill(text);
  await page.getByTestId('alert-send').click();
  await page.getByTestId('alert-confirm').click();
}

test("README walkthrough: two windows of one browser, a handle in each, and chat", async () => {
  w1 = await ctx.newPage();
  await w1.goto(gw.url);
  await signInHere(w1, 'ann');
  w2 = await ctx.newPage();
  await w2.goto(gw.url);
  // the second window is not signed in as the first: it asks for a handle
  await w2.getByTestId('handle-input').waitFor({ timeout: T.short });
  assert.equal(await w2.getByTestId('chat').isVisible(), false);
  await signInHere(w2, 'ben');
  await w1.bringToFront();
  await say(w1, 'hi ben');
  await waitForMessage(w2, 'hi ben');
  await w2.bringToFront();
  await say(w2, 'hi ann');
  await waitForMessage(w1, 'hi ann');
  assert.equal(await w1.getByTestId('me').textContent(), 'ann');
  assert.equal(await w2.getByTestId('me').textContent(), 'ben');
  await w1.getByTestId('member').filter({ hasText: 'ben' }).waitFor({ timeout: T.short });

  // a reload keeps each window's user
  await w2.reload();
  await waitConnected(w2);
  assert.equal(await w2.getByTestId('me').textContent(), 'ben');
  await waitForMessage(w2, 'hi ann');

  // a window closed and opened again signs the user back in (the session no open tab holds)
  await w2.close();
  w2 = await ctx.newPage();
  await w2.goto(gw.url);
  await waitConnected(w2);
  assert.equal(await w2.getByTestId('me').textContent(), 'ben', 'the closed window’s user comes back');
  await waitForMessage(w2, 'hi ann');
  assert.equal(await w1.getByTestId('me').textContent(), 'ann');
});

test('unread and mention counts per room, in the title, and the mention highlighted', async () => {
  await w1.bringToFront();
  await w1.getByTestId('join-input').fill('side');
  await w1.getByTestId('join-submit').click();
  await w1.getByTestId('room-title').filter({ hasText: 'side' }).waitFor({ timeout: T.short });
  await w2.bringToFront();
  await say(w2, 'anyone there?');
  await say(w2, 'hey @ann, look at this');
  await say(w2, 'third one');
  const lobby = w1.locator('[data-testid="room-item"][data-room="lobby"]');
  await w1.locator('[data-testid="room-item"][data-room="lobby"][data-unread="3"][data-mentions="1"]').waitFor({ timeout: T.short });
  assert.equal(await lobby.getByTestId('room-unread').textContent(), '3 unread');
  await w1.waitForFunction(() => document.title.startsWith('(3 · @1)'), undefined, { timeout: T.short });
  await shootBoth(w1, 'unread').then((v) => assert.deepEqual(v, [], JSON.stringify(v, null, 2)));
  await lobby.locator('button').click();
  await w1.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
  const mention = w1.locator('[data-testid="message"].mention').filter({ hasText: 'look at this' });
  await mention.waitFor({ timeout: T.short });
  assert.equal(await mention.getByTestId('message-text').textContent(), 'hey @ann, look at this');
  assert.equal(await w1.locator('[data-testid="message"].first-unread [data-testid="message-text"]').textContent(), 'anyone there?');
  await w1.waitForFunction(() => !document.title.startsWith('('), undefined, { timeout: T.short });
  assert.equal(await lobby.getAttribute('data-unread'), '0');
});

test('the directory lists rooms in use that this user has not joined, with member counts, and joins them', async () => {
  // ann is in "side"; ben (a fresh page load asks the server) sees it with one member
  await w2.bringToFront();
  await w2.reload();
  await waitConnected(w2);
  const side = w2.locator('[data-testid="directory-item"][data-room="side"]');
  await side.waitFor({ timeout: T.short });
  assert.equal(await side.getAttribute('data-members'), '1');
  assert.match((await side.textContent()) ?? '', /1 online/);
  await side.locator('button').click();
  await w2.getByTestId('room-title').filter({ hasText: 'side' }).waitFor({ timeout: T.short });
  await w2.locator('[data-testid="room-item"][data-room="side"]').waitFor({ timeout: T.short });
  await w2.locator('[data-testid="directory-item"][data-room="side"]').waitFor({ state: 'detached', timeout: T.short });
});

test('alerts: confirmed before sending, live age, dismissable, at most two shown at once', async () => {
  await w1.bringToFront();
  await w1.getByTestId('alert-input').fill('not this one');
  await w1.getByTestId('alert-send').click();
  await w1.getByTestId('alert-confirm-box').waitFor({ timeout: T.short });
  assert.match((await w1.getByTestId('alert-confirm-text').textContent()) ?? '', /to everyone/);
  await w1.getByTestId('alert-cancel').click();
  await w1.getByTestId('alert-confirm-box').waitFor({ state: 'hidden', timeout: T.short });
  assert.equal(await w1.getByTestId('alert-input').inputValue(), 'not this one', 'cancel keeps the text');

  await sendAlert(w1, 'fire drill at noon');
  const a = w2.getByTestId('alert').filter({ hasText: 'fire drill at noon' });
  await a.waitFor({ timeout: T.short });
  assert.equal(await a.getAttribute('data-missed'), 'false', 'a live alert is not "missed"');
  const age1 = (await a.getByTestId('alert-meta').textContent()) ?? '';
  await w2.waitForFunction((t) => [...document.querySelectorAll('[data-testid="alert-meta"]')].some((e) => e.textContent !== t && /sent \d+ (ms|s) ago/.test(e.textContent ?? '')), age1, { timeout: T.short });
  assert.equal(await w2.getByTestId('alert').filter({ hasText: 'not this one' }).count(), 0, 'the cancelled alert was never sent');

  for (let i = 1; i <= 5; i++) await sendAlert(w1, `alert number ${i}`);
  await w2.getByTestId('alert').filter({ hasText: 'alert number 5' }).waitFor({ timeout: T.short });
  assert.equal(await w2.getByTestId('alert').count(), 2, 'two shown, the rest one click away');
  assert.match((await w2.getByTestId('alerts-more').textContent()) ?? '', /Show 4 more/);
  const v = await shootBoth(w2, 'alerts');
  assert.deepEqual(v, [], JSON.stringify(v, null, 2));
  const roomBox = (await w2.getByTestId('messages').boundingBox())!;
  assert.ok(roomBox.height > 300, `alerts leave the room its space: ${roomBox.height}px`);

  await w2.bringToFront();
  await w2.getByTestId('alert').filter({ hasText: 'alert number 5' }).getByTestId('alert-dismiss').click();
  await w2.getByTestId('alert').filter({ hasText: 'alert number 5' }).waitFor({ state: 'detached', timeout: T.short });
  await w2.getByTestId('alert').filter({ hasText: 'alert number 4' }).waitFor({ timeout: T.short });
  await w2.reload();
  await waitConnected(w2);
  await w2.getByTestId('alert').filter({ hasText: 'alert number 4' }).waitFor({ timeout: T.short });
  assert.equal(await w2.getByTestId('alert').filter({ hasText: 'alert number 5' }).count(), 0, 'a dismissed alert stays dismissed');
  await w2.getByTestId('alerts-dismiss-all').click();
  await w2.getByTestId('alerts-box').waitFor({ state: 'hidden', timeout: T.short });
});

test('alerts sent before a user signed in are marked missed, not new', async () => {
  const late = await kit.newPage();
  await late.setViewportSize(DESKTOP);
  await late.goto(gw.url);
  await signInHere(late, 'cat');
  const a = late.getByTestId('alert').first();
  await a.waitFor({ timeout: T.short });
  assert.equal(await a.getAttribute('data-missed'), 'true');
  assert.equal(await a.getByTestId('alert-missed').textContent(), 'missed');
  assert.equal(await late.locator('[data-testid="alert"][data-missed="false"]').count(), 0);
  await sendAlert(w1, 'live for cat');
  const live = late.getByTestId('alert').filter({ hasText: 'live for cat' });
  await live.waitFor({ timeout: T.short });
  assert.equal(await live.getAttribute('data-missed'), 'false');
  assert.deepEqual(kit.problems(late), []);
  await late.context().close();
});

test('a user the server does not allow to alert sees no alert form', async () => {
  const strict = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-n2', CONFAB_REGION: 'lis', CONFAB_ANON_ALERTS: '0' });
  await strict.start();
  try {
    const p = await kit.newPage();
    await p.setViewportSize(DESKTOP);
    await p.goto(strict.url);
    await signInHere(p, 'dora');
    await p.getByTestId('alert-section').waitFor({ state: 'hidden', timeout: T.short });
    await p.getByTestId('room-list').waitFor({ timeout: T.short });
    assert.equal(await p.getByTestId('alert-send').isVisible(), false);
    await p.context().close();
  } finally {
    await strict.dispose();
  }
});
