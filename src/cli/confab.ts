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
  help           show this help
`;

async function main(argv: string[]): Promise<void> {
  const [cmd = 'help', ...rest] = argv;
  switch (cmd) {
    case 'start':
      return runStart();
    case 'cluster':
      return (await import('./cluster.js')).runCluster(rest);
    case 'nats-config':
      return (await import('./nats-config.js')).runNatsConfig(rest);
    case 'load':
      return (await import('./load.js')).runLoadCli(rest);
    case 'conformance':
      return (await import('./conformance.js')).runConformanceCli(rest);
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
