/**
 * PostgreSQL settings read from the environment, validated up front (a bad value throws a
 * ConfigError naming the variable). Every variable is declared in src/config/env.ts and listed
 * in docs/postgres.md from there.
 */
import type { Config } from '../config/config.js';
import { ConfigError, type Env, parseEnvValue, readEnv } from '../config/env.js';
import { retentionOf } from '../history/retention.js';
import type { Retention } from '../history/types.js';

export interface PostgresSettings {
  /** DATABASE_URL: postgres://user:pass@host:port/db (libpq URL; sslmode etc. as query parameters). */
  url: string;
  /** CONFAB_PG_SCHEMA (default confab): every table lives in it; gateways that share rooms use the same one. */
  schema: string;
  /** CONFAB_PG_POOL_MAX (default 10): connections per gateway. */
  poolMax: number;
  /** CONFAB_PG_CONNECT_TIMEOUT_MS (default 5000): a connection attempt fails after this. */
  connectTimeoutMs: number;
  /** CONFAB_PG_QUERY_TIMEOUT_MS (default 5000): a query without an answer fails after this (statement_timeout too). */
  queryTimeoutMs: number;
  /** CONFAB_PG_SYNCHRONOUS_COMMIT: the session's synchronous_commit; undefined = the server's setting. */
  synchronousCommit?: 'on' | 'off' | 'local' | 'remote_write' | 'remote_apply';
  /** CONFAB_PG_MIGRATE (default auto): `auto` migrates at start, `off` only checks the version (run `confab migrate`). */
  migrate: 'auto' | 'off';
  /** CONFAB_HISTORY_SWEEP_MS: how often retention runs. */
  sweepMs: number;
  retention: Retention;
}

type PgConfig = Pick<Config, 'databaseUrl' | 'historyLimit' | 'historyMaxAgeMs' | 'historyMaxBytes' | 'dedupeWindowMs' | 'historySweepMs'>;

export function readPostgresSettings(config: PgConfig, env: Env = process.env): PostgresSettings {
  if (config.databaseUrl === undefined) throw new ConfigError('DATABASE_URL', 'required with CONFAB_HISTORY=postgres');
  const url = parseEnvValue('DATABASE_URL', config.databaseUrl);
  return {
    url,
    schema: readEnv(env, 'CONFAB_PG_SCHEMA'),
    poolMax: readEnv(env, 'CONFAB_PG_POOL_MAX'),
    connectTimeoutMs: readEnv(env, 'CONFAB_PG_CONNECT_TIMEOUT_MS'),
    queryTimeoutMs: readEnv(env, 'CONFAB_PG_QUERY_TIMEOUT_MS'),
    synchronousCommit: readEnv(env, 'CONFAB_PG_SYNCHRONOUS_COMMIT'),
    migrate: readEnv(env, 'CONFAB_PG_MIGRATE'),
    sweepMs: config.historySweepMs,
    retention: retentionOf(config),
  };
}
