/**
 * Redis settings read from the environment, validated up front. A bad value
 * throws ConfigError naming the variable. Every variable is declared in src/config/env.ts
 * (parse, default, bounds) and listed in docs/redis.md from there.
 */
import type { Config } from '../config/config.js';
import { ConfigError, type Env, parseEnvValue, readEnv } from '../config/env.js';
import { retentionOf, type RetentionConfig } from '../history/retention.js';
import type { Retention } from '../history/types.js';


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
  /** Count, age, bytes, dedupe window (CONFAB_HISTORY_*, CONFAB_DEDUPE_WINDOW_S or CONFAB_REDIS_DEDUPE_S). */
  retention: Retention;
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


/** Read and validate every Redis setting. `config` supplies REDIS_URL and the history limit. */
export function readRedisSettings(config: Pick<Config, 'redisUrl'> & RetentionConfig, env: Env = process.env): RedisSettings {
  // REDIS_URL comes through the config (loadConfig keeps it as set); parsed here, never echoing a password
  if (config.redisUrl === undefined) throw new ConfigError('REDIS_URL', 'required with the redis bus');
  const url = parseEnvValue('REDIS_URL', config.redisUrl);
  const prefix = readEnv(env, 'CONFAB_REDIS_PREFIX');
  const epochPolicy: EpochPolicy = readEnv(env, 'CONFAB_REDIS_EPOCH');
  if (!Number.isInteger(config.historyLimit) || config.historyLimit < 1) throw new ConfigError('CONFAB_HISTORY_LIMIT', 'must be a positive integer');
  return {
    url,
    prefix,
    historyLimit: config.historyLimit,
    retention: { ...retentionOf(config), ...redisWindow(readEnv(env, 'CONFAB_REDIS_DEDUPE_S')) },
    epochPolicy,
    waitReplicas: readEnv(env, 'CONFAB_REDIS_WAIT_REPLICAS'),
    waitTimeoutMs: readEnv(env, 'CONFAB_REDIS_WAIT_TIMEOUT_MS'),
    commandTimeoutMs: readEnv(env, 'CONFAB_REDIS_COMMAND_TIMEOUT_MS'),
    connectTimeoutMs: readEnv(env, 'CONFAB_REDIS_CONNECT_TIMEOUT_MS'),
    reconnectMaxMs: readEnv(env, 'CONFAB_REDIS_RECONNECT_MAX_MS'),
    pingMs: readEnv(env, 'CONFAB_REDIS_PING_MS'),
  };
}

/** CONFAB_REDIS_DEDUPE_S, when set, overrides CONFAB_DEDUPE_WINDOW_S for Redis. */
function redisWindow(sec: number | undefined): { dedupeWindowMs?: number } {
  return sec === undefined ? {} : { dedupeWindowMs: sec * 1000 };
}
