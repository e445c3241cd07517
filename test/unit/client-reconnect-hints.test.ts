/** The SDK's reconnect inputs: the server's retry hint on a draining close, the socket URL, and its backoff (the shared one). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, DEFAULT_BACKOFF, retryHint, socketUrl } from '../../src/client/index.js';
import * as shared from '../../src/shared/backoff.js';

test('the SDK reconnects with the shared Backoff (one backoff for every retry loop)', () => {
  assert.equal(Backoff, shared.Backoff);
  assert.equal(DEFAULT_BACKOFF, shared.DEFAULT_BACKOFF);
});

test('retryHint: reads retryMs from a draining close reason, ignores anything else', () => {
  assert.equal(retryHint('{"code":"draining","retryMs":1234}'), 1234);
  assert.equal(retryHint('{"code":"draining"}'), undefined);
  assert.equal(retryHint('{"retryMs":-5}'), undefined);
  assert.equal(retryHint('not json'), undefined);
  assert.equal(retryHint(''), undefined);
  assert.equal(retryHint('{"retryMs":99999999}'), 120_000);
});

test('socketUrl: http base becomes ws://host/ws with the token', () => {
  assert.equal(socketUrl('http://127.0.0.1:8080', 'a.b'), 'ws://127.0.0.1:8080/ws?token=a.b');
  assert.equal(socketUrl('https://x.example/', 't'), 'wss://x.example/ws?token=t');
  assert.equal(socketUrl('ws://h:1/custom', 't t'), 'ws://h:1/custom?token=t+t');
  assert.throws(() => socketUrl('ftp://h', 't'), TypeError);
});
