/** The load tracker's verdicts on hand-made delivery sequences, and the payload codec. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadTracker, decodePayload, encodePayload, newRunId } from '../../src/load/index.js';

const RUN = 'abc123';

/** A room `r` with `members` members; sends n messages acked at offsets base+1… */
function setup(members = 2, n = 3, base = 10) {
  const t = new LoadTracker(RUN);
  const m = Array.from({ length: members }, (_, i) => t.addMember('r', i));
  const msgs = Array.from({ length: n }, (_, k) => {
    const seq = t.schedule('r', 1000 + k);
    return { room: 'r', offset: base + 1 + k, prev: base + k, text: encodePayload(RUN, seq, 100), seq };
  });
  return { t, m, msgs };
}

describe('load payload', () => {
  it('round-trips the room seq and pads to the wanted length', () => {
    const p = encodePayload(RUN, 42, 100);
    assert.equal(p.length, 100);
    assert.equal(decodePayload(RUN, p), 42);
    assert.equal(encodePayload(RUN, 7, 4), `L${RUN}:7:`, 'never shorter than its header');
  });
  it('does not claim texts of other runs or other senders', () => {
    assert.equal(decodePayload('zzz999', encodePayload(RUN, 1, 50)), undefined);
    for (const t of ['', 'hello', `L${RUN}`, `L${RUN}:`, `L${RUN}:x:`, `L${RUN}:1`, `L${RUN}:-1:`, `L${RUN}:1234567890:`]) assert.equal(decodePayload(RUN, t), undefined, t);
  });
  it('run ids are 6 hex chars', () => {
    assert.match(newRunId(), /^[0-9a-f]{6}$/);
  });
});

describe('LoadTracker', () => {
  it('all acked, all delivered once in order: nothing lost, latency from the scheduled time', () => {
    const { t, m, msgs } = setup();
    for (const x of msgs) t.ack('r', x.seq, x.offset, false);
    assert.equal(t.missing, 6);
    for (const member of m) for (const x of msgs) t.deliver(member, x, 1000 + x.seq + 5);
    assert.equal(t.missing, 0);
    assert.equal(t.lost(), 0);
    assert.equal(t.delivered, 6);
    assert.equal(t.duplicates + t.orderViolations + t.prevHoles + t.offsetMismatches, 0);
    assert.equal(t.latency.total, 6);
    assert.equal(t.latency.max, 5000, 'latency in µs from the scheduled send time');
  });

  it('delivery before the ack counts too (the sender often sees its message first)', () => {
    const { t, m, msgs } = setup(1, 1);
    t.deliver(m[0]!, msgs[0]!, 1001);
    t.ack('r', 0, msgs[0]!.offset, false);
    assert.equal(t.missing, 0);
    assert.equal(t.lost(), 0);
  });

  it('an acked message one member never got is lost, per room', () => {
    const { t, m, msgs } = setup(2, 2);
    for (const x of msgs) t.ack('r', x.seq, x.offset, false);
    t.deliver(m[0]!, msgs[0]!, 1);
    t.deliver(m[0]!, msgs[1]!, 1);
    t.deliver(m[1]!, msgs[0]!, 1);
    assert.equal(t.missing, 1);
    assert.equal(t.lost(), 1);
    assert.equal(t.summaries()[0]!.lost, 1);
  });

  it('unacked messages are not owed; refused ones are counted by code', () => {
    const { t, msgs } = setup(2, 2);
    t.ack('r', 0, msgs[0]!.offset, false);
    t.refuse('r', 1, 'text_too_long');
    assert.equal(t.inflight, 0);
    assert.equal(t.missing, 2);
    assert.deepEqual(t.refusedByCode, { text_too_long: 1 });
  });

  it('the same message twice is one duplicate (same id), and a repeated offset of another sender too', () => {
    const { t, m, msgs } = setup(1, 2);
    t.deliver(m[0]!, msgs[0]!, 1);
    t.deliver(m[0]!, msgs[0]!, 1);
    assert.equal(t.duplicates, 1);
    assert.equal(t.orderViolations, 0);
    t.deliver(m[0]!, { room: 'r', offset: msgs[0]!.offset, prev: msgs[0]!.prev, text: 'someone else' }, 1);
    assert.equal(t.duplicates, 2);
    assert.equal(t.summaries()[0]!.duplicates, 2);
  });

  it('offsets going back and prev behind the last offset are order violations', () => {
    const { t, m, msgs } = setup(1, 3);
    t.deliver(m[0]!, msgs[1]!, 1);
    t.deliver(m[0]!, msgs[0]!, 1);
    assert.equal(t.orderViolations, 1);
    const t2 = setup(1, 3);
    t2.t.deliver(t2.m[0]!, t2.msgs[1]!, 1);
    t2.t.deliver(t2.m[0]!, { ...t2.msgs[2]!, prev: t2.msgs[0]!.offset }, 1);
    assert.equal(t2.t.orderViolations, 1, 'prev pointing behind what was seen');
  });

  it('prev beyond the last offset is a hole; an SDK gap event restarts the continuity check', () => {
    const { t, m, msgs } = setup(1, 3);
    t.deliver(m[0]!, msgs[0]!, 1);
    t.deliver(m[0]!, msgs[2]!, 1);
    assert.equal(t.prevHoles, 1);
    assert.equal(m[0]!.gaps, 1);
    const s = setup(1, 3);
    s.t.deliver(s.m[0]!, s.msgs[0]!, 1);
    s.t.gap(s.m[0]!);
    s.t.deliver(s.m[0]!, s.msgs[2]!, 1);
    assert.equal(s.t.prevHoles, 0, 'the announced gap is counted once, as an SDK gap');
    assert.equal(s.t.sdkGaps, 1);
    assert.equal(s.t.summaries()[0]!.gaps, 1);
  });

  it('a member seeing a message at another offset than its ack is an offset mismatch', () => {
    const { t, m, msgs } = setup(1, 1);
    t.ack('r', 0, msgs[0]!.offset, false);
    t.deliver(m[0]!, { ...msgs[0]!, offset: msgs[0]!.offset + 5 }, 1);
    assert.equal(t.offsetMismatches, 1);
  });

  it('messages of other senders are foreign, chained for continuity but not owed', () => {
    const { t, m, msgs } = setup(1, 1);
    t.deliver(m[0]!, { room: 'r', offset: 10, prev: 9, text: 'hi from a human' }, 1);
    t.deliver(m[0]!, msgs[0]!, 1);
    assert.equal(t.foreign, 1);
    assert.equal(t.prevHoles, 0);
    assert.equal(t.delivered, 1);
    t.deliver(m[0]!, { room: 'r', offset: 12, prev: 11, text: encodePayload(RUN, 99, 40) }, 1);
    assert.equal(t.foreign, 2, 'a seq this run never scheduled is foreign');
  });

  it('a resend acked with dup is counted once', () => {
    const { t, msgs } = setup(1, 1);
    t.ack('r', 0, msgs[0]!.offset, true);
    t.ack('r', 0, msgs[0]!.offset, true);
    assert.equal(t.acked, 1);
    assert.equal(t.dupAcks, 1);
  });
});
