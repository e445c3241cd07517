/**
 * `confab pubsub gc [--dry-run] [--window SECONDS] [--json FILE]`: find the `ID_<node>` subscriptions
 * of the topic (CONFAB_PUBSUB_TOPIC) whose gateway is gone (no presence heartbeat heard during the
 * window) and delete them (src/pubsub/gc.ts; docs/pubsub.md). Configured by the same environment as a
 * gateway on the Pub/Sub bus: GOOGLE_CLOUD_PROJECT, GOOGLE_APPLICATION_CREDENTIALS or
 * ./google-service-account.json, or PUBSUB_EMULATOR_HOST.
 */
import { writeFileSync } from 'node:fs';
import { ConfigError, type Env } from '../config/env.js';
import { pubsubClient } from '../pubsub/bus.js';
import { gcSubscriptions } from '../pubsub/gc.js';
import { readPubSubSettings } from '../pubsub/options.js';
import { parseCommandArgs } from './args.js';
import { UsageError } from './cluster-plan.js';

export const PUBSUB_USAGE = `usage: confab pubsub gc [--dry-run] [--window SECONDS] [--json FILE]

  Lists the ID_<node> subscriptions of the Pub/Sub topic (CONFAB_PUBSUB_TOPIC, default confab) whose
  gateway is gone — no presence heartbeat heard from it during the window — and deletes them.
  Gateways delete their own subscription when they drain; one that crashed leaves it behind.
  --dry-run          report, delete nothing
  --window SECONDS   how long to listen for heartbeats (default 10; gateways send one every 2 s)
  --json FILE        also write the result as JSON
  Settings: GOOGLE_CLOUD_PROJECT, GOOGLE_APPLICATION_CREDENTIALS (or ./google-service-account.json),
  or PUBSUB_EMULATOR_HOST (docs/pubsub.md). Exit 0 when every gone subscription was deleted (or dry run).
`;

export interface PubSubGcArgs {
  dryRun: boolean;
  windowMs: number;
  json?: string;
}

/** Parse `gc`'s flags (node:util parseArgs, strict); throws UsageError. */
export function parsePubSubArgs(argv: string[]): PubSubGcArgs {
  const [sub, ...rest] = argv;
  if (sub !== 'gc') throw new UsageError(sub === undefined ? 'missing subcommand (gc)' : `unknown subcommand ${JSON.stringify(sub)}`);
  const { values } = parseCommandArgs(
    {
      args: rest,
      strict: true,
      allowPositionals: false,
      options: { 'dry-run': { type: 'boolean' }, window: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    },
    { unknown: (_name, raw) => `unknown argument ${JSON.stringify(raw)}` },
  );
  const win = values.window === undefined ? 10 : Number(values.window);
  if (!Number.isFinite(win) || win < 1 || win > 600) throw new UsageError(`--window must be 1-600 seconds, got ${JSON.stringify(values.window)}`);
  return { dryRun: values['dry-run'] ?? false, windowMs: Math.round(win * 1000), ...(values.json ? { json: values.json } : {}) };
}

export async function runPubSubCli(argv: string[], env: Env = process.env): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    process.stdout.write(PUBSUB_USAGE); // help starts nothing
    return;
  }
  let args: PubSubGcArgs;
  let settings;
  try {
    args = parsePubSubArgs(argv);
    settings = readPubSubSettings({ node: 'gc' }, env);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`confab pubsub: ${e.message}\n${e instanceof UsageError ? PUBSUB_USAGE : ''}`);
      process.exit(2);
    }
    throw e;
  }
  const client = pubsubClient(settings);
  try {
    process.stderr.write(`pubsub gc: topic ${settings.topic} in ${settings.projectId}: listening ${args.windowMs / 1000} s for heartbeats…\n`);
    const r = await gcSubscriptions({ client, topic: settings.topic, windowMs: args.windowMs, dryRun: args.dryRun, timeoutMs: settings.timeoutMs });
    if (args.json) writeFileSync(args.json, JSON.stringify(r, null, 1));
    if (r.entries.length === 0) process.stdout.write(`no ID_* subscriptions on topic ${r.topic}\n`);
    for (const e of r.entries) {
      const what = e.state === 'heard' ? 'alive (heard), kept' : args.dryRun ? 'gone (not heard), would delete' : e.deleted ? 'gone (not heard), deleted' : `gone (not heard), NOT deleted: ${e.error ?? ''}`;
      process.stdout.write(`${e.subscription}\t${what}\n`);
    }
    if (r.entries.some((e) => e.state === 'gone' && !e.deleted && !args.dryRun)) process.exitCode = 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}
