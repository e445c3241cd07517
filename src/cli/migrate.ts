/**
 * `confab migrate`: create or migrate the PostgreSQL history schema (the gateway does the same at start
 * unless CONFAB_PG_MIGRATE=off). `--status` only reports. Settings from the environment
 * (DATABASE_URL, CONFAB_PG_SCHEMA) unless given as flags.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConfigError, parseEnvValue, readEnv } from '../config/env.js';
import { newEpoch } from '../history/common.js';
import { migrate, schemaVersion, SCHEMA_VERSION } from '../postgres/schema.js';

export const MIGRATE_USAGE = `usage: confab migrate [--database-url URL] [--schema NAME] [--status] [--json]

Creates or migrates confab's PostgreSQL history schema to version ${SCHEMA_VERSION} (the versions
applied are recorded in <schema>.schema_version; each runs once, under an advisory lock, in one
transaction). Gateways do this themselves at start unless CONFAB_PG_MIGRATE=off.

  --database-url URL  default: DATABASE_URL
  --schema NAME       default: CONFAB_PG_SCHEMA (confab)
  --status            only print the schema's version and the one this confab needs
  --json              print the result as JSON
  -h, --help          this help
`;

/** Run the command; `write` receives its standard output (tests pass their own). */
export async function runMigrateCli(argv: string[], env: NodeJS.ProcessEnv = process.env, write: (text: string) => void = (t) => void process.stdout.write(t)): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'database-url': { type: 'string' },
        schema: { type: 'string' },
        status: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`confab migrate: ${(e as Error).message}\n${MIGRATE_USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    write(MIGRATE_USAGE);
    return;
  }
  const raw = values['database-url'] ?? readEnv(env, 'DATABASE_URL');
  if (raw === undefined) throw new ConfigError('DATABASE_URL', 'set DATABASE_URL or pass --database-url');
  const url = parseEnvValue('DATABASE_URL', raw);
  const schema = values.schema !== undefined ? parseEnvValue('CONFAB_PG_SCHEMA', values.schema) : readEnv(env, 'CONFAB_PG_SCHEMA');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: readEnv(env, 'CONFAB_PG_CONNECT_TIMEOUT_MS') });
  client.on('error', () => undefined);
  await client.connect();
  try {
    let out: Record<string, unknown>;
    if (values.status) {
      const version = await schemaVersion(client, schema);
      out = { schema, version, needed: SCHEMA_VERSION, upToDate: version === SCHEMA_VERSION };
      if (!values.json) write(`schema ${schema}: version ${version}, this confab needs ${SCHEMA_VERSION}${version === SCHEMA_VERSION ? ' (up to date)' : ''}\n`);
    } else {
      const r = await migrate(client, schema, newEpoch);
      out = { schema, ...r };
      if (!values.json) write(r.from === r.to ? `schema ${schema}: up to date at version ${r.to} (epoch ${r.epoch})\n` : `schema ${schema}: migrated from version ${r.from} to ${r.to} (epoch ${r.epoch})\n`);
    }
    if (values.json) write(`${JSON.stringify(out)}\n`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
