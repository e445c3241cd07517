import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from '../../src/client/constants.js';
import * as protocol from '../../src/protocol/frames.js';

test('client constants equal the protocol ones (the client copies them to keep zod out of the browser bundle)', () => {
  assert.equal(client.SUBPROTOCOL, protocol.SUBPROTOCOL);
  assert.equal(client.ALERTS_ROOM, protocol.ALERTS_ROOM);
  for (const k of ['ROOM_RE', 'HANDLE_RE', 'ID_RE'] as const) {
    assert.equal(client[k].source, protocol[k].source, k);
    assert.equal(client[k].flags, protocol[k].flags, k);
  }
});
