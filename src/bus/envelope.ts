/**
 * The one envelope every bus payload travels in (room message, typing notice, presence). A small
 * binary header that a reader (or a bus adapter that wants routing attributes) takes apart without
 * touching the body, then the body bytes:
 *
 *     byte 0      version (1)
 *     byte 1      kind: 1 room message, 2 typing, 3 presence, 4 per-user usage (ctl.usage, gateway/user-limits.ts)
 *     byte 2      origin length O (node id, UTF-8, 1..255 bytes)
 *     byte 3      room length R (0 for node-wide payloads such as presence)
 *     4 .. 4+O    origin node id
 *     .. +R       room name
 *     rest        body (UTF-8 JSON for every kind today)
 *
 * Version 0 is the text form used before the envelope (`<node>\n<m|t>\n<json>` on room subjects,
 * `<node>\n<json>` on `ctl.presence`): it is still read, so a rolling upgrade loses no messages from
 * nodes not yet upgraded. The text form never starts with a byte below 0x20, the binary one always does.
 */
export type EnvelopeKind = 'msg' | 'typing' | 'presence' | 'usage';

export interface EnvelopeHeader {
  /** 1 for the binary envelope, 0 for the legacy text form. */
  version: number;
  kind: EnvelopeKind;
  /** Node id of the publisher. */
  origin: string;
  /** Room the payload belongs to; '' for node-wide payloads. */
  room: string;
  /** Byte offset of the body in the payload. */
  bodyAt: number;
}

export const ENVELOPE_VERSION = 1;

const KIND_CODE: Readonly<Record<EnvelopeKind, number>> = { msg: 1, typing: 2, presence: 3, usage: 4 };
const CODE_KIND: readonly (EnvelopeKind | undefined)[] = [undefined, 'msg', 'typing', 'presence', 'usage'];
const LEGACY_KIND: Readonly<Record<string, EnvelopeKind>> = { m: 'msg', t: 'typing' };

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Build a payload: header, then `body` (a string is UTF-8 encoded). Throws on an origin or room too long for the header. */
export function sealEnvelope(h: { kind: EnvelopeKind; origin: string; room?: string }, body: string | Uint8Array): Uint8Array {
  const origin = enc.encode(h.origin);
  const room = enc.encode(h.room ?? '');
  if (origin.length === 0 || origin.length > 255) throw new RangeError(`envelope origin must be 1-255 bytes, got ${origin.length}`);
  if (room.length > 255) throw new RangeError(`envelope room must be at most 255 bytes, got ${room.length}`);
  const b = typeof body === 'string' ? enc.encode(body) : body;
  const out = new Uint8Array(4 + origin.length + room.length + b.length);
  out[0] = ENVELOPE_VERSION;
  out[1] = KIND_CODE[h.kind];
  out[2] = origin.length;
  out[3] = room.length;
  out.set(origin, 4);
  out.set(room, 4 + origin.length);
  out.set(b, 4 + origin.length + room.length);
  return out;
}

/**
 * The header of a payload, read without decoding the body; undefined for anything that is not an
 * envelope this node understands (a newer version, a truncated header, an unknown kind). `legacyRoom`
 * is the room of the subject a legacy text payload came on (its header does not carry it).
 */
export function peekEnvelope(data: Uint8Array, legacyRoom = ''): EnvelopeHeader | undefined {
  if (data.length < 4) return undefined;
  const v = data[0]!;
  if (v === ENVELOPE_VERSION) {
    const kind = CODE_KIND[data[1]!];
    const bodyAt = 4 + data[2]! + data[3]!;
    if (!kind || data[2] === 0 || bodyAt > data.length) return undefined;
    return { version: v, kind, origin: dec.decode(data.subarray(4, 4 + data[2]!)), room: dec.decode(data.subarray(4 + data[2]!, bodyAt)), bodyAt };
  }
  if (v < 0x20) return undefined; // a binary envelope of a version this node does not know
  return peekLegacy(data, legacyRoom);
}

/** `<node>\n<m|t>\n<json>` (room subjects) or `<node>\n<json>` (presence). */
function peekLegacy(data: Uint8Array, room: string): EnvelopeHeader | undefined {
  const a = data.indexOf(0x0a);
  if (a <= 0) return undefined;
  const origin = dec.decode(data.subarray(0, a));
  if (data[a + 1] === 0x7b /* { */) return { version: 0, kind: 'presence', origin, room: '', bodyAt: a + 1 };
  const b = data.indexOf(0x0a, a + 1);
  if (b < 0) return undefined;
  const kind = LEGACY_KIND[dec.decode(data.subarray(a + 1, b))];
  return kind ? { version: 0, kind, origin, room, bodyAt: b + 1 } : undefined;
}

/** Header and body text of a payload (undefined as for peekEnvelope). */
export function openEnvelope(data: Uint8Array, legacyRoom = ''): { header: EnvelopeHeader; body: string } | undefined {
  const header = peekEnvelope(data, legacyRoom);
  return header ? { header, body: dec.decode(data.subarray(header.bodyAt)) } : undefined;
}
