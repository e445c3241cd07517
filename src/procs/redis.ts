/**
 * Launcher of real `redis-server` processes on loopback ports, each with its own
 * temp dir. redis-server cannot take a port from the kernel (`--port 0` turns TCP
 * off), so it is given a port that was free a moment ago, and when its own log
 * says the bind failed (taken meanwhile) it is started again on another one
 * (bounded). `startRedis()` resolves once the server answers PING and INFO names
 * the PID of the process started here (so a different server that happens to hold
 * the port is never taken for it). The server can be stopped (SIGTERM = graceful,
 * saves if persistence is on; SIGKILL = crash), started again on the same port and
 * dir (retried, bounded, if the port is taken meanwhile), or restarted. Every
 * process started here is SIGKILLed when the test process exits, so a failing test
 * never leaves one behind; tests still call `close()` in `after()`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortTakenError, waitBeforeRebind, withPortRetry } from './ports.js';
import { bindFailed, ManagedProcess } from './process.js';

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export interface StartRedisOptions {
  /**
   * Append-only file: false (default: nothing persisted, like `--save ''`),
   * true or 'everysec' (appendonly yes, appendfsync everysec) or 'always' (appendfsync always).
   */
  appendonly?: boolean | 'everysec' | 'always';
  /** RDB snapshot rule, e.g. '3600 1' (default '' = no snapshots). */
  save?: string;
  /** Extra command-line arguments (e.g. ['--maxmemory', '10mb']). */
  args?: string[];
  /** Milliseconds to wait for PING (default 10000). */
  readyTimeoutMs?: number;
  /** Start on this port, once (a PortTakenError if its bind fails); default: a free one, another one if it was taken meanwhile. */
  port?: number;
}

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** PID of the running process, undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Graceful stop by PID (SIGTERM): redis saves/fsyncs what its persistence config says, then exits. */
  stop(): Promise<void>;
  /** Crash by PID (SIGKILL): nothing is flushed beyond what was already on disk. */
  kill(): Promise<void>;
  /** Start again on the same port and dir; resolves once PING answers. */
  start(): Promise<void>;
  /** Freeze the process (SIGSTOP): connections stay open but nothing answers (a hung server / half-open peer). */
  pause(): void;
  /** Continue a paused process (SIGCONT). */
  resume(): void;
  /** stop() (or kill() when `crash`) then start(). */
  restart(opts?: { crash?: boolean }): Promise<void>;
  /** Send one inline command (e.g. 'PING', 'INFO persistence') and return the raw reply text. */
  command(line: string): Promise<string>;
  /** Recent server log output (diagnostics). */
  recentLog(): string;
  /** SIGKILL and delete the temp dir. */
  close(): Promise<void>;
}

/** One inline command over a fresh TCP connection; resolves with the first complete reply (bounded by a timeout). */
export function redisCommand(port: number, line: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const done = (err: Error | null, v?: string) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(v!);
    };
    const timer = setTimeout(() => done(new Error(`redis ${line}: no reply within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on('connect', () => sock.write(`${line}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      if (buf[0] === '$') {
        const len = Number(buf.slice(1, nl));
        if (len < 0) return done(null, '');
        if (buf.length >= nl + 2 + len + 2) return done(null, buf.slice(nl + 2, nl + 2 + len));
        return;
      }
      if (buf[0] === '-') return done(new Error(buf.slice(1, nl)));
      done(null, buf.slice(1, nl));
    });
  });
}

/** Starts on this server's own port found taken meanwhile (its log says so) are tried again this many times. */
const RESTART_ATTEMPTS = 3;

class RedisProc implements RedisServer {
  private readonly proc: ManagedProcess;
  private started = false;

  constructor(readonly port: number, readonly dir: string, argv: string[], readyTimeoutMs: number) {
    this.proc = new ManagedProcess({
      command: REDIS_SERVER_BIN,
      args: argv,
      cwd: dir,
      ready: {
        check: () => this.answersAsItself(),
        timeoutMs: readyTimeoutMs,
        intervalMs: 20,
        what: `redis-server on port ${port}`,
      },
    });
  }

  /** The server on the port is this process (INFO's process_id) and answers PONG (PING answers -LOADING while an AOF/RDB loads). */
  private async answersAsItself(): Promise<boolean> {
    const info = await this.command('INFO server').catch(() => '');
    const pid = /process_id:(\d+)/.exec(info)?.[1];
    if (pid === undefined || Number(pid) !== this.proc.pid) return false;
    return (await this.command('PING').catch(() => '')) === 'PONG';
  }

  get url() { return `redis://127.0.0.1:${this.port}`; }
  get pid() { return this.proc.pid; }
  get running() { return this.proc.running; }

  async start(): Promise<void> {
    // the first start is retried by startRedis on another port; a restart must keep its port
    const attempts = this.started ? RESTART_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.proc.start();
        this.started = true;
        return;
      } catch (e) {
        const taken = !this.proc.running && bindFailed(this.proc.log);
        if (taken && attempt < attempts) {
          await waitBeforeRebind(attempt);
          continue;
        }
        const err = this.proc.withLog(e);
        throw taken ? new PortTakenError(this.port, err.message, { cause: e }) : err;
      }
    }
  }

  stop(): Promise<void> {
    this.resume();
    return this.proc.stop('SIGTERM');
  }

  pause(): void {
    this.proc.pause();
  }

  resume(): void {
    this.proc.resume();
  }

  kill(): Promise<void> {
    return this.proc.kill();
  }

  async restart(opts: { crash?: boolean } = {}): Promise<void> {
    await (opts.crash ? this.kill() : this.stop());
    await this.start();
  }

  command(line: string): Promise<string> {
    return redisCommand(this.port, line);
  }

  recentLog(): string {
    return this.proc.log;
  }

  async close(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Start one redis-server on a loopback port with a temp dir; resolves once it answers PING (another port if the first was taken). */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'confab-redis-'));
  try {
    const launch = async (port: number) => {
      const s = new RedisProc(port, dir, redisArgv(port, dir, opts), opts.readyTimeoutMs ?? 10_000);
      try {
        await s.start();
      } catch (e) {
        await s.kill();
        throw e;
      }
      return s;
    };
    return await (opts.port !== undefined ? launch(opts.port) : withPortRetry(launch));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function redisArgv(port: number, dir: string, opts: StartRedisOptions): string[] {
  const argv = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', opts.save ?? '',
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', '',
  ];
  if (opts.appendonly) argv.push('--appendonly', 'yes', '--appendfsync', opts.appendonly === true ? 'everysec' : opts.appendonly);
  else argv.push('--appendonly', 'no');
  argv.push(...(opts.args ?? []));
  return argv;
}
