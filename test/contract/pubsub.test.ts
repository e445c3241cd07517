/**
 * The Bus contract suite, unchanged, against Google Cloud Pub/Sub: the real emulator (one per file,
 * shared), one topic per fixture, two buses (two nodes, each with its own `ID_<node>` subscription).
 * The outage kills the emulator (which loses every topic and subscription) and starts it again.
 */
import { after, before, describe } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createPubSubBus } from '../../src/pubsub/index.js';
import { startPubSubEmulator, type PubSubEmulator } from '../../src/testkit/pubsub-emulator.js';
import { busContract } from './bus.contract.js';

const log = pino({ level: 'silent' });
let seq = 0;

describe('Google Cloud Pub/Sub (emulator)', () => {
  let emu: PubSubEmulator;
  before(async () => {
    emu = await startPubSubEmulator();
  });
  after(async () => {
    await emu?.close();
  });

  const bus = (topic: string, node: string) => {
    const env = {
      ...emu.env(),
      CONFAB_BUS: 'pubsub',
      CONFAB_HISTORY: 'memory',
      CONFAB_SECRET: 'contract-secret-0123456789',
      CONFAB_NODE_ID: node,
      CONFAB_PUBSUB_TOPIC: topic,
      CONFAB_PUBSUB_HEALTH_MS: '300',
      CONFAB_PUBSUB_TIMEOUT_MS: '1500',
    };
    return createPubSubBus({ ...loadConfig({ ...env, CONFAB_BUS: 'memory' }), bus: 'pubsub' }, log, { env });
  };

  busContract('pubsub (emulator)', async () => {
    const n = seq++;
    const a = await bus(`contract-${n}`, `n${n}a`);
    const b = await bus(`contract-${n}`, `n${n}b`);
    return {
      buses: [a, b],
      outage: { down: () => emu.kill(), up: () => emu.start() },
      close: async () => {
        await a.close();
        await b.close();
      },
    };
  });
});
