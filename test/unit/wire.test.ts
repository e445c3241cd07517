import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as wsModule from 'ws';
import { framePayload, textFrame } from '../../src/gateway/wire.js';

test('pre-built text frames are byte-identical to what ws builds, at every length encoding', () => {
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 200_000]) {
    const payload = Buffer.alloc(n, 0x61);
    const ours = textFrame(payload);
    const theirs = Buffer.concat(((wsModule as unknown as { Sender: unknown }).Sender as { frame(d: Buffer, o: object): Buffer[] }).frame(payload, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
    assert.deepEqual(ours, theirs, `length ${n}`);
    assert.deepEqual(framePayload(ours), payload);
  }
  assert.equal(framePayload(textFrame('{"t":"pong"}')).toString(), '{"t":"pong"}');
});
