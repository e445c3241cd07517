/**
 * Shared set-ups of the security suite: the embedded default (one gateway, in-process bus),
 * two gateways over one NATS server (JetStream history), two gateways over one Redis. Each file
 * starts one set-up per describe and shares it between its cases.
 */
import pino from 'pino';
import WebSocket from 'ws';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createNatsAdapters } from '../../src/nats/index.js';
import { SUBPROTOCOL } from '../../src/protocol/frames.js';
import { createRedisAdapters } from '../../src/redis/index.js';
import { startTestGateway, TEST_SECRET, type TestGateway } from '../../src/testkit/gateway.js';
import { startNats } from '../../src/procs/nats.js';
import { RawClient } from '../../src/testkit/raw-client.js';
import { startRedis } from '../../src/procs/redis.js';

const log = pino({ level: 'silent' });

export type SetupName = 'embedded' | 'nats' | 'redis';

export interface Setup {
  name: SetupName;
  /** Two gateways of one deployment (the embedded set-up has one: both entries are it). */
  a: TestGateway;
  b: TestGateway;
  stop(): Promise<void>;
}

export interface SetupOptions {
  env?: Record<string, string>;
  config?: Partial<Config>;
}

export async function startSetup(name: SetupName, opts: SetupOptions = {}): Promise<Setup> {
  const base = { CONFAB_SECRET: TEST_SECRET, CONFAB_PRESENCE_GRACE_MS: '5000', ...opts.env };
  if (name === 'embedded') {
    const g = await startTestGateway({ env: base, ...(opts.config ? { config: opts.config } : {}) });
    return { name, a: g, b: g, stop: () => g.close() };
  }
  if (name === 'nats') {
    const nats = await startNats({ jetstream: true });
    const gws: TestGateway[] = [];
    try {
      for (const node of ['sa', 'sb']) {
        const env = { ...base, NATS_URL: nats.url, CONFAB_NODE_ID: node, NATS_REQUEST_TIMEOUT_MS: '2000' };
        const { bus, history } = await createNatsAdapters(loadConfig(env), log, { env });
        gws.push(await startTestGateway({ bus, history, env, ...(opts.config ? { config: opts.config } : {}) }));
      }
    } catch (e) {
      for (const g of gws) await g.close();
      await nats.close();
      throw e;
    }
    return {
      name,
      a: gws[0]!,
      b: gws[1]!,
      stop: async () => {
        for (const g of gws) await g.close();
        await nats.close();
      },
    };
  }
  const redis = await startRedis();
  const gws: TestGateway[] = [];
  try {
    for (const node of ['sa', 'sb']) {
      const env = { ...base, REDIS_URL: redis.url, CONFAB_NODE_ID: node, CONFAB_REDIS_PREFIX: `sec${process.pid}` };
      const { bus, history } = await createRedisAdapters(loadConfig(env), log, { env });
      gws.push(await startTestGateway({ bus, history, env, ...(opts.config ? { config: opts.config } : {}) }));
    }
  } catch (e) {
    for (const g of gws) await g.close();
    await redis.close();
    throw e;
  }
  return {
    name,
    a: gws[0]!,
    b: gws[1]!,
    stop: async () => {
      for (const g of gws) await g.close();
      await redis.close();
    },
  };
}

/** POST /api/session; resolves status and body (never throws on an HTTP error). */
export async function postSession(url: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
}

export async function deleteSession(url: string, token: string): Promise<number> {
  const res = await fetch(`${url}/api/session`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

/** Try an upgrade: 101 with the client, or the refusal's status and JSON body. */
export function tryUpgrade(wsUrl: string, token: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; body?: { code?: string; message?: string }; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const url = token === undefined ? wsUrl : `${wsUrl}?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url, [SUBPROTOCOL], { headers });
    ws.on('unexpected-response', (_req, res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => {
        let body: { code?: string } | undefined;
        try {
          body = JSON.parse(data) as { code?: string };
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, ...(body ? { body } : {}) });
      });
    });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

export { RawClient };
