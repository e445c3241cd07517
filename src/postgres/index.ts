/**
 * The PostgreSQL history (CONFAB_HISTORY=postgres with DATABASE_URL), usable behind every bus.
 * Settings beyond DATABASE_URL are read from the environment here (src/postgres/options.ts;
 * documented in docs/postgres.md).
 */
import type pino from 'pino';
import type { Config } from '../config/config.js';
import { PostgresHistory } from './history.js';
import { readPostgresSettings } from './options.js';

export { PostgresHistory } from './history.js';
export { readPostgresSettings, type PostgresSettings } from './options.js';
export { migrate, schemaVersion, SCHEMA_VERSION } from './schema.js';

/**
 * Open the history: validates the settings (ConfigError naming the variable), connects, migrates
 * (CONFAB_PG_MIGRATE=auto). Rejects with ConfabError('bus_unavailable') when PostgreSQL cannot be reached.
 */
export async function createPostgresHistory(config: Config, logger: pino.Logger, extras: { env?: Record<string, string | undefined> } = {}): Promise<PostgresHistory> {
  const settings = readPostgresSettings(config, extras.env ?? process.env);
  return PostgresHistory.open(settings, logger.child({ component: 'postgres', node: config.node }));
}
