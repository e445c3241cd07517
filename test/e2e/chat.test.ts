/**
 * Browser end-to-end: two users chat in the lobby through the real web UI and a real
 * gateway process; presence, alerts, XSS payloads and the Content-Security-Policy.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { GatewayProcess, T, messageTexts, say, signIn, waitForMessage } from './support.js';

let gw: GatewayProcess;
let kit: BrowserKit;
let alice: Page;
let bob: Page;

before(async () => {
  gw = await GatewayProcess.create({ CONFAB_NODE_ID: 'node-chat1', CONFAB_REGION: 'ams', CONFAB_PRESENCE_GRACE_MS: '200' });
  await gw.start();
  kit = await startBrowser();
  alice = await kit.newPage();
  bob = await kit.newPage();
});

after(async () => {
  await kit?.close();
  await gw?.dispose();
});

test('the page is served with a strict Content-Security-Policy and runs without violations', async () => {
  const res = await alice.goto(gw.url);
  assert.ok(res, 'navigation response');
  const csp = res.headers()['content-security-policy'];
  assert.ok(csp, `no Content-Security-Policy header; headers: ${JSON.stringify(res.headers())}`);
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  await alice.getByTestId('handle-input').waitFor({ timeout: T.short });
});

test('handles are validated in the page, and server refusals are shown', async () => {
  await bob.goto(gw.url);
  for (const bad of ['a', '<img src=x>', '-dash']) {
    await bob.getByTestId('handle-input').fill(bad);
    await bob.getByTestId('handle-submit').click();
    await bob.getByTestId('login-error').waitFor({ state: 'visible', timeout: T.short });
    assert.notEqual((await bob.getByTestId('login-error').textContent())?.trim(), '');
  }
  assert.equal(await bob.getByTestId('chat').isVisible(), false, 'bad handles never get in');
});

test('two users chat in the lobby and each sees the other, with join notices and members', async () => {
  await signIn(alice, gw.url, 'alice');
  await signIn(bob, gw.url, 'bob');
  await alice.getByTestId('notice').filter({ hasText: 'bob joined' }).waitFor({ timeout: T.short });
  await alice.getByTestId('member').filter({ hasText: 'bob' }).waitFor({ timeout: T.short });
  await bob.getByTestId('member').filter({ hasText: 'alice' }).waitFor({ timeout: T.short });
  assert.match((await alice.getByTestId('status').textContent()) ?? '', /connected to node node-chat1 in region ams/);

  await say(alice, 'hello from alice');
  await waitForMessage(bob, 'hello from alice');
  await say(bob, 'hi alice, bob here');
  await waitForMessage(alice, 'hi alice, bob here');
  await waitForMessage(bob, 'hi alice, bob here');
  await waitForMessage(alice, 'hello from alice');
  assert.deepEqual(await messageTexts(alice), await messageTexts(bob), 'same messages in the same order');
  assert.deepEqual(await messageTexts(alice), ['hello from alice', 'hi alice, bob here']);
});

test('a second user cannot take a handle that is online', async () => {
  const carol = await kit.newPage();
  await carol.goto(gw.url);
  await carol.getByTestId('handle-input').fill('alice');
  await carol.getByTestId('handle-submit').click();
  await carol.getByTestId('login-error').filter({ hasText: /is taken: .*another user/ }).waitFor({ timeout: T.short });
  await carol.context().close();
});

test('typing shows "X is typing…" to the others', async () => {
  await bob.getByTestId('message-input').pressSequentially('abc');
  await alice.getByTestId('typing').filter({ hasText: 'bob is typing…' }).waitFor({ timeout: T.short });
  await bob.getByTestId('message-input').fill('');
});

test('an alert from one user is shown to the other with sender, node, region and age', async () => {
  await alice.getByTestId('alert-input').fill('fire drill at noon');
  await alice.getByTestId('alert-send').click();
  await alice.getByTestId('alert-confirm').click();
  const alert = bob.getByTestId('alert').filter({ hasText: 'fire drill at noon' });
  await alert.waitFor({ timeout: T.short });
  assert.equal(await alert.getByTestId('alert-from').textContent(), 'alice');
  const meta = (await alert.getByTestId('alert-meta').textContent()) ?? '';
  assert.match(meta, /node node-chat1/);
  assert.match(meta, /region ams/);
  assert.match(meta, /sent \d+ (ms|s|min) ago/);
  await alice.getByTestId('alert').filter({ hasText: 'fire drill at noon' }).waitFor({ timeout: T.short });
});

test('XSS payloads stay text (messages and alerts); nothing runs', async () => {
  const payloads = ['<img src=x onerror=window.__xss=1>', '<script>window.__xss=2</script>', '"><svg onload=window.__xss=3>'];
  for (const p of payloads) await say(alice, p);
  await alice.getByTestId('alert-input').fill('<img src=x onerror=window.__xss=4>');
  await alice.getByTestId('alert-send').click();
  await alice.getByTestId('alert-confirm').click();
  for (const p of payloads) await waitForMessage(bob, p);
  await bob.getByTestId('alert-text').filter({ hasText: '<img src=x onerror=window.__xss=4>' }).waitFor({ timeout: T.short });
  for (const page of [alice, bob]) {
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss), undefined);
    assert.equal(await page.locator('[data-testid="messages"] img, [data-testid="messages"] script, [data-testid="messages"] svg, [data-testid="alerts"] img').count(), 0);
  }
  const texts = await messageTexts(bob);
  for (const p of payloads) assert.ok(texts.includes(p), `payload shown verbatim: ${p}`);
});

test('rooms: join a new room by name, see its history on join, switch back, leave', async () => {
  await alice.getByTestId('join-input').fill('dev-team');
  await alice.getByTestId('join-submit').click();
  await alice.getByTestId('room-title').filter({ hasText: 'dev-team' }).waitFor({ timeout: T.short });
  await alice.waitForFunction(() => document.querySelector('[data-testid="room-item"][data-room="dev-team"]')?.getAttribute('data-joined') === 'true', undefined, { timeout: T.short });
  await say(alice, 'only in dev-team');
  await waitForMessage(alice, 'only in dev-team');
  assert.deepEqual(await messageTexts(alice), ['only in dev-team'], 'the lobby\'s messages are not in dev-team');

  await bob.getByTestId('join-input').fill('Bad Room!');
  await bob.getByTestId('join-submit').click();
  await bob.getByTestId('join-error').waitFor({ state: 'visible', timeout: T.short });
  await bob.getByTestId('join-input').fill('dev-team');
  await bob.getByTestId('join-submit').click();
  await waitForMessage(bob, 'only in dev-team'); // history on join
  await bob.getByTestId('member').filter({ hasText: 'alice' }).waitFor({ timeout: T.short });

  await bob.locator('[data-testid="room-item"][data-room="lobby"] button').click();
  await bob.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
  await waitForMessage(bob, 'hello from alice');
  await bob.locator('[data-testid="room-item"][data-room="dev-team"] button').click();
  await bob.getByTestId('room-title').filter({ hasText: 'dev-team' }).waitFor({ timeout: T.short });
  await bob.getByTestId('leave-room').click();
  await bob.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
  await alice.getByTestId('notice').filter({ hasText: 'bob left' }).waitFor({ timeout: T.short });
  assert.equal(await bob.locator('[data-testid="room-item"][data-room="dev-team"][data-joined="true"]').count(), 0);
  await alice.locator('[data-testid="room-item"][data-room="lobby"] button').click();
  await alice.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
});

test('the browser going offline shows "offline"; what is typed meanwhile goes out when it is back', async () => {
  await alice.context().setOffline(true);
  await alice.waitForFunction(() => document.querySelector('[data-testid="status"]')?.getAttribute('data-state') === 'offline', undefined, { timeout: T.short });
  assert.equal((await alice.getByTestId('status').textContent())?.trim(), 'offline');
  await say(alice, 'typed while offline');
  await alice.getByTestId('pending').filter({ hasText: 'typed while offline' }).waitFor({ timeout: T.short });
  await alice.context().setOffline(false);
  await waitForMessage(bob, 'typed while offline');
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid="pending"]').length === 0, undefined, { timeout: T.short });
  assert.equal((await messageTexts(bob)).filter((t) => t === 'typed while offline').length, 1);
});

test('a user who leaves shows a leave notice to the others', async () => {
  await bob.context().close();
  await alice.getByTestId('notice').filter({ hasText: 'bob left' }).waitFor({ timeout: T.short });
  assert.equal(await alice.getByTestId('member').filter({ hasText: 'bob' }).count(), 0);
  assert.deepEqual(kit.problems(alice), [], 'no page errors or CSP violations');
});
