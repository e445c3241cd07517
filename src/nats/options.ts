/**
 * NATS settings read from the environment, validated up front. A bad value
 * throws ConfigError naming the variable. Every variable is listed in docs/nats.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, type Config, type Env, envStr as str, envInt as int } from '../config/config.js';


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
  /** CONFAB_STREAM_MAX_AGE_S, 0 = unlimited (default). */
  maxAgeSec: number;
  /** CONFAB_STREAM_MAX_BYTES, -1 = unlimited (default). */
  maxBytes: number;
  /** CONFAB_STREAM_STORAGE file|memory, default file. */
  storage: 'file' | 'memory';
  /** Per-room message cap (max_msgs_per_subject) = CONFAB_HISTORY_LIMIT. */
  perRoom: number;
  /** CONFAB_STREAM_DUPLICATE_WINDOW_S, default 120 (must not exceed max age). */
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
}

const TOKEN_RE = /^[A-Za-z0-9_-]{1,64}$/;


function file(env: Env, name: string): string | undefined {
  const f = str(env, name);
  if (f !== undefined && !existsSync(f)) throw new ConfigError(name, `file not found: ${f}`);
  return f;
}

/** Validate one NATS_URL entry: nats://, tls:// or bare host:port. */
function checkServer(u: string): string {
  const withScheme = /^[a-z]+:\/\//.test(u) ? u : `nats://${u}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ConfigError('NATS_URL', `not a URL: ${JSON.stringify(u)}`);
  }
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:') throw new ConfigError('NATS_URL', `scheme must be nats:// or tls://, got ${url.protocol}`);
  if (!url.hostname) throw new ConfigError('NATS_URL', `missing host in ${JSON.stringify(u)}`);
  return withScheme;
}

function readAuth(env: Env): NatsAuth {
  const user = str(env, 'NATS_USER');
  const pass = env.NATS_PASS;
  const token = str(env, 'NATS_TOKEN');
  const credsFile = file(env, 'NATS_CREDS');
  const nkeyFile = file(env, 'NATS_NKEY');
  const set = [user !== undefined && 'NATS_USER', token && 'NATS_TOKEN', credsFile && 'NATS_CREDS', nkeyFile && 'NATS_NKEY'].filter(Boolean) as string[];
  if (set.length > 1) throw new ConfigError(set[1]!, `only one of NATS_USER/NATS_PASS, NATS_TOKEN, NATS_CREDS, NATS_NKEY may be set (got ${set.join(', ')})`);
  if (user !== undefined) {
    if (pass === undefined || pass === '') throw new ConfigError('NATS_PASS', 'required with NATS_USER');
    return { kind: 'userpass', user, pass };
  }
  if (pass !== undefined && pass !== '') throw new ConfigError('NATS_USER', 'NATS_PASS is set without NATS_USER');
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
  const caFile = file(env, 'NATS_TLS_CA');
  const certFile = file(env, 'NATS_TLS_CERT');
  const keyFile = file(env, 'NATS_TLS_KEY');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError(certFile ? 'NATS_TLS_KEY' : 'NATS_TLS_CERT', 'NATS_TLS_CERT and NATS_TLS_KEY go together');
  if (!caFile && !certFile) return undefined;
  return { caFile, certFile, keyFile };
}

/** Read and validate every NATS setting. `config` supplies NATS_URL/NATSAPPHOST and the history limit. */
export function readNatsSettings(config: Pick<Config, 'natsUrl' | 'natsAppHost' | 'historyLimit'>, env: Env = process.env): NatsSettings {
  const servers = (config.natsUrl ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(checkServer);
  const appHost = config.natsAppHost;
  if (servers.length === 0 && !appHost) throw new ConfigError('NATS_URL', 'set NATS_URL (comma-separated) or NATSAPPHOST');
  if (appHost !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(appHost)) throw new ConfigError('NATSAPPHOST', `not a DNS name: ${JSON.stringify(appHost)}`);
  const prefix = str(env, 'CONFAB_NATS_PREFIX') ?? 'confab';
  if (!TOKEN_RE.test(prefix)) throw new ConfigError('CONFAB_NATS_PREFIX', 'must be 1-64 chars of [A-Za-z0-9_-]');
  const name = str(env, 'CONFAB_STREAM_NAME') ?? 'CONFAB';
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) throw new ConfigError('CONFAB_STREAM_NAME', 'must be 1-32 chars of [A-Za-z0-9_-]');
  const storage = str(env, 'CONFAB_STREAM_STORAGE') ?? 'file';
  if (storage !== 'file' && storage !== 'memory') throw new ConfigError('CONFAB_STREAM_STORAGE', `expected file or memory, got ${JSON.stringify(storage)}`);
  const maxAgeSec = int(env, 'CONFAB_STREAM_MAX_AGE_S', 0, 0, 100 * 365 * 24 * 3600);
  const duplicateWindowSec = int(env, 'CONFAB_STREAM_DUPLICATE_WINDOW_S', maxAgeSec > 0 ? Math.min(120, maxAgeSec) : 120, 1, 7 * 24 * 3600);
  if (maxAgeSec > 0 && duplicateWindowSec > maxAgeSec) throw new ConfigError('CONFAB_STREAM_DUPLICATE_WINDOW_S', `must not exceed CONFAB_STREAM_MAX_AGE_S (${maxAgeSec})`);
  const maxBytes = int(env, 'CONFAB_STREAM_MAX_BYTES', -1, -1, Number.MAX_SAFE_INTEGER);
  if (maxBytes === 0) throw new ConfigError('CONFAB_STREAM_MAX_BYTES', 'use -1 for unlimited, or a positive size');
  return {
    servers,
    appHost: servers.length === 0 ? appHost : undefined,
    port: int(env, 'NATS_PORT', 4222, 1, 65535),
    prefix,
    auth: readAuth(env),
    tls: readTls(env),
    connectTimeoutMs: int(env, 'NATS_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    requestTimeoutMs: int(env, 'NATS_REQUEST_TIMEOUT_MS', 5_000, 100, 600_000),
    stream: {
      name,
      replicas: int(env, 'CONFAB_STREAM_REPLICAS', 1, 1, 5),
      maxAgeSec,
      maxBytes,
      storage,
      perRoom: config.historyLimit,
      duplicateWindowSec,
    },
  };
}
