/** `confab start`: one gateway configured from the environment, with graceful drain on SIGTERM/SIGINT. */
import { pino } from 'pino';
import { createAdapters } from '../adapters.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { startGateway } from '../gateway/index.js';
import { installProcessGuard } from '../gateway/process-guard.js';

export async function runStart(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`confab: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel }).child({ node: config.node, region: config.region });
  installProcessGuard(log);
  let adapters;
  try {
    adapters = await createAdapters(config, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`confab: ${err.message}`);
      process.exit(2);
    }
    console.error(`confab: cannot start the ${config.bus} bus/history: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  const { bus, history } = adapters;
  const gw = await startGateway({ config, bus, history, logger: log });
  console.log(`confab listening on ${gw.url} (node ${config.node}, region ${config.region}, bus ${bus.kind}, history ${history.kind})`);

  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down gracefully');
    const hard = setTimeout(() => {
      log.error('drain did not finish in time: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    hard.unref();
    gw.drain().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
