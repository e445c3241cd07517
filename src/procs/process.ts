/**
 * Supervision of one child process (nats-server, redis-server, haproxy, a
 * gateway). `ManagedProcess` spawns it (optionally in its own process group,
 * with its own environment), keeps its output (the tail in memory, or appended
 * to a log file), notices when it exits (with code or signal; an early exit
 * fails a readiness wait at once), waits for a readiness probe, and stops it by
 * PID: the given signal, then SIGKILL after a timeout, resolving once it has
 * exited. It can be started again with the same command. Every process started
 * here is SIGKILLed when the parent process exits (one registry for all
 * launchers); unless `reapOnSignal: false`, also when the parent is ended by
 * SIGTERM or SIGINT (the test runner ends a file that overran its timeout with
 * SIGTERM, which skips 'exit' handlers), so a failing test never leaves one
 * behind. `confab cluster` turns that off: it stops its parts in order itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { waitFor } from './wait.js';

/** Live children -> whether a SIGTERM/SIGINT of this process kills them at once. */
const live = new Map<ChildProcess, boolean>();
let exitHookInstalled = false;

function killAll(onlyReaped: boolean): void {
  for (const [c, reap] of live) {
    if (onlyReaped && !reap) continue;
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kill every reaped child, then let the signal do what it would have done (unless someone else handles it). */
function onSignal(signal: NodeJS.Signals): void {
  killAll(true);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function track(child: ChildProcess, reapOnSignal: boolean): void {
  live.set(child, reapOnSignal);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => killAll(false));
  // SIGTERM/SIGINT end the process without 'exit': without these the children would be orphaned
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, onSignal);
}

/** The last `chars` characters of a file ('' when it cannot be read). */
function tailOf(file: string, chars: number): string {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

/** True when a server's output says it could not bind its port (nats-server, redis-server, haproxy, node). */
export function bindFailed(log: string): boolean {
  return /address already in use|EADDRINUSE|cannot bind socket/i.test(log);
}

/** A process exited (or was not running) while something was waited for; `log` is its output (see `bindFailed`). */
export class ProcessExitedError extends Error {
  constructor(message: string, readonly log: string) {
    super(message);
    this.name = 'ProcessExitedError';
  }
}

/** How to tell that a started process is ready. */
export interface ReadyProbe {
  /** Resolves true once the process serves (errors should be caught and reported as false). */
  check: () => Promise<boolean>;
  timeoutMs: number;
  intervalMs: number;
  /** What is waited for (in the timeout message). */
  what: string;
  /** The error thrown when the process exits before it is ready (gets its output; default a ProcessExitedError). */
  exitedError?: (log: string) => Error;
}

export interface ManagedProcessOptions {
  command: string;
  args: string[];
  cwd?: string;
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file instead of keeping them in memory (`log` then reads the file's tail). */
  logFile?: string;
  /** SIGKILL the child when this process gets SIGTERM/SIGINT (default true); it is SIGKILLed at exit either way. */
  reapOnSignal?: boolean;
  /** Spawn in its own process group (a terminal's Ctrl-C does not reach it); it is still signalled by its own PID. */
  detached?: boolean;
  /** Characters of output kept (default 8000). */
  logLimit?: number;
  /** Forget the previous run's output on each start (default false: the tail spans restarts). */
  clearLogOnStart?: boolean;
  /** Milliseconds after the stop signal before SIGKILL (default 10000). */
  killAfterMs?: number;
  /** Probe `start()` waits for (unless `wait: false`). */
  ready?: ReadyProbe;
}

/** One supervised child process (restartable). */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private output = '';
  private exit: Promise<void> = Promise.resolve();
  private started: Promise<void> = Promise.resolve();
  private lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Per run: resolves once its stdout and stderr are closed (all its output is in the log). */
  private readonly drained = new WeakMap<ChildProcess, Promise<void>>();

  constructor(private readonly opts: ManagedProcessOptions) {}

  /** PID of the running process, undefined while stopped. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves when the current (or last) run has exited; already resolved before the first start. */
  get exited(): Promise<void> {
    return this.exit;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** The running child (for its exit events), undefined while stopped. */
  get childProcess(): ChildProcess | undefined {
    return this.child;
  }

  /** Exit code of the last run (null when a signal ended it, undefined while running or before the first run). */
  get exitCode(): number | null | undefined {
    return this.lastExit?.code;
  }

  /** The signal that ended the last run, else null (undefined while running or before the first run). */
  get exitSignal(): NodeJS.Signals | null | undefined {
    return this.lastExit?.signal;
  }

  /** Resolves once the current run's process has been created by the OS; rejects when it could not be (e.g. no such command). */
  get spawned(): Promise<void> {
    return this.started;
  }

  /** Recent output (stdout and stderr interleaved; from the log file when there is one). */
  get log(): string {
    return this.opts.logFile ? tailOf(this.opts.logFile, this.opts.logLimit ?? 8000) + this.output : this.output;
  }

  private keep(text: string): void {
    this.output = (this.output + text).slice(-(this.opts.logLimit ?? 8000));
  }

  /** Spawn unless running, then (unless `wait: false`) wait for the readiness probe; rejects if the process exits first or the probe times out. */
  async start(opts: { wait?: boolean } = {}): Promise<void> {
    if (this.child) return;
    this.spawn();
    if (opts.wait === false || !this.opts.ready) return;
    await this.ready();
  }

  /** Spawn the process now (synchronously; `pid` is set on return unless the OS refused, see `spawned`). No-op while running. */
  spawn(): void {
    if (this.child) return;
    if (this.opts.clearLogOnStart) this.output = '';
    const file = this.opts.logFile;
    const fd = file ? openSync(file, 'a') : undefined;
    let child: ChildProcess;
    try {
      child = spawn(this.opts.command, this.opts.args, {
        stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
        cwd: this.opts.cwd,
        env: this.opts.env,
        detached: this.opts.detached ?? false,
      });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (fd === undefined) {
      const keep = (d: Buffer) => this.keep(d.toString());
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
    }
    track(child, this.opts.reapOnSignal ?? true);
    this.child = child;
    this.lastExit = undefined;
    this.drained.set(child, new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    }));
    this.started = new Promise((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => reject(new Error(`cannot start ${this.opts.command}: ${e.message}`, { cause: e })));
    });
    this.started.catch(() => undefined); // observed through `spawned` (or the exit it causes)
    this.exit = new Promise((resolve) => {
      const gone = () => {
        live.delete(child);
        if (this.child === child) this.child = undefined;
        resolve();
      };
      child.once('exit', (code, signal) => {
        this.lastExit = { code, signal };
        gone();
      });
      child.once('error', (e) => {
        this.lastExit = { code: -1, signal: null };
        this.keep(`\n${String(e)}`); // with a log file only this is kept in memory
        gone();
      });
    });
  }

  /** Wait for the readiness probe of the current run; rejects at once if the process exits (or is not running), or when the probe times out. */
  async ready(): Promise<void> {
    const probe = this.opts.ready;
    if (!probe) return;
    await this.until(probe.check, { timeoutMs: probe.timeoutMs, intervalMs: probe.intervalMs, what: probe.what }, probe.exitedError);
  }

  /**
   * Poll `cond` while the current run is alive: resolves once it holds, rejects at once when the
   * process exits (a ProcessExitedError unless `exitedError` is given) and when the timeout passes.
   */
  async until(
    cond: () => boolean | Promise<boolean>,
    opts: { timeoutMs: number; intervalMs?: number; what: string },
    exitedError?: (log: string) => Error,
  ): Promise<void> {
    const child = this.child;
    const exited = () => {
      if (exitedError) return exitedError(this.log);
      const how = child ? `exited (${child.signalCode ?? `code ${child.exitCode}`})` : 'is not running';
      return new ProcessExitedError(`${this.opts.command} ${how} while waiting for ${opts.what}`, this.log);
    };
    await waitFor(
      async () => {
        if (!child || this.child !== child) {
          // 'exit' may come before the last output (why it exited): wait for its pipes to close, bounded (a forked grandchild may hold them)
          if (child) await Promise.race([this.drained.get(child), new Promise((r) => setTimeout(r, 2000).unref())]);
          throw exited();
        }
        return cond();
      },
      { timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs ?? 25, what: opts.what },
    );
  }

  /** Send a signal by PID (e.g. SIGHUP for a config reload). No-op while stopped. */
  signal(signal: NodeJS.Signals): void {
    if (this.child?.pid) process.kill(this.child.pid, signal);
  }

  /** `e` with the recent output appended (for start failures). */
  withLog(e: unknown): Error {
    return new Error(`${(e as Error).message}\nlog:\n${this.log}`, { cause: e });
  }

  /** Signal by PID (SIGTERM by default), SIGKILL after `killAfterMs`; resolves when the process has exited. No-op while stopped. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      // already exited
    }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, this.opts.killAfterMs ?? 10_000);
    await this.exited;
    clearTimeout(t);
    // its last output (why it exited) is read once its pipes close; bounded (a forked grandchild may hold them)
    await Promise.race([this.drained.get(child), new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  /** SIGKILL by PID; resolves when the process has exited. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  /** Freeze the process (SIGSTOP). */
  pause(): void {
    if (this.child?.pid) process.kill(this.child.pid, 'SIGSTOP');
  }

  /** Continue a paused process (SIGCONT). */
  resume(): void {
    if (this.child?.pid) process.kill(this.child.pid, 'SIGCONT');
  }
}

/** A child process started by `spawnLogged` (one run of a ManagedProcess, for supervisors with their own restart policy). */
export interface Proc {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal, -1 when it could not run). */
  readonly exited: Promise<number | null>;
  hasExited(): boolean;
  /** The signal that ended it (after `exited`), else null. */
  exitSignal(): NodeJS.Signals | null;
}

/**
 * Start `cmd args` detached (own process group: a terminal's Ctrl-C reaches only the
 * supervisor), stdout+stderr appended to `logFile`; resolves once the OS started it,
 * rejects when it cannot be started. SIGKILLed if this process exits while it runs
 * (not on SIGTERM/SIGINT: the supervisor stops its children itself).
 */
export async function spawnLogged(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, cwd?: string): Promise<Proc> {
  const m = new ManagedProcess({ command: cmd, args, env, cwd, logFile, detached: true, reapOnSignal: false });
  m.spawn();
  const child = m.childProcess!;
  await m.spawned;
  let done = false;
  const exited = m.exited.then(() => {
    done = true;
    return m.exitCode ?? null;
  });
  return { pid: child.pid!, child, exited, hasExited: () => done, exitSignal: () => m.exitSignal ?? null };
}
