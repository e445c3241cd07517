/**
 * Appends accepted in the room's home region (docs/nats.md, "Home regions and shards").
 *
 * An append to a room homed in another region, made straight to its stream, costs
 * two WAN round trips on nats-server 2.9 (the publish, then the leader read that
 * confirms `prev`). Instead, a gateway forwards it as one NATS request to
 * `<prefix>.append.<home region>`, answered by any gateway of that region (queue
 * group), which appends to the local leader (both steps inside the region) and
 * replies with the stored message: one round trip. Nothing else changes: the same
 * stream, offsets, `prev`, idempotency key (a resend after a lost reply is the same
 * (room, user, id) and is answered with the original).
 *
 * - When no gateway of the home region answers (none runs there, or it is not
 *   reachable: no responders), or the request times out, the append falls back to
 *   the stream directly (the WAN path of before); a forwarded append that was
 *   stored although its reply was lost is then found by the stream's dedupe and
 *   answered as the same message (not as a duplicate).
 * - One sender's order (G9): forwarded appends of one room from one gateway go one
 *   after another (the next after the previous one's reply).
 * - A serving gateway checks every request's shape; anything else is answered with
 *   `bad_frame` and never reaches the history. The bus is confab's own (NATS
 *   credentials), so the sender fields are the forwarding gateway's, as on the bus.
 */
import { RequestError, TimeoutError, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type pino from 'pino';
import { ConfabError, ErrorCodes, type ErrorCode } from '../protocol/codes.js';
import type { AppendInput, AppendResult } from '../history/types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function appendSubject(prefix: string, region: string): string {
  return `${prefix}.append.${region}`;
}

type Reply = { ok: AppendResult } | { err: { code: string; message: string } };

function isInput(v: unknown): v is AppendInput {
  const x = v as AppendInput;
  const f = x?.from as AppendInput['from'] | undefined;
  return (
    typeof x === 'object' && x !== null &&
    typeof x.room === 'string' && x.room.length > 0 && x.room.length <= 256 &&
    typeof x.id === 'string' && x.id.length > 0 && x.id.length <= 128 &&
    (x.kind === 'msg' || x.kind === 'alert') &&
    typeof x.text === 'string' && x.text.length <= 64 * 1024 &&
    typeof x.ts === 'number' && Number.isFinite(x.ts) &&
    typeof f === 'object' && f !== null && typeof f.user === 'string' && typeof f.handle === 'string' && typeof f.node === 'string' && typeof f.region === 'string'
  );
}

/** Serve `<prefix>.append.<region>` for this region's rooms with `append` (the local streams). */
export function serveHomeAppends(nc: NatsConnection, prefix: string, region: string, append: (input: AppendInput) => Promise<AppendResult>, log: pino.Logger): Subscription {
  return nc.subscribe(appendSubject(prefix, region), {
    queue: 'confab-append',
    callback: (err, msg) => {
      if (err) {
        log.warn({ err }, 'home append subscription failed');
        return;
      }
      const answer = (r: Reply) => {
        try {
          msg.respond(enc.encode(JSON.stringify(r)));
        } catch (e) {
          log.warn({ err: e }, 'could not answer a forwarded append');
        }
      };
      let input: unknown;
      try {
        input = JSON.parse(dec.decode(msg.data));
      } catch {
        input = undefined;
      }
      if (!isInput(input)) {
        answer({ err: { code: 'bad_frame', message: 'malformed forwarded append' } });
        return;
      }
      append(input).then(
        (ok) => answer({ ok }),
        (e: unknown) => answer({ err: e instanceof ConfabError ? { code: e.code, message: e.message } : { code: 'store_failed', message: (e as Error).message } }),
      );
    },
  });
}

/**
 * Forward one append to the home region. Resolves with the stored message, rejects with the home's
 * ConfabError, or resolves undefined when nobody answered in time (the caller appends directly).
 */
export async function forwardAppend(nc: NatsConnection, prefix: string, region: string, input: AppendInput, timeoutMs: number): Promise<AppendResult | undefined> {
  let reply;
  try {
    reply = await nc.request(appendSubject(prefix, region), enc.encode(JSON.stringify(input)), { timeout: timeoutMs });
  } catch (e) {
    if (e instanceof RequestError || e instanceof TimeoutError) return undefined; // no responders, or no answer in time
    throw e;
  }
  const r = JSON.parse(dec.decode(reply.data)) as Reply;
  if ('ok' in r) return r.ok;
  const code = (r.err.code in ErrorCodes ? r.err.code : 'store_failed') as ErrorCode;
  throw new ConfabError(code, r.err.message);
}
