/**
 * Test kit: the real Google Cloud Pub/Sub emulator (Debian's google-cloud-cli-pubsub-emulator, a
 * Java server; ~2 s to start) on a loopback port. The emulator cannot take a port from the kernel,
 * so it is given one that was free a moment ago and started on another when its log says the bind
 * failed. `startPubSubEmulator()` resolves once it answers HTTP on that port while the process
 * started here is alive. It keeps everything in memory: stopping it loses every topic and
 * subscription (what a restart looks like to a gateway). Stopped by PID (its start script execs
 * java, so the PID is the server's); every process started here is SIGKILLed when the test process
 * exits. `env()` gives what a gateway or client needs to use it and never reach off this machine:
 * PUBSUB_EMULATOR_HOST, a fake project, METADATA_SERVER_DETECTION=none.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { PortTakenError, withPortRetry } from '../procs/ports.js';
import { bindFailed, ManagedProcess } from '../procs/process.js';

const DEFAULT_BIN = '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';

/** The emulator's start script: PUBSUB_EMULATOR_BIN, else where Debian's package puts it. */
export function pubsubEmulatorBin(): string {
  return process.env.PUBSUB_EMULATOR_BIN ?? DEFAULT_BIN;
}

/** null when the emulator can be started here, else why not. */
export function pubsubEmulatorMissing(): string | null {
  const bin = pubsubEmulatorBin();
  return existsSync(bin) ? null : `Pub/Sub emulator not found at ${bin} (apt-get install google-cloud-cli-pubsub-emulator default-jre-headless, or set PUBSUB_EMULATOR_BIN)`;
}

export const EMULATOR_PROJECT = 'confab-test';

export interface PubSubEmulator {
  /** 127.0.0.1:PORT (the value of PUBSUB_EMULATOR_HOST). */
  readonly host: string;
  readonly port: number;
  readonly projectId: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** PUBSUB_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT and METADATA_SERVER_DETECTION=none. */
  env(): Record<string, string>;
  /** SIGTERM by PID (SIGKILL after 5 s); everything it held is gone. */
  stop(): Promise<void>;
  /** SIGKILL by PID. */
  kill(): Promise<void>;
  /** Start again on the same port (empty); resolves once it answers. */
  start(): Promise<void>;
  /** Freeze (SIGSTOP) / continue (SIGCONT): connections stay open, nothing answers. */
  pause(): void;
  resume(): void;
  recentLog(): string;
  close(): Promise<void>;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

class Emulator implements PubSubEmulator {
  private readonly proc: ManagedProcess;
  private started = false;
  readonly projectId = EMULATOR_PROJECT;

  constructor(readonly port: number, readyTimeoutMs: number) {
    this.proc = new ManagedProcess({
      command: pubsubEmulatorBin(),
      args: [`--host=127.0.0.1`, `--port=${port}`],
      killAfterMs: 5000,
      clearLogOnStart: true,
      ready: { check: () => answers(port), timeoutMs: readyTimeoutMs, intervalMs: 50, what: `Pub/Sub emulator on port ${port}` },
    });
  }

  get host() { return `127.0.0.1:${this.port}`; }
  get pid() { return this.proc.pid; }
  get running() { return this.proc.running; }

  env(): Record<string, string> {
    return { PUBSUB_EMULATOR_HOST: this.host, GOOGLE_CLOUD_PROJECT: this.projectId, METADATA_SERVER_DETECTION: 'none' };
  }

  async start(): Promise<void> {
    const attempts = this.started ? 3 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.proc.start();
        this.started = true;
        return;
      } catch (e) {
        const taken = !this.proc.running && bindFailed(this.proc.log);
        await this.proc.kill();
        if (taken && attempt < attempts) {
          await new Promise((r) => setTimeout(r, 250 * attempt));
          continue;
        }
        const err = this.proc.withLog(e);
        throw taken ? new PortTakenError(this.port, err.message, { cause: e }) : err;
      }
    }
  }

  stop(): Promise<void> {
    this.proc.resume();
    return this.proc.stop('SIGTERM');
  }

  kill(): Promise<void> {
    this.proc.resume();
    return this.proc.kill();
  }

  pause(): void {
    this.proc.pause();
  }

  resume(): void {
    this.proc.resume();
  }

  recentLog(): string {
    return this.proc.log;
  }

  close(): Promise<void> {
    return this.kill();
  }
}

/** Start the emulator on a free loopback port (another one if that was taken meanwhile). Also sets METADATA_SERVER_DETECTION=none in this process. */
export async function startPubSubEmulator(opts: { readyTimeoutMs?: number } = {}): Promise<PubSubEmulator> {
  const missing = pubsubEmulatorMissing();
  if (missing) throw new Error(missing);
  // the Google client must never look for a metadata server (an address off this machine)
  process.env.METADATA_SERVER_DETECTION = 'none';
  return withPortRetry(async (port) => {
    const e = new Emulator(port, opts.readyTimeoutMs ?? 30_000);
    await e.start();
    return e;
  });
}

