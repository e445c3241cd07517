/**
 * `confab nats-config [--out FILE] [--check] [--no-resolve]`: render a
 * nats-server config from the environment (src/nats/config-gen.ts; variables in
 * docs/nats.md and docs/deploy.md), print it or write it atomically to FILE,
 * and with `--check` validate it with `nats-server -t -c FILE`. This is what
 * the NATS container's entrypoint runs before `exec nats-server`.
 *
 * Single-node fix (the seed's "a single node never turns healthy"): when the
 * routes would come from DNS (`FLY_APP_NAME` set, `NATS_ROUTES` unset), the
 * region's route name and every other gateway region's name are resolved first;
 * if they name no server but this one, the node is rendered standalone (no
 * cluster or gateway block), because nats-server never elects a JetStream meta
 * leader in a one-node cluster. Once other nodes exist, the next (re)start
 * renders the routes and gateways again.
 */
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type Env, envValue, readEnv } from '../config/env.js';
import { renderNatsConfig, writeNatsConfigAtomic } from '../nats/config-gen.js';
import { parseCommandArgs } from './args.js';
import { UsageError } from './cluster-plan.js';
export type Lookup = (host: string) => Promise<{ address: string }[]>;

export const NATS_CONFIG_USAGE = `usage: confab nats-config [--out FILE] [--check] [--no-resolve]

  Renders a nats-server config from the environment (NATS_STORE_DIR, NATS_MAX_FILE_STORE,
  NATS_MAX_MEM_STORE, NATS_APPEND_CONFIG (base64), NATS_ROUTES, NATS_GATEWAYS, FLY_REGION,
  FLY_APP_NAME, FLY_ALLOC_ID, NATS_SERVER_NAME, NATS_*_PORT, …; see docs/deploy.md).
  --out FILE     write it atomically to FILE instead of printing it
  --check        validate with \`nats-server -t -c FILE\` (exit 1 when invalid)
  --no-resolve   do not look up the route DNS name (no single-node standalone fallback)
`;

export interface NatsConfigArgs {
  out?: string;
  check: boolean;
  resolve: boolean;
}

/** Parse the flags (node:util parseArgs, strict); throws UsageError. */
export function parseNatsConfigArgs(argv: string[]): NatsConfigArgs {
  const needsFile = () => {
    throw new UsageError('--out needs a file');
  };
  const { values } = parseCommandArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { out: { type: 'string' }, check: { type: 'boolean' }, 'no-resolve': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    },
    { unknown: (_name, raw) => `unknown argument ${JSON.stringify(raw)}`, positional: (v) => `unknown argument ${JSON.stringify(v)}`, value: needsFile },
  );
  if (values.out === '') needsFile();
  return { ...(values.out !== undefined ? { out: values.out } : {}), check: values.check ?? false, resolve: !values['no-resolve'] };
}

function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(i.address.replace(/%.*$/, ''));
  return out;
}

/**
 * The environment to render with: unchanged, except that a node alone behind its
 * route DNS name (and without gateways) drops the DNS route so it runs standalone.
 * Returns the env and a note for stderr (undefined when nothing changed).
 */
export async function effectiveEnv(env: Env, lookupAll: Lookup = (h) => lookup(h, { all: true }), own: Set<string> = ownAddresses()): Promise<{ env: Env; note?: string }> {
  const app = envValue(env, 'FLY_APP_NAME');
  if (!app || envValue(env, 'NATS_ROUTES')) return { env };
  const region = envValue(env, 'FLY_REGION');
  const others = async (host: string) => {
    try {
      return (await lookupAll(host)).map((a) => a.address).filter((a) => !own.has(a));
    } catch {
      return []; // NXDOMAIN: nobody there yet
    }
  };
  const host = `${region ? region : 'global'}.${app}.internal`;
  if ((await others(host)).length > 0) return { env };
  // gateways to other regions: only region names (resolved through the app's DNS) can be checked here
  const gw = (envValue(env, 'NATS_GATEWAYS') ?? '').split(/[;,]/).map((x) => x.trim()).filter(Boolean);
  if (gw.some((g) => g.includes('='))) return { env };
  for (const r of gw) if (r !== region && (await others(`${r}.${app}.internal`)).length > 0) return { env };
  const { FLY_APP_NAME: _app, NATS_GATEWAYS: _gw, ...rest } = env;
  return {
    env: { NATS_LISTEN_HOST: '::', ...rest },
    note: `nats-config: no other NATS server found (${host}${gw.length ? `, gateways ${gw.join(',')}` : ''}): rendering a standalone server so JetStream needs no quorum; restart this node once peers exist to join them`,
  };
}

/** Run `nats-server -t -c FILE`; resolves with its output, rejects with the output when invalid. */
export function checkNatsConfig(file: string, bin = readEnv(process.env, 'NATS_SERVER_BIN')): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, ['-t', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d));
    c.stderr!.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    c.on('error', (e) => (clearTimeout(timer), reject(new Error(`cannot run ${bin}: ${e.message}`))));
    c.on('exit', (code) => (clearTimeout(timer), code === 0 ? resolve(out) : reject(new Error(`nats-server -t rejected the config (exit ${code}):\n${out.trim()}`))));
  });
}

export async function runNatsConfig(argv: string[], env: Env = process.env): Promise<void> {
  let args: NatsConfigArgs;
  let text: string;
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(NATS_CONFIG_USAGE);
    return;
  }
  try {
    args = parseNatsConfigArgs(argv);
    const eff = args.resolve ? await effectiveEnv(env) : { env };
    if (eff.note) process.stderr.write(eff.note + '\n');
    text = renderNatsConfig(eff.env);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`confab nats-config: ${e.message}\n${e instanceof UsageError ? NATS_CONFIG_USAGE : ''}`);
      process.exit(2);
    }
    throw e;
  }
  if (args.out) writeNatsConfigAtomic(args.out, text);
  else process.stdout.write(text);
  if (args.check) {
    // validate the written file, or a temp copy when printing
    const dir = args.out ? undefined : mkdtempSync(join(tmpdir(), 'confab-natscfg-'));
    const file = args.out ?? join(dir!, 'nats.conf');
    try {
      if (dir) writeNatsConfigAtomic(file, text);
      await checkNatsConfig(file);
      process.stderr.write(`nats-config: ${args.out ?? 'config'} is valid\n`);
    } catch (e) {
      process.stderr.write(`confab nats-config: ${(e as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
}
