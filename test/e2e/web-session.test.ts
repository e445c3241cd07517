/**
 * Browser end-to-end, identity (issue 10): the real web client renews its session silently across
 * token expiries (one WebSocket the whole time, messages still flow), a user whose handle — or a
 * look-alike of it — is held by someone else is told so plainly, and signing out revokes the
 * session on the server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, say, signIn, waitConnected, waitForMessage } from './support.js';

const TTL_S = 5;
let gw: GatewayProcess;
let kit: BrowserKit;
let page: Page;

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_SESSION_TTL_S: String(TTL_S) });
  await gw.start();
  kit = await startBrowser();
  page = await kit.newPage();
});

after(async () => {
  await kit?.close();
  await gw?.dispose();
});

/** The session this tab uses, as the web client keeps it (docs/web.md: per-tab identity). */
const saved = (p: Page) =>
  p.evaluate(() => {
    const id = sessionStorage.getItem('confab.tab-user') ?? '';
    const all = JSON.parse(localStorage.getItem('confab.sessions') ?? '{}') as Record<string, { s?: { expiresAt?: number; token?: string } }>;
    return all[id]?.s ?? {};
  });
const savedExpiry = async (p: Page) => (await saved(p)).expiresAt ?? 0;

test('the web client renews its session silently across expiries: one socket, nothing dropped', async () => {
  let sockets = 0;
  page.on('websocket', () => sockets++);
  await signIn(page, gw.url, 'renewing.user');
  const first = await savedExpiry(page);
  assert.ok(first > Date.now(), 'a session with an expiry');
  // two renewals: each one answers the server's `refresh` before the token expires
  await page.waitForFunction(
    (f) => {
      const all = JSON.parse(localStorage.getItem('confab.sessions') ?? '{}') as Record<string, { s?: { expiresAt?: number } }>;
      return (all[sessionStorage.getItem('confab.tab-user') ?? '']?.s?.expiresAt ?? 0) >= f + 2000;
    },
    first,
    { timeout: TTL_S * 3000 },
  );
  await page.waitForFunction((f) => Date.now() > f + 500, first, { timeout: TTL_S * 2000 });
  await waitConnected(page);
  await say(page, 'still here after the first token expired');
  await waitForMessage(page, 'still here after the first token expired');
  assert.equal(sockets, 1, 'the socket was never replaced');
  assert.equal(await page.getByTestId('login').isVisible(), false, 'never signed out');
  assert.deepEqual(kit.problems(page), []);
});

test('a handle held by another user, or a look-alike of it, is refused with a plain message', async () => {
  const res = await fetch(`${gw.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'held.name' }) });
  assert.equal(res.status, 200);
  const other = await kit.newPage();
  for (const handle of ['held.name', 'he1d.name']) {
    await other.goto(gw.url);
    await other.getByTestId('handle-input').fill(handle);
    await other.getByTestId('handle-submit').click();
    await other.getByTestId('login-error').filter({ hasText: 'taken' }).waitFor({ timeout: T.short });
    assert.match((await other.getByTestId('login-error').textContent()) ?? '', new RegExp(`${handle.replace('.', '\\.')}.*taken`));
    assert.equal(await other.getByTestId('chat').isVisible(), false);
  }
});

test('signing out revokes the session on the server and frees the handle', async () => {
  const leaver = await kit.newPage();
  await signIn(leaver, gw.url, 'leaving.user');
  const token = (await saved(leaver)).token ?? '';
  await leaver.getByTestId('logout').click();
  await leaver.getByTestId('login').waitFor({ timeout: T.short });
  let status = 0;
  const deadline = Date.now() + T.short;
  while (Date.now() < deadline) {
    const r = await fetch(`${gw.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'leaving.user', token }) });
    status = r.status;
    if (status === 401) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(status, 401, 'the old token no longer renews');
  const again = await fetch(`${gw.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'leaving.user' }) });
  assert.equal(again.status, 200, 'the handle is free again');
});
