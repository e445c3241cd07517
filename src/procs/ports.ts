/**
 * Ports from the kernel. A server a launcher here starts binds port 0 (or
 * nats-server's -1) itself and the launcher reads back the port it got (nats-server's
 * ports file, a gateway's "listening on" line). Picking a free port and binding it
 * later is a race: the kernel hands the same port out again (here about one 3-node
 * cluster start in 170 saw a port twice) and anything on the machine may take it
 * in between. Servers that cannot bind port 0 (redis-server, haproxy) get a port
 * from `freePort()` and are started again on another one when their own output
 * says the bind failed (`withPortRetry`), and their readiness probe checks that
 * the process answering is the one started.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Backoff, sleep } from '../shared/backoff.js';

/**
 * Before binding the same port again after a restart found it still taken: the n-th retry
 * (1-based) waits a jittered [250 ms, min(2 s, 250 ms·2^n)].
 */
const REBIND_BACKOFF = new Backoff({ minMs: 250, maxMs: 2000 });
export function waitBeforeRebind(attempt: number): Promise<void> {
  return sleep(REBIND_BACKOFF.delay(attempt - 1));
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). Only for a
 * port nothing will listen on (a dead address), or for a server that is retried on
 * another port when its bind fails (`withPortRetry`): never bind it later and hope.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A server could not bind its port: its own output says the address is in use. */
export class PortTakenError extends Error {
  constructor(readonly port: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortTakenError';
  }
}

/**
 * Start a server that needs a port number up front: `start(port)` with a port from
 * `freePort()`; when it throws a PortTakenError (that port was taken before the
 * server bound it, as its own output says), try again on another port, at most
 * `attempts` times in all. Any other failure is thrown at once.
 */
export async function withPortRetry<T>(start: (port: number) => Promise<T>, attempts = 5): Promise<T> {
  const taken: number[] = [];
  for (;;) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (e) {
      if (!(e instanceof PortTakenError)) throw e;
      taken.push(port);
      if (taken.length >= attempts) throw new Error(`gave up after ${attempts} starts: each port was taken before the server bound it (${taken.join(', ')})`, { cause: e });
    }
  }
}

/** The ports a nats-server bound, from the ports file it writes into `ports_file_dir`. */
export interface NatsPorts {
  client: number;
  monitor?: number;
  cluster?: number;
}

function portOf(url: string | undefined): number | undefined {
  if (!url) return undefined;
  const m = /:(\d+)\/?$/.exec(url);
  return m ? Number(m[1]) : undefined;
}

/**
 * Read `<exe>_<pid>.ports` from `dir` (nats-server writes it once every listener is
 * bound: `{"nats":["nats://127.0.0.1:P"],"monitoring":["http://…"],"cluster":["nats://…"]}`).
 * Undefined until the file exists and parses (it is not written atomically).
 */
export function readNatsPorts(dir: string, pid: number): NatsPorts | undefined {
  let name: string | undefined;
  try {
    name = readdirSync(dir).find((n) => n.endsWith(`_${pid}.ports`));
  } catch {
    return undefined;
  }
  if (!name) return undefined;
  let raw: { nats?: string[]; monitoring?: string[]; cluster?: string[] };
  try {
    raw = JSON.parse(readFileSync(join(dir, name), 'utf8')) as typeof raw;
  } catch {
    return undefined; // being written
  }
  const client = portOf(raw.nats?.[0]);
  if (client === undefined) return undefined;
  return { client, monitor: portOf(raw.monitoring?.[0]), cluster: portOf(raw.cluster?.[0]) };
}
