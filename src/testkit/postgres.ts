/**
 * Test kit: a real, throwaway PostgreSQL 15 server (Debian's `postgresql-15`) on loopback.
 *
 * - The binaries are found under /usr/lib/postgresql/<15|…>/bin (`PG_BIN_DIR` overrides).
 * - `initdb` makes a cluster in a temp dir (trust auth for the `postgres` user, UTF-8, no fsync
 *   during initdb); `postgres` then runs with fsync off (tests never survive a power loss, and
 *   `kill -9` of the server loses nothing that was committed: the WAL is in the OS page cache).
 * - PostgreSQL refuses to run as root: as root both run as the `postgres` system user through
 *   `setpriv` (which execs, so the PID the kit holds is the postmaster's own), and the temp dir
 *   is chowned to it first.
 * - PostgreSQL cannot take a port from the kernel (port 0 is refused), so it is given a port that
 *   was free a moment ago (`freePort`) and started again on another one when its own log says the
 *   bind failed (`withPortRetry`). The readiness probe checks that the server answering on the
 *   port reports this postmaster's PID (`pg_postmaster_start_time` is not enough: the PID is).
 * - The unix socket lives in the temp dir (`unix_socket_directories`), never in /var/run.
 * - The postmaster is spawned in its own process group: `kill()` SIGKILLs the group by the
 *   postmaster's PID (its backends with it, as a machine crash would), so a restart on the same
 *   data dir is not refused for a shared memory block still held by orphaned backends.
 *   `stop()` is a fast shutdown (SIGINT), then SIGKILL after a timeout. `close()` kills and
 *   removes the temp dir. One server per test file.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PortTakenError, withPortRetry } from '../procs/ports.js';
import { bindFailed, ManagedProcess } from '../procs/process.js';

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** A URL for another database on this server (created with `createDatabase`). */
  urlFor(database: string): string;
  /** CREATE DATABASE name (idempotent); resolves with its URL. */
  createDatabase(name: string): Promise<string>;
  /** Run one SQL statement as the superuser on `database` (default postgres); resolves with the rows. */
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Fast shutdown (SIGINT: abort transactions, checkpoint, exit), SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** SIGKILL the postmaster and its backends (the process group): a crash. */
  kill(): Promise<void>;
  /** Start again on the same port and data dir (crash recovery replays the WAL); resolves once it accepts connections. */
  start(): Promise<void>;
  /** Freeze / continue the postmaster and its backends (SIGSTOP / SIGCONT to the group). */
  pause(): void;
  resume(): void;
  recentLog(): string;
  /** Kill and remove the temp dir. */
  close(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  readyTimeoutMs?: number;
}

/** The directory holding initdb and postgres (PG_BIN_DIR, else the newest /usr/lib/postgresql/<v>/bin). */
export function postgresBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'initdb'))) return join(base, v, 'bin');
  throw new Error('PostgreSQL binaries not found: install postgresql (Debian: apt-get install postgresql) or set PG_BIN_DIR');
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** [command, args] running `bin` as the postgres user when we are root. */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  if (!isRoot()) return [bin, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', bin, ...args]];
}

function chownTree(dir: string): void {
  if (!isRoot()) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
}

class PgProc implements PostgresServer {
  private readonly proc: ManagedProcess;

  constructor(readonly port: number, readonly dir: string, bin: string, settings: Record<string, string>, readyTimeoutMs: number) {
    const data = join(dir, 'data');
    const conf: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: dir,
      fsync: 'off',
      full_page_writes: 'off',
      max_connections: '200',
      shared_buffers: '32MB',
      logging_collector: 'off',
      log_min_messages: 'warning',
      ...settings,
    };
    const args = ['-D', data, ...Object.entries(conf).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const [command, argv] = asPostgres(join(bin, 'postgres'), args);
    this.proc = new ManagedProcess({
      command,
      args: argv,
      cwd: dir,
      detached: true,
      killAfterMs: 10_000,
      ready: { check: () => this.answersAsItself(), timeoutMs: readyTimeoutMs, intervalMs: 50, what: `postgres on port ${port}` },
    });
  }

  get url() { return this.urlFor('postgres'); }
  get pid() { return this.proc.pid; }
  get running() { return this.proc.running; }

  urlFor(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  private async answersAsItself(): Promise<boolean> {
    try {
      const [row] = await this.query<{ pid: number }>("SELECT (pg_read_file('postmaster.pid', 0, 16))::text AS pid");
      return row !== undefined && Number(String(row.pid).split('\n')[0]) === this.proc.pid;
    } catch {
      return false;
    }
  }

  async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const c = new pg.Client({ connectionString: this.urlFor(database), connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
    const have = await this.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (have.length === 0) await this.query(`CREATE DATABASE ${name}`);
    return this.urlFor(name);
  }

  async start(attempts = 1): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.proc.start();
        return;
      } catch (e) {
        const log = this.proc.log;
        await this.kill();
        const taken = bindFailed(log);
        // after a crash the old backends may still hold the shared memory block for a moment
        const busy = /pre-existing shared memory block|lock file .* already exists/i.test(log);
        if ((taken || busy) && attempt < Math.max(attempts, busy ? 5 : 1)) {
          await new Promise((r) => setTimeout(r, 200 * attempt));
          continue;
        }
        const err = this.proc.withLog(e);
        throw taken ? new PortTakenError(this.port, err.message, { cause: e }) : err;
      }
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal); // the group whose leader is the postmaster we started
    } catch {
      // gone
    }
  }

  async stop(): Promise<void> {
    this.signalGroup('SIGCONT');
    await this.proc.stop('SIGINT');
  }

  async kill(): Promise<void> {
    this.signalGroup('SIGCONT');
    this.signalGroup('SIGKILL');
    await this.proc.kill();
  }

  pause(): void {
    this.signalGroup('SIGSTOP');
  }

  resume(): void {
    this.signalGroup('SIGCONT');
  }

  recentLog(): string {
    return this.proc.log;
  }

  async close(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** initdb a throwaway cluster in a temp dir and start it on a free loopback port (another one if that was taken). */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'confab-pg-'));
  try {
    chownTree(dir);
    const [cmd, args] = asPostgres(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    execFileSync(cmd, args, { stdio: 'pipe', cwd: dir });
    return await withPortRetry(async (port) => {
      const s = new PgProc(port, dir, bin, opts.settings ?? {}, opts.readyTimeoutMs ?? 20_000);
      await s.start();
      return s;
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
