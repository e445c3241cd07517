/**
 * NATS settings read from the environment, validated up front. A bad value
 * throws ConfigError naming the variable. Every variable is declared in src/config/env.ts
 * (parse, default, bounds) and listed in docs/nats.md from there.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { ConfigError, type Env, parseEnvValue, readEnv } from '../config/env.js';
import { retentionOf, type RetentionConfig } from '../history/retention.js';
import type { ShardSettings } from './shards.js';


/** Credentials: at most one kind may be set. */
export type NatsAuth =
  | { kind: 'none' }
  | { kind: 'userpass'; user: string; pass: string }
  | { kind: 'token'; token: string }
  | { kind: 'creds'; file: string; creds: Uint8Array }
  | { kind: 'nkey'; file: string; seed: Uint8Array };

export interface NatsTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** JetStream stream settings for the history stream. */
export interface StreamSettings {
  /** CONFAB_STREAM_NAME, default CONFAB. */
  name: string;
  /** CONFAB_STREAM_REPLICAS 1..5, default 1. */
  replicas: number;
  /** CONFAB_STREAM_MAX_AGE_S, else CONFAB_HISTORY_MAX_AGE_S; 0 = unlimited. */
  maxAgeSec: number;
  /** CONFAB_STREAM_MAX_BYTES, -1 = unlimited (default). */
  maxBytes: number;
  /** CONFAB_STREAM_STORAGE file|memory, default file. */
  storage: 'file' | 'memory';
  /** Per-room message cap (max_msgs_per_subject) = CONFAB_HISTORY_LIMIT. */
  perRoom: number;
  /** CONFAB_STREAM_DUPLICATE_WINDOW_S, else CONFAB_DEDUPE_WINDOW_S capped at the max age. */
  duplicateWindowSec: number;
}

export interface NatsSettings {
  /** Explicit servers from NATS_URL (comma list); empty when NATSAPPHOST is used. */
  servers: string[];
  /** NATSAPPHOST: DNS name resolved to every address at start. */
  appHost?: string;
  /** NATS_PORT used with NATSAPPHOST addresses, default 4222. */
  port: number;
  /** Subject prefix (CONFAB_NATS_PREFIX, default "confab"). */
  prefix: string;
  auth: NatsAuth;
  tls?: NatsTls;
  /** NATS_CONNECT_TIMEOUT_MS: give up the first connection after this long (default 10000). */
  connectTimeoutMs: number;
  /** NATS_REQUEST_TIMEOUT_MS: JetStream publish-ack and API timeout (default 5000). */
  requestTimeoutMs: number;
  stream: StreamSettings;
  /** Home regions and shards (src/nats/shards.ts); none and 1: the one stream. */
  shards: ShardSettings;
}

/** CONFAB_HOME_REGIONS, CONFAB_ROOM_HOMES, CONFAB_HOME_DEFAULT, CONFAB_STREAM_SHARDS, checked against each other. */
export function readShardSettings(env: Env): ShardSettings {
  const regions = readEnv(env, 'CONFAB_HOME_REGIONS');
  const explicit = readEnv(env, 'CONFAB_ROOM_HOMES');
  const def = readEnv(env, 'CONFAB_HOME_DEFAULT');
  const shards = readEnv(env, 'CONFAB_STREAM_SHARDS');
  if (regions.length === 0) {
    if (explicit !== undefined) throw new ConfigError('CONFAB_ROOM_HOMES', 'needs CONFAB_HOME_REGIONS');
    if (def !== undefined) throw new ConfigError('CONFAB_HOME_DEFAULT', 'needs CONFAB_HOME_REGIONS');
    return { regions, homes: [], shards };
  }
  const homes = explicit ?? regions.map((r) => ({ prefix: `${r}-`, region: r }));
  for (const h of homes) if (!regions.includes(h.region)) throw new ConfigError('CONFAB_ROOM_HOMES', `region ${JSON.stringify(h.region)} is not in CONFAB_HOME_REGIONS (${regions.join(',')})`);
  if (def !== undefined && !regions.includes(def)) throw new ConfigError('CONFAB_HOME_DEFAULT', `${JSON.stringify(def)} is not in CONFAB_HOME_REGIONS (${regions.join(',')})`);
  return { regions, homes, defaultRegion: def ?? regions[0], shards };
}


function readAuth(env: Env): NatsAuth {
  const user = readEnv(env, 'NATS_USER');
  const pass = readEnv(env, 'NATS_PASS');
  const token = readEnv(env, 'NATS_TOKEN');
  const credsFile = readEnv(env, 'NATS_CREDS');
  const nkeyFile = readEnv(env, 'NATS_NKEY');
  const set = [user !== undefined && 'NATS_USER', token && 'NATS_TOKEN', credsFile && 'NATS_CREDS', nkeyFile && 'NATS_NKEY'].filter(Boolean) as string[];
  if (set.length > 1) throw new ConfigError(set[1]!, `only one of NATS_USER/NATS_PASS, NATS_TOKEN, NATS_CREDS, NATS_NKEY may be set (got ${set.join(', ')})`);
  if (user !== undefined) {
    if (pass === undefined) throw new ConfigError('NATS_PASS', 'required with NATS_USER');
    return { kind: 'userpass', user, pass };
  }
  if (pass !== undefined) throw new ConfigError('NATS_USER', 'NATS_PASS is set without NATS_USER');
  if (token) return { kind: 'token', token };
  if (credsFile) {
    const creds = readFileSync(credsFile);
    if (!creds.toString().includes('NATS USER JWT')) throw new ConfigError('NATS_CREDS', `${credsFile} is not a NATS credentials file`);
    return { kind: 'creds', file: credsFile, creds: new Uint8Array(creds) };
  }
  if (nkeyFile) {
    const seed = readFileSync(nkeyFile).toString().trim();
    if (!/^SU[A-Z2-7]{50,}$/.test(seed)) throw new ConfigError('NATS_NKEY', `${nkeyFile} does not hold a user nkey seed (SU…)`);
    return { kind: 'nkey', file: nkeyFile, seed: new TextEncoder().encode(seed) };
  }
  return { kind: 'none' };
}

function readTls(env: Env): NatsTls | undefined {
  const caFile = readEnv(env, 'NATS_TLS_CA');
  const certFile = readEnv(env, 'NATS_TLS_CERT');
  const keyFile = readEnv(env, 'NATS_TLS_KEY');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError(certFile ? 'NATS_TLS_KEY' : 'NATS_TLS_CERT', 'NATS_TLS_CERT and NATS_TLS_KEY go together');
  if (!caFile && !certFile) return undefined;
  return { caFile, certFile, keyFile };
}

/** Read and validate every NATS setting. `config` supplies NATS_URL/NATSAPPHOST and the history limit. */
export function readNatsSettings(config: Pick<Config, 'natsUrl' | 'natsAppHost'> & RetentionConfig, env: Env = process.env): NatsSettings {
  const retention = retentionOf(config);
  // NATS_URL and NATSAPPHOST come through the config (loadConfig keeps them as set); parsed here
  const servers = config.natsUrl === undefined ? [] : parseEnvValue('NATS_URL', config.natsUrl);
  const appHost = config.natsAppHost;
  if (servers.length === 0 && !appHost) throw new ConfigError('NATS_URL', 'set NATS_URL (comma-separated) or NATSAPPHOST');
  if (appHost !== undefined) parseEnvValue('NATSAPPHOST', appHost);
  const prefix = readEnv(env, 'CONFAB_NATS_PREFIX');
  const name = readEnv(env, 'CONFAB_STREAM_NAME');
  const storage = readEnv(env, 'CONFAB_STREAM_STORAGE');
  const maxAgeSec = readEnv(env, 'CONFAB_STREAM_MAX_AGE_S') ?? Math.ceil(retention.maxAgeMs / 1000);
  const window = Math.max(1, Math.ceil(retention.dedupeWindowMs / 1000));
  // JetStream refuses a duplicate window longer than the max age
  const duplicateWindowSec = readEnv(env, 'CONFAB_STREAM_DUPLICATE_WINDOW_S') ?? (maxAgeSec > 0 ? Math.min(window, maxAgeSec) : window);
  if (maxAgeSec > 0 && duplicateWindowSec > maxAgeSec) throw new ConfigError('CONFAB_STREAM_DUPLICATE_WINDOW_S', `must not exceed CONFAB_STREAM_MAX_AGE_S (${maxAgeSec})`);
  const maxBytes = readEnv(env, 'CONFAB_STREAM_MAX_BYTES');
  return {
    servers,
    appHost: servers.length === 0 ? appHost : undefined,
    port: readEnv(env, 'NATS_PORT'),
    prefix,
    auth: readAuth(env),
    tls: readTls(env),
    connectTimeoutMs: readEnv(env, 'NATS_CONNECT_TIMEOUT_MS'),
    requestTimeoutMs: readEnv(env, 'NATS_REQUEST_TIMEOUT_MS'),
    stream: {
      name,
      replicas: readEnv(env, 'CONFAB_STREAM_REPLICAS'),
      maxAgeSec,
      maxBytes,
      storage,
      perRoom: config.historyLimit,
      duplicateWindowSec,
    },
    shards: readShardSettings(env),
  };
}
