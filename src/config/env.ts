/**
 * Every environment variable confab reads, declared once: how it is parsed (a zod schema over
 * the trimmed value; blank counts as unset), its default, its bounds, a one-line meaning and the
 * doc table(s) that list it. The parsers (config.ts, nats/options.ts, redis/options.ts, the CLI)
 * read through `readEnv` / `envValue` / `parseEnvValue`, so a bad value fails with a ConfigError
 * naming the variable. `npm run docs:config` renders the tables of README.md, docs/nats.md and
 * docs/redis.md from this table (env-docs.ts); test/unit/config-docs.test.ts fails when they
 * differ, or when src/ reads a variable that is not declared here.
 *
 * The table is composed of env-gateway.ts (the gateway's own), env-adapters.ts (bus and history
 * adapters, `confab nats-config`) and the command line's below; env-kinds.ts has the kinds of
 * variable they are declared with. Declare a new variable in the file of its doc table.
 */
import { ADAPTER_ENV } from './env-adapters.js';
import { GATEWAY_ENV } from './env-gateway.js';
import { ConfigError, type Env, type EnvSpec, text } from './env-kinds.js';

export { ConfigError, type DocSection, type Env, type EnvDoc, type EnvSpec } from './env-kinds.js';

/** Every variable, in table order (each table lists its variables in this order; see EnvDoc.first and .after). */
export const ENV = {
  ...GATEWAY_ENV,
  ...ADAPTER_ENV,

  // ---- the command line (README "Configuration")
  NATS_SERVER_BIN: text({
    default: 'nats-server',
    values: 'command or path',
    readIn: ['src/procs/nats.ts'],
    docs: [{ section: 'cli', meaning: 'the nats-server binary `confab cluster up` starts and `confab nats-config --check` runs' }],
  }),
  HAPROXY_BIN: text({
    values: 'command or path',
    readIn: ['src/procs/haproxy.ts'],
    docs: [{ section: 'cli', default: '`/usr/sbin/haproxy` if it exists, else `haproxy`', meaning: 'the HAProxy binary `confab cluster up` starts' }],
  }),
  REDIS_SERVER_BIN: text({
    default: '/usr/bin/redis-server',
    values: 'command or path',
    readIn: ['src/procs/redis.ts'],
    docs: [{ section: 'cli', meaning: 'the redis-server binary the process launchers of src/procs start (`npm run chaos`, the tests)' }],
  }),
} satisfies Record<string, EnvSpec<never, undefined> | EnvSpec<any, any>>;

export type EnvName = keyof typeof ENV;
type SpecOf<K extends EnvName> = (typeof ENV)[K];
/** What readEnv returns for a variable: its parsed type, undefined when unset and without a static default. */
export type EnvValue<K extends EnvName> = SpecOf<K> extends EnvSpec<infer T, infer D> ? T | D : never;
/** A variable's parsed type. */
export type EnvType<K extends EnvName> = SpecOf<K> extends EnvSpec<infer T, infer _D> ? T : never;

export function isEnvName(name: string): name is EnvName {
  return Object.hasOwn(ENV, name);
}

/** A declared variable's value as set: trimmed (raw specs: as is), undefined when unset or blank. Not parsed. */
export function envValue(env: Env, name: EnvName): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  if ((ENV[name] as EnvSpec).raw) return v === '' ? undefined : v;
  return v.trim() === '' ? undefined : v.trim();
}

/** Parse `value` as variable `name` would be; throws ConfigError naming it. */
export function parseEnvValue<K extends EnvName>(name: K, value: string): EnvType<K> {
  const r = (ENV[name] as EnvSpec).schema.safeParse(value);
  if (!r.success) throw new ConfigError(name, r.error.issues[0]?.message ?? 'bad value');
  return r.data as EnvType<K>;
}

/** A declared variable, parsed, or its default when unset or blank; throws ConfigError naming it. */
export function readEnv<K extends EnvName>(env: Env, name: K): EnvValue<K> {
  const v = envValue(env, name);
  return (v === undefined ? ENV[name].default : parseEnvValue(name, v)) as EnvValue<K>;
}
