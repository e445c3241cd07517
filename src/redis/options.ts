/**
 * Redis settings read from the environment, validated up front. A bad value
 * throws ConfigError naming the variable. Every variable is listed in docs/redis.md.
 */
import { ConfigError, type Config, type Env, envStr as str, envInt as int } from '../config/config.js';


/**
 * When the history epoch changes:
 * - `keep`: only when Redis lost everything (the epoch key is gone).
 * - `restart`: also whenever the Redis server restarted or failed over (its run_id changed),
 *   because a restart may have lost acknowledged writes and offsets would then be reused.
 * - `auto` (default): `keep` when the server reports `appendonly yes` + `appendfsync always`
 *   (nothing acknowledged is lost on a restart), otherwise `restart`.
 */
export type EpochPolicy = 'auto' | 'keep' | 'restart';

export interface RedisSettings {
  /** REDIS_URL: redis://[user:pass@]host:port[/db] or rediss:// for TLS. */
  url: string;
  /** CONFAB_REDIS_PREFIX (default "confab"): prefix of every key and channel. */
  prefix: string;
  /** Per-room message cap (exact XADD MAXLEN) = CONFAB_HISTORY_LIMIT. */
  historyLimit: number;
  /** CONFAB_REDIS_DEDUPE_S (default 3600): how long a (room, user, id) is remembered for dedupe. */
  dedupeSec: number;
  /** CONFAB_REDIS_EPOCH (default auto). */
  epochPolicy: EpochPolicy;
  /** CONFAB_REDIS_WAIT_REPLICAS (default 0): after each append, WAIT for this many replicas. */
  waitReplicas: number;
  /** CONFAB_REDIS_WAIT_TIMEOUT_MS (default 1000): WAIT timeout; fewer acks = store_failed. */
  waitTimeoutMs: number;
  /** CONFAB_REDIS_COMMAND_TIMEOUT_MS (default 5000): a command without reply fails after this long. */
  commandTimeoutMs: number;
  /** CONFAB_REDIS_CONNECT_TIMEOUT_MS (default 10000): the first connection must be ready within this. */
  connectTimeoutMs: number;
  /** CONFAB_REDIS_RECONNECT_MAX_MS (default 2000): cap of the reconnect backoff. */
  reconnectMaxMs: number;
  /** CONFAB_REDIS_PING_MS (default 5000): health PING on every connection; a PING without reply within commandTimeoutMs drops the connection. */
  pingMs: number;
}


/** Validate REDIS_URL without echoing a password back in the error. */
function checkUrl(raw: string | undefined): string {
  if (raw === undefined) throw new ConfigError('REDIS_URL', 'required with the redis bus');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('REDIS_URL', 'not a URL (expected redis://host:port)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('REDIS_URL', `scheme must be redis:// or rediss://, got ${url.protocol}`);
  if (!url.hostname) throw new ConfigError('REDIS_URL', 'missing host');
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) throw new ConfigError('REDIS_URL', `database must be a number, got ${JSON.stringify(db)}`);
  return raw;
}

/** Read and validate every Redis setting. `config` supplies REDIS_URL and the history limit. */
export function readRedisSettings(config: Pick<Config, 'redisUrl' | 'historyLimit'>, env: Env = process.env): RedisSettings {
  const url = checkUrl(config.redisUrl);
  const prefix = str(env, 'CONFAB_REDIS_PREFIX') ?? 'confab';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) throw new ConfigError('CONFAB_REDIS_PREFIX', 'must be 1-64 chars of [A-Za-z0-9_.-]');
  const epochPolicy = str(env, 'CONFAB_REDIS_EPOCH') ?? 'auto';
  if (epochPolicy !== 'auto' && epochPolicy !== 'keep' && epochPolicy !== 'restart') {
    throw new ConfigError('CONFAB_REDIS_EPOCH', `expected auto, keep or restart, got ${JSON.stringify(epochPolicy)}`);
  }
  if (!Number.isInteger(config.historyLimit) || config.historyLimit < 1) throw new ConfigError('CONFAB_HISTORY_LIMIT', 'must be a positive integer');
  return {
    url,
    prefix,
    historyLimit: config.historyLimit,
    dedupeSec: int(env, 'CONFAB_REDIS_DEDUPE_S', 3600, 1, 30 * 24 * 3600),
    epochPolicy,
    waitReplicas: int(env, 'CONFAB_REDIS_WAIT_REPLICAS', 0, 0, 16),
    waitTimeoutMs: int(env, 'CONFAB_REDIS_WAIT_TIMEOUT_MS', 1000, 1, 60_000),
    commandTimeoutMs: int(env, 'CONFAB_REDIS_COMMAND_TIMEOUT_MS', 5000, 10, 600_000),
    connectTimeoutMs: int(env, 'CONFAB_REDIS_CONNECT_TIMEOUT_MS', 10_000, 10, 600_000),
    reconnectMaxMs: int(env, 'CONFAB_REDIS_RECONNECT_MAX_MS', 2000, 10, 600_000),
    pingMs: int(env, 'CONFAB_REDIS_PING_MS', 5000, 50, 600_000),
  };
}
