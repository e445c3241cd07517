/**
 * The bus envelope (src/bus/envelope.ts): the header is read without the body, every kind round-trips,
 * the legacy text form of nodes not yet upgraded is still read, and what is not an envelope this node
 * knows (newer version, truncated, garbage) is refused rather than misread. Byte-level.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENVELOPE_VERSION, openEnvelope, peekEnvelope, sealEnvelope } from '../../src/bus/envelope.js';

const enc = new TextEncoder();

describe('bus envelope', () => {
  it('lays out version, kind, origin and room before the body, and reads them back', () => {
    const data = sealEnvelope({ kind: 'msg', origin: 'n1', room: 'lobby' }, '{"a":1}');
    assert.deepEqual([...data.subarray(0, 4)], [ENVELOPE_VERSION, 1, 2, 5]);
    assert.equal(new TextDecoder().decode(data.subarray(4, 11)), 'n1lobby');
    const h = peekEnvelope(data)!;
    assert.deepEqual(h, { version: 1, kind: 'msg', origin: 'n1', room: 'lobby', bodyAt: 11 });
    assert.deepEqual(openEnvelope(data), { header: h, body: '{"a":1}' });
  });

  it('round-trips every kind, node-wide payloads without a room, non-ASCII names and binary bodies', () => {
    for (const kind of ['msg', 'typing', 'presence'] as const) {
      const e = openEnvelope(sealEnvelope({ kind, origin: 'nœud-é', room: kind === 'presence' ? undefined : 'räum' }, '{"x":"ü"}'))!;
      assert.equal(e.header.kind, kind);
      assert.equal(e.header.origin, 'nœud-é');
      assert.equal(e.header.room, kind === 'presence' ? '' : 'räum');
      assert.equal(e.body, '{"x":"ü"}');
    }
    const body = Uint8Array.from({ length: 256 }, (_, i) => i);
    const data = sealEnvelope({ kind: 'msg', origin: 'n', room: 'r' }, body);
    assert.deepEqual([...data.subarray(peekEnvelope(data)!.bodyAt)], [...body]);
  });

  it('reads the header of a large payload without decoding its body', () => {
    const big = 'x'.repeat(1_000_000);
    const data = sealEnvelope({ kind: 'msg', origin: 'n', room: 'r' }, big);
    const h = peekEnvelope(data)!;
    assert.equal(h.room, 'r');
    assert.equal(data.length - h.bodyAt, 1_000_000);
  });

  it('still reads the legacy text form (rolling upgrades): room messages, typing, presence', () => {
    assert.deepEqual(openEnvelope(enc.encode('old\nm\n{"offset":3}'), 'lobby'), { header: { version: 0, kind: 'msg', origin: 'old', room: 'lobby', bodyAt: 6 }, body: '{"offset":3}' });
    assert.equal(openEnvelope(enc.encode('old\nt\n{"id":"u"}'), 'lobby')!.header.kind, 'typing');
    assert.deepEqual(openEnvelope(enc.encode('old\n{"k":"hb","node":"old"}')), { header: { version: 0, kind: 'presence', origin: 'old', room: '', bodyAt: 4 }, body: '{"k":"hb","node":"old"}' });
  });

  it('refuses what it does not know instead of misreading it', () => {
    const ok = sealEnvelope({ kind: 'msg', origin: 'n', room: 'r' }, 'b');
    const newer = Uint8Array.from(ok);
    newer[0] = 2;
    assert.equal(peekEnvelope(newer), undefined, 'a newer version');
    const kind = Uint8Array.from(ok);
    kind[1] = 9;
    assert.equal(peekEnvelope(kind), undefined, 'an unknown kind');
    assert.equal(peekEnvelope(ok.subarray(0, 5)), undefined, 'a truncated header');
    assert.equal(peekEnvelope(new Uint8Array([1, 1, 0, 0, 65])), undefined, 'no origin');
    assert.equal(peekEnvelope(new Uint8Array(0)), undefined);
    assert.equal(peekEnvelope(enc.encode('no newline at all')), undefined);
    assert.equal(peekEnvelope(enc.encode('n\nx\n{}'), 'r'), undefined, 'a legacy payload of an unknown type');
    assert.throws(() => sealEnvelope({ kind: 'msg', origin: '', room: 'r' }, 'b'), RangeError);
    assert.throws(() => sealEnvelope({ kind: 'msg', origin: 'n', room: 'r'.repeat(256) }, 'b'), RangeError);
  });
});
