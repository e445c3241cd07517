/**
 * Trusting the connection state (issue 12, item 4), in Chromium: a clear banner while offline or
 * reconnecting, with "Retry now"; the composer says messages will wait (and they do); a reload
 * while the server is down still opens the app (the service worker's app shell) and reconnects
 * when the server is back. Screenshots and axe-core at desktop and phone sizes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, recordStates, say, signIn, statesSeen, waitConnected, waitForMessage } from './support.js';
import { DESKTOP, SHOTS, axeLog, shootBoth } from './web-support.js';

let gw: GatewayProcess;
let kit: BrowserKit;
let page: Page;

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-o1', CONFAB_REGION: 'osl', CONFAB_PRESENCE_GRACE_MS: '200' });
  await gw.start();
  kit = await startBrowser();
  page = await kit.newPage();
  await page.setViewportSize(DESKTOP);
});

after(async () => {
  writeFileSync(join(SHOTS, 'axe-offline.json'), JSON.stringify(axeLog, null, 2));
  await kit?.close();
  await gw?.dispose();
});

async function pending(p: Page): Promise<string[]> {
  return p.$$eval('[data-testid="outbox"] [data-testid="pending"]', (els) => els.map((e) => e.textContent ?? ''));
}

test('the service worker is served from / with a JavaScript type and takes control of the page', async () => {
  const res = await fetch(`${gw.url}/sw.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  await signIn(page, gw.url, 'olga');
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: T.short });
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  assert.equal(scope, `${gw.url}/`);
});

test('offline: a banner says so, "Retry now" is offered, the composer says messages wait, and they do', async () => {
  await page.context().setOffline(true);
  await page.getByTestId('banner').filter({ hasText: 'You are offline.' }).waitFor({ timeout: T.short });
  assert.ok(await page.getByTestId('retry-now').isVisible());
  assert.match((await page.getByTestId('composer-hint').textContent()) ?? '', /waits here/);
  assert.equal(await page.getByTestId('message-input').isEnabled(), true, 'writing stays possible');
  await say(page, 'written offline');
  await page.getByTestId('pending').filter({ hasText: 'written offline' }).waitFor({ timeout: T.short });
  const v = await shootBoth(page, 'offline');
  assert.deepEqual(v, [], JSON.stringify(v, null, 2));
  await page.context().setOffline(false);
  await waitConnected(page);
  await waitForMessage(page, 'written offline');
  assert.deepEqual(await pending(page), []);
  await page.getByTestId('banner').waitFor({ state: 'hidden', timeout: T.short });
});

test('server down: the banner counts down to the next try, and "Retry now" tries at once', async () => {
  await recordStates(page);
  await gw.kill('SIGKILL');
  await page.getByTestId('banner').filter({ hasText: 'Reconnecting' }).waitFor({ timeout: T.short });
  // wait for a countdown with at least 2 s left, then retry now: a new attempt starts at once
  await page.waitForFunction(() => /next try in ([2-9]|\d\d) s/.test(document.querySelector('[data-testid="countdown"]')?.textContent ?? ''), undefined, { timeout: T.long });
  const before = (await statesSeen(page)).length;
  await page.getByTestId('retry-now').click();
  await page.waitForFunction((n) => ((window as unknown as { __states: string[] }).__states ?? []).slice(n).includes('connecting'), before, { timeout: 1000 });
  const v = await shootBoth(page, 'reconnecting');
  assert.deepEqual(v, [], JSON.stringify(v, null, 2));
});

test('a reload while the server is down opens the app from the service worker, and it reconnects when the server is back', async () => {
  await say(page, 'written while the server was down');
  await page.getByTestId('pending').filter({ hasText: 'written while the server was down' }).waitFor({ timeout: T.short });
  const res = await page.reload();
  assert.ok(res, 'a response for the reload');
  assert.equal(res.fromServiceWorker(), true, 'the page came from the service worker');
  await page.getByTestId('me').filter({ hasText: 'olga' }).waitFor({ timeout: T.short });
  await page.getByTestId('banner').waitFor({ timeout: T.short });
  assert.deepEqual(await pending(page), ['written while the server was down'], 'the outbox survived the reload');
  await shootBoth(page, 'server-down-reload').then((v) => assert.deepEqual(v, [], JSON.stringify(v, null, 2)));
  await gw.start();
  await waitConnected(page, T.long);
  await waitForMessage(page, 'written while the server was down', T.long);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="pending"]').length === 0, undefined, { timeout: T.short });
  const problems = kit.problems(page).filter((p) => !/sw\.js|ServiceWorker|Failed to fetch|ERR_CONNECTION_REFUSED/i.test(p));
  assert.deepEqual(problems, [], 'no page errors or CSP violations');
});
