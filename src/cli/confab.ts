#!/usr/bin/env node
/** The confab command line. `confab help` lists the commands. */
import { runStart } from './start.js';

const USAGE = `usage: confab <command>

commands:
  start          start a gateway (configured by environment variables; see README)
  cluster        local multi-region cluster on 127.0.0.1: up | down | roll | status (docs/cluster.md)
  nats-config    render a nats-server config from the environment [--out FILE] [--check]
  load           load generator against your gateways: clients, rooms, rate; loss/order/latency report (docs/load.md)
  conformance    check a running deployment against the wire protocol: conformance <url> [--peer URL] [--json FILE] (docs/conformance.md)
  migrate        create or migrate the PostgreSQL history schema [--database-url URL] [--schema S] [--status] (docs/postgres.md)
  pubsub         Google Cloud Pub/Sub bus upkeep: pubsub gc [--dry-run] deletes subscriptions of gateways that are gone (docs/pubsub.md)
  help           show this help
`;

const START_USAGE = `usage: confab start

Starts one gateway, configured by environment variables only (every variable is
listed in the README's Configuration table), e.g.:
  PORT=8080 CONFAB_DATA_DIR=./data confab start
  NATS_URL=nats://127.0.0.1:4222 CONFAB_SECRET=… confab start
SIGTERM or SIGINT drain it (readiness fails, clients are moved, then it exits).
`;

async function main(argv: string[]): Promise<void> {
  const [cmd = 'help', ...rest] = argv;
  switch (cmd) {
    case 'start':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(START_USAGE); // help starts nothing
        return;
      }
      if (rest.length > 0) {
        process.stderr.write(`confab start: unexpected argument ${JSON.stringify(rest[0])}\n${START_USAGE}`);
        process.exit(2);
      }
      return runStart();
    case 'cluster':
      return (await import('./cluster.js')).runCluster(rest);
    case 'nats-config':
      return (await import('./nats-config.js')).runNatsConfig(rest);
    case 'load':
      return (await import('./load.js')).runLoadCli(rest);
    case 'migrate':
      return (await import('./migrate.js')).runMigrateCli(rest);
    case 'conformance':
      return (await import('./conformance.js')).runConformanceCli(rest);
    case 'pubsub':
      return (await import('./pubsub.js')).runPubSubCli(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`confab: unknown command ${JSON.stringify(cmd)}\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error('confab:', err instanceof Error ? err.message : err);
  process.exit(1);
});
