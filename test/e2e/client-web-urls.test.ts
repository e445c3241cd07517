/**
 * The web client uses every region's entry point when the deployment names them
 * (CONFAB_PUBLIC_URLS → GET /api/config): in Chromium, a page loaded from gateway A whose
 * gateway is killed carries on through gateway B (both on one Redis bus and history),
 * without a page reload, a lost message or a CSP violation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBrowser, type BrowserKit } from '../../src/testkit/browser.js';
import { startRedis, type RedisServer } from '../../src/procs/redis.js';
import { GatewayProcess, T, messageTexts, say, signIn, waitConnected, waitForMessage } from './support.js';

let redis: RedisServer;
let a: GatewayProcess;
let b: GatewayProcess;
let kit: BrowserKit;

before(async () => {
  redis = await startRedis();
  const shared = { CONFAB_SECRET: 'e2e-web-urls-secret-0123456789', CONFAB_BUS: 'redis', REDIS_URL: redis.url };
  a = await GatewayProcess.create({ ...shared, CONFAB_NODE_ID: 'web-a', CONFAB_REGION: 'ams' });
  b = await GatewayProcess.create({ ...shared, CONFAB_NODE_ID: 'web-b', CONFAB_REGION: 'syd' });
  const urls = [a, b].map((g) => `ws://127.0.0.1:${g.port}`).join(',');
  // B accepts sockets from pages served by A (another origin: another port)
  Object.assign(a.env, { CONFAB_PUBLIC_URLS: urls });
  Object.assign(b.env, { CONFAB_PUBLIC_URLS: urls, CONFAB_ALLOWED_ORIGINS: `${a.url},${b.url}` });
  await Promise.all([a.start(), b.start()]);
  kit = await startBrowser();
});

after(async () => {
  await kit?.close();
  await Promise.all([a?.dispose(), b?.dispose()]);
  await redis?.close();
});

test('a page from gateway A moves to gateway B when A dies, and keeps the conversation', async () => {
  const page = await kit.newPage();
  const other = await kit.newPage();
  await signIn(page, a.url, 'wendy');
  await signIn(other, b.url, 'otto');
  const status = page.getByTestId('status');
  assert.match((await status.textContent()) ?? '', /node web-a/);
  await say(page, 'before');
  await waitForMessage(other, 'before');

  await a.kill('SIGKILL');
  await page.waitForFunction(() => /node web-b/.test(document.querySelector('[data-testid="status"]')?.textContent ?? ''), undefined, { timeout: T.long });
  await waitConnected(page);
  await say(other, 'while moving');
  await say(page, 'after');
  await waitForMessage(other, 'after');
  await waitForMessage(page, 'while moving');
  assert.deepEqual((await messageTexts(page)).filter((t) => ['before', 'while moving', 'after'].includes(t)).sort(), ['after', 'before', 'while moving']);
  assert.deepEqual(await messageTexts(page), await messageTexts(other), 'the same conversation on both pages, once each');
  assert.deepEqual(kit.problems(page), [], 'no page errors or CSP violations');
});
