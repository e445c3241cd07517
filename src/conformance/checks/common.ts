/**
 * What the conformance checks share: the Check type, the politeness bounds (the largest limit a
 * check will probe), and helpers for expected errors, JSON endpoints, sessions, sized frames and
 * the replay before a live message.
 */
import { Skip, type CheckContext } from '../context.js';
import { expect, request, show, type Endpoint, type FrameOf, type Probe } from '../probe.js';

export interface Check {
  id: string;
  name: string;
  /** Where the behaviour is documented. */
  section: string;
  /** Checks that must have passed first (otherwise this one is skipped). */
  requires?: string[];
  run(ctx: CheckContext): Promise<void>;
}

export const P = 'protocol.md';
export const LIMIT_KEYS = ['maxFrameBytes', 'maxTextChars', 'maxRooms', 'ratePerSec', 'rateBurst', 'floodCloseAfter', 'pingIntervalMs'] as const;
/** The largest limit a check will probe (frames built, rooms joined, pubs sent): beyond, it is skipped. */
export const MAX_PROBED_FRAME_BYTES = 8 * 1024 * 1024;
export const MAX_PROBED_ROOMS = 200;
export const MAX_BURST = 1000;

export type ErrorFrame = FrameOf<'error'>;

export function expectError(e: ErrorFrame, code: string, want: { id?: string; room?: string }, what: string): void {
  expect(e.code === code, `${what}: expected error ${code}, got ${show(e)}`);
  if (want.id !== undefined) expect(e.id === want.id, `${what}: the ${code} error should carry id ${JSON.stringify(want.id)}, got ${show(e)}`);
  if (want.room !== undefined) expect(e.room === want.room, `${what}: the ${code} error should carry room ${JSON.stringify(want.room)}, got ${show(e)}`);
}

/** Send a frame and expect the next error frame to be `code` carrying `want`. */
export async function sendExpectError(ctx: CheckContext, p: Probe, frame: object | string | Buffer, code: string, want: { id?: string; room?: string }, what: string, binary = false): Promise<void> {
  const from = p.frames.length;
  if (binary) await p.sendUnpaced(frame, { binary: true });
  else await p.send(frame);
  const e = await ctx.nextError(p, from, `error ${code} for ${what}`);
  expectError(e, code, want, what);
}

export async function jsonObject(ep: Endpoint, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const a = await request(ep.http(path));
  expect(/^application\/json\b/.test(a.contentType), `GET ${path}: content-type should be application/json, got ${JSON.stringify(a.contentType)}`);
  expect(a.json !== null && typeof a.json === 'object' && !Array.isArray(a.json), `GET ${path}: body should be a JSON object, got ${show(a.text)}`);
  return { status: a.status, body: a.json as Record<string, unknown> };
}

export async function postSession(ep: Endpoint, body: string, contentType = 'application/json'): Promise<{ status: number; code: unknown; text: string }> {
  const a = await request(ep.http('/api/session'), { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: a.status, code: (a.json as { code?: unknown } | undefined)?.code, text: a.text };
}

/** A pub frame of exactly `bytes` UTF-8 bytes (ASCII text), or undefined when it cannot be that small. */
export function pubOfBytes(id: string, room: string, bytes: number): string | undefined {
  const head = JSON.stringify({ t: 'pub', id, room, text: '' });
  const fill = bytes - Buffer.byteLength(head);
  if (fill < 1) return undefined;
  return JSON.stringify({ t: 'pub', id, room, text: 'x'.repeat(fill) });
}

/**
 * After a join, collect what the server replays: live messages start only after the replay (§5),
 * so `sentinel()` publishes one live message and everything between `joined` and it is the replay.
 */
export async function replayBefore(p: Probe, room: string, at: number, sentinel: () => Promise<string>): Promise<FrameOf<'msg'>[]> {
  const id = await sentinel();
  await p.find('msg', (m) => m.room === room && m.id === id, `the live message ${id} after the replay`, at);
  const all = p.msgs(room, at + 1);
  return all.slice(0, all.findIndex((m) => m.id === id));
}


export function needPeer(ctx: CheckContext): Endpoint {
  if (!ctx.peer) throw new Skip('needs a second gateway of the same deployment: --peer URL');
  return ctx.peer;
}
