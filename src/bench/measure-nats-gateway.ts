/**
 * Messages/s through one gateway, in-process bus + memory history vs NATS bus +
 * JetStream history (R1, one local nats-server), same scenario in one run:
 * 4 publishers with 32 messages in flight each, 20 more members, one room.
 * Run: npm run measure:nats-gateway
 */
import pino from 'pino';
import { loadConfig } from '../config/config.js';
import { createSession, startTestGateway, TEST_SECRET, type TestGateway } from '../testkit/gateway.js';
import { startNats } from '../procs/nats.js';
import { RawClient } from '../testkit/raw-client.js';
import { waitFor } from '../procs/wait.js';
import { createNatsAdapters } from '../nats/index.js';

const PUBLISHERS = 4;
const MEMBERS = 20;
const PER = 500;
const WINDOW = 32;
const env = { CONFAB_SECRET: TEST_SECRET, CONFAB_RATE_PER_SEC: '100000', CONFAB_RATE_BURST: '100000', CONFAB_FLOOD_CLOSE_AFTER: '1000000', CONFAB_SEND_BUFFER_BYTES: String(64 * 1024 * 1024) };

async function run(label: string, gw: TestGateway): Promise<void> {
  const clients: RawClient[] = [];
  for (let i = 0; i < PUBLISHERS + MEMBERS; i++) {
    const s = await createSession(gw.url, `${label.slice(0, 4)}${i}`);
    const c = await RawClient.connect(gw.wsUrl, s.token);
    c.send({ t: 'join', room: 'bench' });
    await c.next('joined');
    clients.push(c);
  }
  const total = PUBLISHERS * PER;
  const t0 = process.hrtime.bigint();
  let acked = 0;
  await Promise.all(clients.slice(0, PUBLISHERS).map(async (c, p) => {
    let sent = 0;
    let inflight = 0;
    c.ws.on('message', (d) => {
      if (d.toString().startsWith('{"t":"ack"')) {
        inflight--;
        acked++;
      }
    });
    while (sent < PER) {
      while (inflight < WINDOW && sent < PER) {
        c.send({ t: 'pub', id: `p${p}m${sent++}`, room: 'bench', text: 'x'.repeat(64) });
        inflight++;
      }
      await waitFor(() => inflight < WINDOW, { timeoutMs: 30_000, intervalMs: 1, what: 'acks' });
    }
  }));
  await waitFor(() => acked === total, { timeoutMs: 60_000, intervalMs: 2, what: 'all acks' });
  const tAck = Number(process.hrtime.bigint() - t0) / 1e9;
  await waitFor(() => clients.every((c) => c.msgs('bench').length >= total), { timeoutMs: 60_000, intervalMs: 5, what: 'all deliveries' });
  const tAll = Number(process.hrtime.bigint() - t0) / 1e9;
  const deliveries = total * clients.length;
  console.log(`${label}: ${Math.round(total / tAck)} msgs/s stored+acknowledged, ${Math.round(deliveries / tAll)} deliveries/s (${total} msgs to ${clients.length} members)`);
  for (const c of clients) c.close();
}

const mem = await startTestGateway({ env });
try {
  await run('in-process bus + memory history', mem);
} finally {
  await mem.close();
}
const nats = await startNats();
try {
  const e = { ...env, NATS_URL: nats.url, CONFAB_NODE_ID: 'bench' };
  const { bus, history } = await createNatsAdapters(loadConfig(e), pino({ level: 'silent' }), { env: e });
  const gw = await startTestGateway({ env: e, bus, history });
  try {
    await run('NATS bus + JetStream history (R1)', gw);
  } finally {
    await gw.close();
  }
} finally {
  await nats.close();
}
