/**
 * Process-level guard against the one bug class that otherwise kills a gateway from
 * afar: a promise rejected with nobody listening. Lint (`no-floating-promises`) keeps
 * them out of the code; if one slips through anyway it is logged as a bug and counted
 * (`confab_unhandled_rejections_total`), and the node keeps serving. Under test
 * (`NODE_ENV=test`, set by `npm test`) or with `CONFAB_EXIT_ON_BUG=1` it exits with
 * code 70 instead, so a test can never pass over one. Uncaught exceptions still end the
 * process: its state can no longer be trusted.
 */
import type { Logger } from 'pino';

/** Counts since the process started (read by every gateway's /metrics). */
export const processFaults = { unhandledRejections: 0 };

export const EXIT_ON_BUG_CODE = 70;

let installed = false;

export function installProcessGuard(log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  installed = true;
  const exitOnBug = env.CONFAB_EXIT_ON_BUG === '1' || (env.NODE_ENV === 'test' && env.CONFAB_EXIT_ON_BUG !== '0');
  process.on('unhandledRejection', (reason) => {
    processFaults.unhandledRejections++;
    log.error({ err: reason }, 'BUG: unhandled promise rejection');
    if (exitOnBug) {
      log.flush?.();
      process.exit(EXIT_ON_BUG_CODE);
    }
  });
}
