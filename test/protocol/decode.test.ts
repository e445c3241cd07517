import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeClientFrame } from '../../src/protocol/decode.js';
import { CLOSE_NO_RECONNECT_MIN, ErrorCodes, codeForClose, shouldReconnect } from '../../src/protocol/codes.js';

describe('protocol: client frame decoder', () => {
  it('accepts every valid frame type', () => {
    const valid = [
      { t: 'join', room: 'lobby' },
      { t: 'join', room: 'lobby', since: { epoch: 'e1', offset: 0 } },
      { t: 'leave', room: 'lobby' },
      { t: 'pub', id: 'a_b-1', room: 'lobby', text: 'hi' },
      { t: 'alert', id: 'x', text: 'fire' },
      { t: 'typing', room: 'lobby' },
      { t: 'ping' },
      { t: 'rooms' },
    ];
    for (const f of valid) {
      const d = decodeClientFrame(JSON.stringify(f));
      assert.ok(d.ok, JSON.stringify(f));
      assert.deepEqual(d.frame, f);
    }
  });

  it('returns a typed error for each kind of bad input', () => {
    const cases: [string, string][] = [
      ['', 'bad_json'],
      ['{', 'bad_json'],
      ['null', 'bad_frame'],
      ['42', 'bad_frame'],
      ['[]', 'bad_frame'],
      ['{}', 'unknown_type'],
      ['{"t":1}', 'unknown_type'],
      ['{"t":"constructor"}', 'unknown_type'],
      ['{"t":"__proto__"}', 'unknown_type'],
      ['{"t":"ping","extra":1}', 'bad_frame'],
      ['{"t":"ping","__proto__":{"x":1}}', 'bad_frame'],
      ['{"t":"pub","id":"","room":"r","text":"x"}', 'bad_frame'],
      ['{"t":"pub","id":"' + 'a'.repeat(65) + '","room":"r","text":"x"}', 'bad_frame'],
      ['{"t":"join","room":"r","since":{"epoch":"e","offset":1.5}}', 'bad_frame'],
      ['{"t":"join","room":{"$gt":""}}', 'bad_frame'],
    ];
    for (const [text, code] of cases) {
      const d = decodeClientFrame(text);
      assert.equal(d.ok, false, text);
      if (!d.ok) assert.equal(d.code, code, text);
    }
  });

  it('echoes a usable id so a client can match the error to its send', () => {
    const d = decodeClientFrame('{"t":"pub","id":"m1","room":"r","text":7}');
    assert.ok(!d.ok && d.id === 'm1');
  });

  it('never throws on fuzzed input (random bytes, mutated frames, deep nesting)', () => {
    const seeds = ['{"t":"pub","id":"a","room":"lobby","text":"hello"}', '{"t":"join","room":"lobby","since":{"epoch":"e","offset":3}}'];
    let errors = 0;
    for (let i = 0; i < 20_000; i++) {
      let s: string;
      if (i % 3 === 0) s = randomBytes(1 + (i % 64)).toString('latin1');
      else {
        const b = Buffer.from(seeds[i % 2]!);
        for (let k = 0; k < 1 + (i % 4); k++) b[(i * 7919 + k * 104729) % b.length] = (i * 31 + k) & 0xff;
        s = b.toString('latin1');
      }
      const d = decodeClientFrame(s);
      if (!d.ok) {
        errors++;
        assert.ok(d.code in ErrorCodes);
      }
    }
    assert.ok(errors > 10_000, 'most fuzzed frames are refused');
    const deep = decodeClientFrame('{"t":"pub","id":"a","room":"r","text":' + '['.repeat(5000) + ']'.repeat(5000) + '}');
    assert.equal(deep.ok, false);
  });
});

describe('protocol: code table', () => {
  it('gives every closing code a unique close number in the documented ranges', () => {
    const closes = Object.values(ErrorCodes).map((c): number | null => c.close).filter((c): c is number => c !== null);
    assert.equal(new Set(closes).size, closes.length);
    for (const c of closes) assert.ok(c === 1009 || (c >= 4000 && c <= 4999));
    assert.equal(codeForClose(4001), 'slow_consumer');
    assert.equal(shouldReconnect(4000), true);
    assert.equal(shouldReconnect(1006), true);
    assert.equal(shouldReconnect(CLOSE_NO_RECONNECT_MIN), false);
    assert.equal(shouldReconnect(4999), false);
    assert.equal(ErrorCodes.unauthorized.close, null, 'unauthorized only answers the HTTP upgrade');
  });
});
