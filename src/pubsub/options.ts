/**
 * Google Cloud Pub/Sub settings read from the environment, validated up front (ConfigError naming
 * the variable). Every variable is declared in src/config/env.ts and listed in docs/pubsub.md.
 *
 * Credentials, in this order: PUBSUB_EMULATOR_HOST (the emulator: plain text, none needed), the key
 * file named by GOOGLE_APPLICATION_CREDENTIALS, `google-service-account.json` in the working
 * directory (the seed's place for it), else the environment's default credentials (e.g. the VM's
 * service account on Google Cloud). The project is GOOGLE_CLOUD_PROJECT, else the key file's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/config.js';
import { ConfigError, type Env, readEnv } from '../config/env.js';

/** The key file the seed kept in its app folder; read when GOOGLE_APPLICATION_CREDENTIALS is not set. */
export const SEED_KEY_FILE = 'google-service-account.json';

/** Prefix of every node's subscription (Pub/Sub names must start with a letter). */
export const SUBSCRIPTION_PREFIX = 'ID_';

/** Label on every node subscription: which confab topic it belongs to (for `confab pubsub gc`). */
export const LABEL_KIND = 'confab-node';

export interface PubSubSettings {
  projectId: string;
  /** host:port of the emulator, when PUBSUB_EMULATOR_HOST is set. */
  emulatorHost?: string;
  /** Service-account key file, when one is used. */
  keyFilename?: string;
  topic: string;
  expirationSec: number;
  retentionSec: number;
  timeoutMs: number;
  healthMs: number;
  batchMs: number;
}

/**
 * A node id as a subscription name: `ID_<node>`, every character Pub/Sub does not allow in a name
 * (letters, digits, `-_.~+%`) replaced by `_`, at most 255 characters. Node ids are already
 * `[A-Za-z0-9_-]{1,64}` (FLY_ALLOC_ID, CONFAB_NODE_ID), so this changes nothing for them.
 */
export function subscriptionName(node: string): string {
  return `${SUBSCRIPTION_PREFIX}${node.replace(/[^A-Za-z0-9._~+%-]/g, '_')}`.slice(0, 255);
}

/** The node id a subscription name stands for (undefined: not a node subscription). */
export function nodeOfSubscription(name: string): string | undefined {
  const short = name.slice(name.lastIndexOf('/') + 1);
  return short.startsWith(SUBSCRIPTION_PREFIX) && short.length > SUBSCRIPTION_PREFIX.length ? short.slice(SUBSCRIPTION_PREFIX.length) : undefined;
}

function keyProject(file: string): string | undefined {
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { project_id?: unknown };
    return typeof j.project_id === 'string' ? j.project_id : undefined;
  } catch (e) {
    throw new ConfigError('GOOGLE_APPLICATION_CREDENTIALS', `cannot read the key file ${file}: ${(e as Error).message}`);
  }
}

export function readPubSubSettings(_config: Pick<Config, 'node'>, env: Env = process.env, cwd = process.cwd()): PubSubSettings {
  const emulatorHost = readEnv(env, 'PUBSUB_EMULATOR_HOST');
  let keyFilename: string | undefined;
  if (!emulatorHost) {
    keyFilename = readEnv(env, 'GOOGLE_APPLICATION_CREDENTIALS');
    const seed = resolve(cwd, SEED_KEY_FILE);
    if (keyFilename === undefined && existsSync(seed)) keyFilename = seed;
  }
  const projectId = readEnv(env, 'GOOGLE_CLOUD_PROJECT') ?? (keyFilename ? keyProject(keyFilename) : undefined);
  if (!projectId) {
    throw new ConfigError('GOOGLE_CLOUD_PROJECT', `CONFAB_BUS=pubsub needs the project: set GOOGLE_CLOUD_PROJECT (or use a key file with a project_id: GOOGLE_APPLICATION_CREDENTIALS or ./${SEED_KEY_FILE})`);
  }
  return {
    projectId,
    ...(emulatorHost ? { emulatorHost } : {}),
    ...(keyFilename ? { keyFilename } : {}),
    topic: readEnv(env, 'CONFAB_PUBSUB_TOPIC'),
    expirationSec: readEnv(env, 'CONFAB_PUBSUB_EXPIRATION_S'),
    retentionSec: readEnv(env, 'CONFAB_PUBSUB_RETENTION_S'),
    timeoutMs: readEnv(env, 'CONFAB_PUBSUB_TIMEOUT_MS'),
    healthMs: readEnv(env, 'CONFAB_PUBSUB_HEALTH_MS'),
    batchMs: readEnv(env, 'CONFAB_PUBSUB_BATCH_MS'),
  };
}
