/**
 * Helpers for the web client's browser tests: axe-core inside the page, screenshots of the
 * desktop (1280×800) and phone (390×844) layouts into test-output/web/, sessions and seeding
 * over HTTP, and the Long Tasks recorder of the flood test.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ROOT } from './support.js';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
export const SHOTS = join(ROOT, 'test-output', 'web');

const AXE_SOURCE = readFileSync(join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
  targets: string[];
}

/** Run axe-core (WCAG 2.x A/AA and best practices) on the page; returns every violation. */
export async function axe(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const a = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await a.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
}

/** axe-core's serious and critical violations (the ones the tests forbid). */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  return (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Every axe result of this run, by state, for the report (test-output/web/axe.json). */
export const axeLog: Record<string, AxeViolation[]> = {};

/**
 * Screenshot the page at the desktop and the phone size (test-output/web/<state>-desktop.png,
 * <state>-phone.png), run axe at each, and return the serious/critical violations found.
 */
export async function shootBoth(page: Page, state: string, before?: (size: 'desktop' | 'phone') => Promise<void>): Promise<AxeViolation[]> {
  mkdirSync(SHOTS, { recursive: true });
  await page.bringToFront();
  const found: AxeViolation[] = [];
  for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await page.setViewportSize(vp);
    await before?.(size);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    let t = Date.now();
    await page.screenshot({ path: join(SHOTS, `${state}-${size}.png`) });
    const shotMs = Date.now() - t;
    t = Date.now();
    const all = await axe(page);
    if (process.env.WEB_TIMING) console.log(`${state}-${size}: screenshot ${shotMs} ms, axe ${Date.now() - t} ms`);
    axeLog[`${state}-${size}`] = all;
    found.push(...all.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({ ...v, help: `${state}-${size}: ${v.help}` })));
  }
  await page.setViewportSize(DESKTOP);
  return found;
}

/** A session over HTTP (POST /api/session). */
export async function httpSession(base: string, handle: string): Promise<{ token: string; user: { id: string; handle: string } }> {
  const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle }) });
  if (!res.ok) throw new Error(`session ${handle}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { token: string; user: { id: string; handle: string } };
}

/** Publish `n` messages to a room through the publish API (CONFAB_API_KEY), in order; returns their offsets. */
export async function seed(base: string, apiKey: string, room: string, n: number, text: (i: number) => string, handle = (i: number) => `user${i % 7}`): Promise<number[]> {
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${base}/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ text: text(i), handle: handle(i) }),
    });
    if (res.status !== 201) throw new Error(`seed ${room} #${i}: ${res.status} ${await res.text()}`);
    offsets.push(((await res.json()) as { offset: number }).offset);
  }
  return offsets;
}

/** Start recording long tasks (PerformanceObserver 'longtask') and timer lateness; call before the page loads. */
export async function recordLongTasks(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { __long: { start: number; duration: number }[]; __timerMaxLate: number };
    w.__long = [];
    w.__timerMaxLate = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__long.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      w.__timerMaxLate = Math.max(w.__timerMaxLate, now - last - 50);
      last = now;
    }, 50);
  });
}

/** Long tasks and the worst timer lateness seen since `since` (performance.now() of the page). */
export async function longTasksSince(page: Page, since: number): Promise<{ count: number; longest: number; total: number; timerMaxLate: number }> {
  return page.evaluate((t) => {
    const w = window as unknown as { __long: { start: number; duration: number }[]; __timerMaxLate: number };
    const l = w.__long.filter((e) => e.start >= t);
    return { count: l.length, longest: Math.round(Math.max(0, ...l.map((e) => e.duration))), total: Math.round(l.reduce((s, e) => s + e.duration, 0)), timerMaxLate: Math.round(w.__timerMaxLate) };
  }, since);
}

export interface FloodResult {
  /** Frames sent (pub). */
  sent: number;
  /** Offsets acknowledged, in no particular order. */
  acked: number[];
  /** pub frames refused with an error frame (rate_limited, …). */
  refused: number;
  /** Users, sockets in all, and the rate each socket was paced at. */
  users: number;
  sockets: number;
  perSocketRate: number;
  ms: number;
}

/**
 * `users` users with `socketsPerUser` connections each flood `room` for `seconds`, as fast as the
 * server allows: each socket at 95 % of the per-connection rate (`welcome.limits.ratePerSec`) or of
 * its share of the per-user rate (CONFAB_USER_MSG_PER_SEC, by default 1.5 × the per-connection
 * rate), whichever is lower; then it waits until every frame is answered. The sockets join the
 * room (they must, to publish) and ignore what they receive except acks and errors.
 */
export async function flood(base: string, room: string, opts: { users: number; socketsPerUser: number; seconds: number; handle: string; userRate?: number }): Promise<FloodResult> {
  const { default: WebSocket } = await import('ws');
  const acked: number[] = [];
  let refused = 0;
  let sent = 0;
  let rate = 0;
  const socks: InstanceType<typeof WebSocket>[] = [];
  for (let u = 0; u < opts.users; u++) {
    const s = await httpSession(base, `${opts.handle}${u}`);
    const wsUrl = `${base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(s.token)}&echo=0`;
    for (let k = 0; k < opts.socketsPerUser; k++) {
      const ws = new WebSocket(wsUrl, ['confab.v1']);
      await new Promise<void>((resolve, reject) => {
        let welcomed = false;
        ws.on('message', (d: Buffer) => {
          const t = d.toString();
          if (!welcomed && t.includes('"t":"welcome"')) {
            welcomed = true;
            rate = (JSON.parse(t) as { limits: { ratePerSec: number } }).limits.ratePerSec;
            ws.send(JSON.stringify({ t: 'join', room }));
          } else if (t.startsWith('{"t":"joined"')) resolve();
          else if (t.startsWith('{"t":"ack"')) acked.push((JSON.parse(t) as { offset: number }).offset);
          else if (t.startsWith('{"t":"error"')) refused++;
        });
        ws.once('error', reject);
        ws.once('close', (code) => reject(new Error(`flood socket closed ${code}`)));
      });
      socks.push(ws);
    }
  }
  const userRate = opts.userRate ?? rate * 1.5;
  const perSocketRate = 0.95 * Math.min(rate, userRate / opts.socketsPerUser);
  const t0 = Date.now();
  await Promise.all(
    socks.map(
      (ws, k) =>
        new Promise<void>((resolve) => {
          let i = 0;
          const timer = setInterval(() => {
            if (Date.now() - t0 >= opts.seconds * 1000) {
              clearInterval(timer);
              resolve();
              return;
            }
            ws.send(JSON.stringify({ t: 'pub', id: `f${k}-${i}`, room, text: `flood ${k}-${i}` }));
            i++;
            sent++;
          }, 1000 / perSocketRate);
        }),
    ),
  );
  const deadline = Date.now() + 15_000;
  while (acked.length + refused < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const ms = Date.now() - t0;
  for (const ws of socks) ws.close();
  return { sent, acked, refused, users: opts.users, sockets: socks.length, perSocketRate, ms };
}
