/**
 * Shared helpers for the browser end-to-end tests: a gateway child process
 * (node dist/cli/confab.js start) that can be killed and restarted on the same
 * port and data dir, and page helpers that drive the web UI by data-testid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { freePort } from '../../src/procs/ports.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'confab.js');

/** Build what the e2e tests need when it is missing (npm test builds first; this covers a lone run). */
export function ensureBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'web', 'index.html')) || !existsSync(join(ROOT, 'dist', 'web', 'app.js'))) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('scripts/build-web.mjs failed');
  }
  if (!existsSync(CLI)) {
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript-native', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0 || !existsSync(CLI)) throw new Error('tsc build failed: dist/cli/confab.js missing');
  }
}

export { freePort };

/** A gateway child process on a fixed port and data dir; kill() and start() again to simulate a crash/restart. */
export class GatewayProcess {
  readonly port: number;
  readonly dataDir: string;
  readonly node: string;
  readonly region: string;
  readonly env: Record<string, string>;
  #child: ChildProcess | undefined;
  #log: string[] = [];

  private constructor(port: number, dataDir: string, env: Record<string, string>) {
    this.port = port;
    this.dataDir = dataDir;
    this.node = env.CONFAB_NODE_ID ?? 'e2e-node';
    this.region = env.CONFAB_REGION ?? 'e2e';
    this.env = env;
  }

  static async create(env: Record<string, string> = {}): Promise<GatewayProcess> {
    ensureBuilt();
    const dataDir = mkdtempSync(join(tmpdir(), 'confab-e2e-'));
    return new GatewayProcess(await freePort(), dataDir, { CONFAB_NODE_ID: 'e2e-node', CONFAB_REGION: 'e2e', ...env });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }
  /** Output of every run so far (for failure messages). */
  get log(): string {
    return this.#log.join('');
  }

  /** Start and resolve once it prints "confab listening on". Rejects on exit or after timeoutMs. */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.running) throw new Error('gateway already running');
    const child = spawn(process.execPath, [CLI, 'start'], {
      cwd: ROOT,
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(this.port),
        CONFAB_DATA_DIR: this.dataDir,
        LOG_LEVEL: 'warn',
        CONFAB_BUS: 'memory',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    const reap = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    process.once('exit', reap); // never leave a gateway behind, even if the test process ends abruptly
    child.once('exit', () => process.off('exit', reap));
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => done(new Error(`gateway did not start within ${timeoutMs} ms:\n${this.log}`)), timeoutMs);
      const onData = (d: Buffer): void => {
        const s = d.toString();
        this.#log.push(s);
        buf += s;
        if (/confab listening on/.test(buf)) done();
      };
      const onExit = (code: number | null, sig: string | null): void => done(new Error(`gateway exited (${code ?? sig}) before listening:\n${this.log}`));
      const done = (err?: Error): void => {
        clearTimeout(timer);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (d: Buffer) => this.#log.push(d.toString()));
      child.on('exit', onExit);
    });
  }

  /** Kill the process (SIGKILL by default: a crash) and wait for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Send a signal without waiting (e.g. SIGSTOP/SIGCONT to freeze the process: a half-open connection). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.#child!.kill(sig);
  }

  /** Empty the data dir (the gateway must be stopped): its history starts over in a new epoch. */
  wipe(): void {
    if (this.running) throw new Error('stop the gateway before wiping its data');
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true });
  }

  /** Kill if running and remove the data dir. */
  async dispose(): Promise<void> {
    this.signal('SIGCONT');
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export const T = { short: 10_000, long: 45_000 };

/** Open the UI, pick a handle and wait until the status bar says connected and the lobby is shown. */
export async function signIn(page: Page, url: string, handle: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId('handle-input').fill(handle);
  await page.getByTestId('handle-submit').click();
  await waitConnected(page);
  await page.getByTestId('room-title').filter({ hasText: 'lobby' }).waitFor({ timeout: T.short });
}

export async function waitConnected(page: Page, timeout = T.short): Promise<void> {
  await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.getAttribute('data-state') === 'connected', undefined, { timeout });
}

/** Type a message in the composer and press Send. */
export async function say(page: Page, text: string): Promise<void> {
  await page.getByTestId('message-input').fill(text);
  await page.getByTestId('message-send').click();
}

/** The texts of the rendered messages, in page order. */
export async function messageTexts(page: Page): Promise<string[]> {
  return page.$$eval('[data-testid="messages"] [data-testid="message"] [data-testid="message-text"]', (els) => els.map((e) => e.textContent ?? ''));
}

/** [offset, text] of the rendered messages, in page order. */
export async function messageRows(page: Page): Promise<[number, string][]> {
  return page.$$eval('[data-testid="messages"] [data-testid="message"]', (els) =>
    els.map((e) => [Number(e.getAttribute('data-offset')), e.querySelector('[data-testid="message-text"]')?.textContent ?? ''] as [number, string]),
  );
}

/** Wait until a message with exactly this text is rendered. */
export async function waitForMessage(page: Page, text: string, timeout = T.short): Promise<void> {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid="messages"] [data-testid="message-text"]')].some((e) => e.textContent === t),
    text,
    { timeout },
  );
}

/** Record every value the status bar's data-state takes from now on, in window.__states. */
export async function recordStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __states: string[] };
    const el = document.querySelector('[data-testid="status"]')!;
    w.__states = [el.getAttribute('data-state') ?? ''];
    new MutationObserver(() => {
      const s = el.getAttribute('data-state') ?? '';
      if (w.__states[w.__states.length - 1] !== s) w.__states.push(s);
    }).observe(el, { attributes: true, attributeFilter: ['data-state'] });
  });
}

export async function statesSeen(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __states?: string[] }).__states ?? []);
}
