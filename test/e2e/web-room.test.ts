/**
 * The web client in a busy room (issue 12, items 1, 3 and 7), in Chromium at 1280×800 and
 * 390×844: the message list is the only scroller, opens at the newest message, keeps its place
 * while the reader reads older messages and new ones arrive, shows a "new messages" marker and
 * loads older history on scroll; the composer writes like any chat's; axe-core finds no serious
 * or critical violation in the sign-in, busy-room and phone states. Screenshots: test-output/web/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, say, signIn, waitForMessage } from './support.js';
import { DESKTOP, PHONE, SHOTS, axeLog, seed, seriousViolations, shootBoth } from './web-support.js';

const API_KEY = 'web-room-api-key-0123456789';
const BUSY = 'busy';
const SEEDED = 400;
let gw: GatewayProcess;
let kit: BrowserKit;
let page: Page;

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-w1', CONFAB_REGION: 'ams', CONFAB_API_KEY: API_KEY, CONFAB_PRESENCE_GRACE_MS: '200', CONFAB_RECENT_ON_JOIN: '250', CONFAB_REPLAY_MAX: '40' });
  await gw.start();
  kit = await startBrowser();
  page = await kit.newPage();
  await page.setViewportSize(DESKTOP);
  await seed(gw.url, API_KEY, BUSY, SEEDED, (i) => (i % 25 === 3 ? `busy ${i}\nsecond line of ${i}` : `busy ${i}`), (i) => `user${Math.floor(i / 3) % 5}`);
});

after(async () => {
  writeFileSync(join(SHOTS, 'axe-room.json'), JSON.stringify(axeLog, null, 2));
  await kit?.close();
  await gw?.dispose();
});

/** Where the list is: scrollTop, the space below the view, and the first and last rendered offsets. */
async function listState(p: Page): Promise<{ top: number; below: number; first: number; last: number; count: number; docScroll: number }> {
  return p.evaluate(() => {
    const l = document.querySelector<HTMLElement>('[data-testid="messages"]')!;
    const rows = [...l.querySelectorAll<HTMLElement>('[data-testid="message"]')].map((e) => Number(e.dataset.offset));
    return {
      top: l.scrollTop,
      below: l.scrollHeight - l.scrollTop - l.clientHeight,
      first: rows[0] ?? -1,
      last: rows.at(-1) ?? -1,
      count: rows.length,
      docScroll: document.scrollingElement!.scrollHeight - innerHeight,
    };
  });
}

/** The drawer finished sliding in (its transform is none). */
async function drawerOpen(p: Page, testId: string): Promise<void> {
  await p.waitForFunction((id) => getComputedStyle(document.querySelector(`[data-testid="${id}"]`)!).transform === 'none', testId, { timeout: T.short });
}

async function inViewport(p: Page, testId: string): Promise<boolean> {
  const box = await p.getByTestId(testId).boundingBox();
  const vp = p.viewportSize()!;
  return !!box && box.y >= 0 && box.y + box.height <= vp.height + 0.5 && box.x >= 0 && box.x + box.width <= vp.width + 0.5;
}

test('sign-in: no serious or critical axe violations, desktop and phone', async () => {
  await page.goto(gw.url);
  await page.getByTestId('handle-input').waitFor({ timeout: T.short });
  const v = await shootBoth(page, 'signin');
  assert.deepEqual(v, [], JSON.stringify(v, null, 2));
});

test('busy room: the list is the only scroller, opens at the newest message, composer/status/rooms stay in place', async () => {
  await signIn(page, gw.url, 'reader');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'message-input', 'focus on the composer after sign-in');
  await page.getByTestId('join-input').fill(BUSY);
  await page.getByTestId('join-submit').click();
  await waitForMessage(page, `busy ${SEEDED - 1}`);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'message-input', 'focus on the composer after a room switch');
  await page.waitForFunction(() => {
    const l = document.querySelector<HTMLElement>('[data-testid="messages"]')!;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 2;
  }, undefined, { timeout: T.short });
  const s = await listState(page);
  assert.equal(s.docScroll, 0, 'the page itself does not scroll');
  assert.equal(s.last, SEEDED, `the newest message is last: ${JSON.stringify(s)}`);
  assert.ok(s.count <= 300, `the DOM holds a window, not the room: ${s.count}`);
  for (const id of ['composer', 'status', 'room-list', 'room-title']) assert.ok(await inViewport(page, id), `${id} is on screen`);
  // grouped messages, date separator, <time> with the full date on hover
  assert.ok((await page.locator('[data-testid="message"].cont').count()) > 0, 'consecutive messages of one sender are grouped');
  const time = page.locator('[data-testid="message"] time').first();
  assert.match((await time.getAttribute('datetime')) ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.ok(((await time.getAttribute('title')) ?? '').length > 10, 'full timestamp on hover');
  assert.ok((await page.locator('[data-testid="message"]:not(.cont) time').count()) > 0);
  const v = await shootBoth(page, 'busy-room');
  assert.deepEqual(v, [], JSON.stringify(v, null, 2));
});

test('reading older messages keeps the position while new ones arrive, with a "new messages" button', async () => {
  // scroll to the top once: more of what the page holds is added above, and the place is kept
  const before = await listState(page);
  await page.getByTestId('messages').evaluate((l) => (l.scrollTop = 0));
  await page.waitForFunction((f) => Number(document.querySelector('[data-testid="message"]')?.getAttribute('data-offset')) < f, before.first, { timeout: T.short });
  const s = await listState(page);
  assert.ok(s.top > 0, `the view did not jump to the new top: ${JSON.stringify(s)}`);
  await page.getByTestId('messages').evaluate((l) => (l.scrollTop = 600));
  const anchor = page.locator('[data-testid="message"]').nth(20);
  const key = await anchor.getAttribute('data-offset');
  const y0 = (await anchor.boundingBox())!.y;
  await seed(gw.url, API_KEY, BUSY, 5, (i) => `while reading ${i}`);
  await page.getByTestId('jump').filter({ hasText: /5 new messages/ }).waitFor({ timeout: T.short });
  const same = page.locator(`[data-testid="message"][data-offset="${key}"]`);
  assert.ok(Math.abs((await same.boundingBox())!.y - y0) < 2, 'what the reader looks at did not move');
  await page.getByTestId('jump').click();
  await page.waitForFunction(() => {
    const l = document.querySelector<HTMLElement>('[data-testid="messages"]')!;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 2;
  }, undefined, { timeout: T.short });
  assert.equal((await listState(page)).last, SEEDED + 5);
  assert.equal(await page.getByTestId('jump').isVisible(), false);
});

test('older history is paged in from the server at the top, down to the first message', async () => {
  // 250 were replayed on join: the rest comes from the server's history as the reader scrolls up
  await page.waitForFunction(
    () => {
      const l = document.querySelector<HTMLElement>('[data-testid="messages"]')!;
      l.scrollTop = 0;
      return document.querySelector('[data-testid="history-start"]') !== null;
    },
    undefined,
    { timeout: T.long, polling: 100 },
  );
  const s = await listState(page);
  assert.equal(s.first, 1, `the first message of the room is shown: ${JSON.stringify(s)}`);
  const offsets = await page.$$eval('[data-testid="message"]', (els) => els.map((e) => Number(e.getAttribute('data-offset'))));
  assert.ok(offsets.every((o, i) => i === 0 || o === offsets[i - 1]! + 1), 'no hole and no duplicate in what is shown');
});

test('unread marker: messages that arrive in another room are marked "New messages" when it is opened', async () => {
  await page.locator('[data-testid="room-item"][data-room="lobby"] button').click();
  await page.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
  await seed(gw.url, API_KEY, BUSY, 3, (i) => `unread ${i}`);
  await page.locator('[data-testid="room-item"][data-room="busy"][data-unread="3"]').waitFor({ timeout: T.short });
  await page.locator('[data-testid="room-item"][data-room="busy"] button').click();
  const marker = page.locator('[data-testid="message"].first-unread');
  await marker.waitFor({ timeout: T.short });
  assert.equal(await marker.getByTestId('message-text').textContent(), 'unread 0');
  assert.equal(await page.getByTestId('new-marker').count(), 1);
  assert.equal(await page.locator('[data-testid="room-item"][data-room="busy"]').getAttribute('data-unread'), '0');
});

test('after a capped resume, the skipped messages are marked and paged in from the history in place', async () => {
  const lastBefore = (await listState(page)).last;
  await page.context().setOffline(true);
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.getAttribute('data-state') === 'offline', undefined, { timeout: T.short });
  const offsets = await seed(gw.url, API_KEY, BUSY, 100, (i) => `while away ${i}`);
  await page.context().setOffline(false);
  await waitForMessage(page, 'while away 99');
  const marker = page.getByTestId('missed');
  await marker.waitFor({ timeout: T.short });
  assert.match((await marker.textContent()) ?? '', /60 messages were skipped/);
  await page.waitForFunction(
    () => {
      const b = document.querySelector<HTMLButtonElement>('[data-testid="missed"] button');
      b?.click();
      return b === null;
    },
    undefined,
    { timeout: T.long, polling: 200 },
  );
  const shown = await page.$$eval('[data-testid="message"]', (els) => els.map((e) => Number(e.getAttribute('data-offset'))));
  const want = [lastBefore, ...offsets];
  const from = shown.indexOf(lastBefore);
  assert.ok(from >= 0, 'the last message seen before is still shown');
  assert.deepEqual(shown.slice(from, from + want.length), want, 'every skipped message in place, once, in order');
});

test('composer: Enter sends, Shift+Enter adds a line, links are safe, refused text is kept with a counter', async () => {
  const input = page.getByTestId('message-input');
  await input.click();
  await page.keyboard.type('first line');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('see https://example.org/a?b=1.');
  assert.equal(await page.locator('[data-testid="message"] [data-testid="message-text"]', { hasText: 'first line' }).count(), 0, 'Shift+Enter did not send');
  await page.keyboard.press('Enter');
  const text = 'first line\nsee https://example.org/a?b=1.';
  await waitForMessage(page, text);
  assert.equal(await input.inputValue(), '');
  const link = page.locator('[data-testid="message-text"] a', { hasText: 'https://example.org/a?b=1' }).last();
  assert.equal(await link.getAttribute('href'), 'https://example.org/a?b=1');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.getAttribute('target'), '_blank');
  await say(page, 'javascript:alert(1) and <b>bold</b> http://x"onmouseover=alert(1)');
  await waitForMessage(page, 'javascript:alert(1) and <b>bold</b> http://x"onmouseover=alert(1)');
  assert.equal(await page.locator('[data-testid="message-text"] b').count(), 0, 'no HTML');
  const hrefs = await page.$$eval('[data-testid="message-text"] a', (as) => as.map((a) => a.getAttribute('href') ?? ''));
  assert.ok(hrefs.every((h) => /^https?:\/\//.test(h)), `only http(s) links: ${hrefs}`);
  assert.ok(hrefs.every((h) => !h.includes('"')), 'a quote ends a link');

  const long = 'x'.repeat(2100);
  await input.fill(long);
  await page.getByTestId('counter').filter({ hasText: '2100 / 2000' }).waitFor({ timeout: T.short });
  assert.match((await page.getByTestId('counter').getAttribute('class')) ?? '', /over/);
  await input.press('Enter');
  await page.getByTestId('send-error').filter({ hasText: /at most 2000/ }).waitFor({ timeout: T.short });
  assert.equal(await input.inputValue(), long, 'the refused text is kept');
  await input.fill('');
  await page.getByTestId('counter').waitFor({ state: 'hidden', timeout: T.short });
  const v = await shootBoth(page, 'composer');
  assert.deepEqual(v, [], JSON.stringify(v, null, 2));
});

test('phone: one column without sideways scrolling; rooms and members are drawers', async () => {
  await page.setViewportSize(PHONE);
  const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, vw: innerWidth }));
  assert.ok(widths.doc <= widths.vw, `no horizontal overflow: ${JSON.stringify(widths)}`);
  for (const id of ['composer', 'leave-room', 'status', 'rooms-toggle', 'members-toggle']) assert.ok(await inViewport(page, id), `${id} fits the phone screen`);
  await page.getByTestId('sidebar').waitFor({ state: 'hidden', timeout: T.short }); // the room list is a closed drawer
  const statusBox = (await page.getByTestId('status').boundingBox())!;
  assert.ok(statusBox.height < 30, `the status is one line: ${statusBox.height}px`);

  await page.getByTestId('rooms-toggle').click();
  await page.getByTestId('sidebar').waitFor({ state: 'visible', timeout: T.short });
  assert.equal(await page.getByTestId('rooms-toggle').getAttribute('aria-expanded'), 'true');
  await drawerOpen(page, 'sidebar');
  await page.screenshot({ path: join(SHOTS, 'rooms-drawer-phone.png') });
  assert.deepEqual(await seriousViolations(page), []);
  await page.locator('[data-testid="room-item"][data-room="lobby"] button').click();
  await page.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
  await page.getByTestId('sidebar').waitFor({ state: 'hidden', timeout: T.short });
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'message-input');

  await page.getByTestId('members-toggle').click();
  await page.getByTestId('members-pane').waitFor({ state: 'visible', timeout: T.short });
  await drawerOpen(page, 'members-pane');
  await page.screenshot({ path: join(SHOTS, 'members-drawer-phone.png') });
  assert.deepEqual(await seriousViolations(page), []);
  await page.keyboard.press('Escape');
  await page.getByTestId('members-pane').waitFor({ state: 'hidden', timeout: T.short });
  await page.setViewportSize(DESKTOP);
  assert.deepEqual(kit.problems(page), [], 'no page errors or CSP violations');
});
