/**
 * docs/scaling.md: a node's bus traffic is observable — SubjectBus counts payload bytes and messages
 * by direction and subject class, and /metrics exports them as confab_bus_bytes_total /
 * confab_bus_messages_total{dir,class}.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { waitFor } from '../../src/procs/wait.js';

describe('bus traffic counters', () => {
  it('count bytes in and out per subject class and reach /metrics', async () => {
    const broker = new MemoryBroker();
    const a = new MemoryBus(broker);
    const b = new MemoryBus(broker);
    let got = 0;
    b.subscribe('room.lobby', () => got++);
    b.subscribe('ctl.presence', () => got++);
    a.publish('room.lobby', new Uint8Array(100));
    a.publish('room.lobby', new Uint8Array(50));
    a.publish('ctl.presence', new Uint8Array(7));
    a.publish('room.nobody-here', new Uint8Array(1000));
    await waitFor(() => got === 3, { timeoutMs: 1000, what: 'b received three payloads' });
    assert.deepEqual(a.traffic.outBytes, { room: 1150, ctl: 7 });
    assert.deepEqual(a.traffic.outMsgs, { room: 3, ctl: 1 });
    assert.deepEqual(b.traffic.inBytes, { room: 150, ctl: 7 }, 'the in-process broker delivers only subjects b listens to');
    assert.deepEqual(b.traffic.inMsgs, { room: 2, ctl: 1 });
    const m = new GatewayMetrics({ node: 'n', region: 'r' }, () => 0, false, () => 0, () => b.traffic);
    const text = await m.registry.metrics();
    assert.match(text, /confab_bus_bytes_total\{dir="in",class="room",node="n",region="r"\} 150/);
    assert.match(text, /confab_bus_messages_total\{dir="in",class="ctl",node="n",region="r"\} 1/);
    b.subscribe('room.lobby', () => got++);
    a.publish('room.lobby', new Uint8Array(10));
    await waitFor(() => got === 5, { timeoutMs: 1000, what: 'two handlers, one payload' });
    assert.match(await m.registry.metrics(), /confab_bus_bytes_total\{dir="in",class="room",node="n",region="r"\} 160/);
    await a.close();
    await b.close();
  });
});
