/**
 * Usage reports between nodes (ctl.usage, the per-user limits across nodes) that fail are counted:
 * confab_usage_report_failures_total{direction="send"} when the bus refuses a report,
 * {direction="receive"} when a report that arrives cannot be read.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { sealEnvelope } from '../../src/bus/envelope.js';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { USAGE_SUBJECT } from '../../src/gateway/user-limits.js';
import { waitFor } from '../../src/procs/wait.js';
import { startTestGateway } from '../../src/testkit/gateway.js';
import { joinRoom, RawClient } from '../../src/testkit/raw-client.js';

const broker = new MemoryBroker();
const gw = await startTestGateway({ broker, env: { CONFAB_USAGE_GOSSIP_MS: '100' } });
const other = new MemoryBus(broker);
const clients: RawClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  await other.close();
  await gw.close();
});

async function failures(direction: 'send' | 'receive'): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = new RegExp(`^confab_usage_report_failures_total\\{[^}]*direction="${direction}"[^}]*\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test('a usage report that cannot be read is counted (receive)', async () => {
  const before = await failures('receive');
  other.publish(USAGE_SUBJECT, sealEnvelope({ kind: 'usage', origin: 'elsewhere' }, '{not json'));
  await waitFor(async () => (await failures('receive')) > before, { what: 'the receive failure counted', timeoutMs: 5000 });
});

test('a usage report the bus refuses is counted (send)', async () => {
  const { c } = await RawClient.session(gw, 'heavy', clients);
  await joinRoom(c, 'lobby');
  const before = await failures('send');
  broker.setDown(true);
  try {
    c.send({ t: 'pub', id: 'p1', room: 'lobby', text: 'counted, then refused' });
    await c.next('error', (e) => e.id === 'p1');
    await waitFor(async () => (await failures('send')) > before, { what: 'the send failure counted', timeoutMs: 5000 });
  } finally {
    broker.setDown(false);
  }
});
