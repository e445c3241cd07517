/**
 * Several URLs: the client's list (own origin first, repeats dropped), CONFAB_PUBLIC_URLS
 * validation, and what a real gateway serves for it: GET /api/config, a CSP that lets the page
 * probe those origins, and /readyz readable from other origins.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointKey, urlList } from '../../src/client/index.js';
import { ConfigError, loadConfig, publicUrls } from '../../src/config/config.js';
import { SECURITY_HEADERS, pageHeaders } from '../../src/gateway/http.js';
import { startTestGateway, type TestGateway } from '../../src/testkit/gateway.js';

const gateways: TestGateway[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
});

test('urlList: own origin first, then the others; the same endpoint named twice is kept once; junk is skipped', () => {
  assert.equal(endpointKey('http://h:1'), 'ws://h:1/ws');
  assert.equal(endpointKey('wss://h/ws'), endpointKey('https://h'));
  assert.deepEqual(urlList('https://ord.example.com', ['wss://ord.example.com/', 'wss://syd.example.com/', 'wss://syd.example.com/ws', 42, 'ftp://x', 'not a url']), [
    'https://ord.example.com',
    'wss://syd.example.com/',
  ]);
  assert.deepEqual(urlList('http://127.0.0.1:8080'), ['http://127.0.0.1:8080']);
});

test('CONFAB_PUBLIC_URLS: ws/wss URLs, normalized, duplicates dropped; anything else fails naming the variable', () => {
  assert.deepEqual(publicUrls({}), []);
  assert.deepEqual(publicUrls({ CONFAB_PUBLIC_URLS: ' wss://ord.example.com , wss://syd.example.com/ws,wss://ord.example.com/ ' }), ['wss://ord.example.com/', 'wss://syd.example.com/ws']);
  assert.deepEqual(loadConfig({ CONFAB_PUBLIC_URLS: 'ws://127.0.0.1:1' }).publicUrls, ['ws://127.0.0.1:1/']);
  for (const bad of ['https://ord.example.com', 'ord.example.com', 'wss://u:p@h', 'wss://h/?x=1', 'wss://h/#f', Array.from({ length: 17 }, (_, i) => `wss://h${i}`).join(',')]) {
    assert.throws(() => loadConfig({ CONFAB_PUBLIC_URLS: bad }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONFAB_PUBLIC_URLS', bad);
  }
});

test('pageHeaders: without public URLs the CSP is unchanged; with them connect-src adds their http(s) origins only', () => {
  assert.equal(pageHeaders([]), SECURITY_HEADERS);
  const csp = pageHeaders(['wss://ord.example.com/', 'ws://127.0.0.1:9000/ws', 'wss://ord.example.com/other'])['content-security-policy']!;
  assert.match(csp, /connect-src 'self' ws: wss: https:\/\/ord\.example\.com http:\/\/127\.0\.0\.1:9000;/);
  assert.equal(csp.replace(/ https:\/\/ord\.example\.com http:\/\/127\.0\.0\.1:9000/, ''), SECURITY_HEADERS['content-security-policy']);
  assert.match(csp, /script-src 'self'/);
});

test('a gateway serves GET /api/config with its public URLs, and /readyz to any origin', async () => {
  const gw = await startTestGateway({ env: { CONFAB_PUBLIC_URLS: 'wss://ord.example.com,wss://syd.example.com' } });
  gateways.push(gw);
  const res = await fetch(`${gw.url}/api/config`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(await res.json(), { urls: ['wss://ord.example.com/', 'wss://syd.example.com/'] });
  const ready = await fetch(`${gw.url}/readyz`, { headers: { origin: 'https://syd.example.com' } });
  assert.equal(ready.status, 200);
  assert.equal(ready.headers.get('access-control-allow-origin'), '*');

  const plain = await startTestGateway();
  gateways.push(plain);
  assert.deepEqual(await (await fetch(`${plain.url}/api/config`)).json(), { urls: [] }, 'none configured: an empty list');
});
