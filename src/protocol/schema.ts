/**
 * Machine-readable protocol: zod schemas for the server → client frames (the client → server
 * ones are `ClientFrame` in frames.ts), and the JSON Schema document generated from both,
 * committed as docs/protocol.schema.json (`npm run schema` writes it; a unit test fails when it
 * is out of date).
 *
 * The schemas say exactly what docs/protocol.md says a frame is: every field, no other field,
 * room names, message ids and handles by their patterns, offsets and limits as integers, error
 * codes from the one table (codes.ts). The TypeScript type `ServerFrame` in frames.ts stays the
 * source the server is written against; the compile-time checks at the end of this file fail
 * the build when the two drift apart (a frame type or field added, removed or made optional on
 * one side only).
 */
import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from './codes.js';
import { ALERTS_ROOM, ClientFrame, HANDLE_RE, ID_RE, PROTOCOL_VERSION, ROOM_RE, SUBPROTOCOL, type ServerFrame } from './frames.js';

/** A room a frame can name: a joinable room name or `_alerts`. */
export const ROOM_OR_ALERTS_RE = new RegExp(`^(?:${ROOM_RE.source.replace(/^\^|\$$/g, '')}|${ALERTS_ROOM})$`);

const ERROR_CODES = Object.keys(ErrorCodes) as [ErrorCode, ...ErrorCode[]];

const roomName = z.string().regex(ROOM_OR_ALERTS_RE);
const messageId = z.string().regex(ID_RE);
/** A client sends an epoch back in `join.since`, whose schema allows at most 64 characters. */
const epoch = z.string().min(1).max(64);
const offset = z.number().int().min(0);
const count = z.number().int().min(0);
const positiveInt = z.number().int().min(1);

export const MemberSchema = z.strictObject({ id: z.string().min(1), handle: z.string().regex(HANDLE_RE) });
export const SenderSchema = z.strictObject({
  user: z.string().min(1),
  handle: z.string().regex(HANDLE_RE),
  node: z.string().min(1),
  region: z.string().min(1),
  kind: z.literal('api').optional(),
});
export const PermsSchema = z.strictObject({ alert: z.boolean() });
const unixSeconds = z.number().int().min(0);
export const ErrorCodeSchema = z.enum(ERROR_CODES);

export const LimitsSchema = z.strictObject({
  maxFrameBytes: positiveInt,
  maxTextChars: positiveInt,
  maxRooms: positiveInt,
  ratePerSec: positiveInt,
  rateBurst: positiveInt,
  floodCloseAfter: positiveInt,
  pingIntervalMs: positiveInt,
});

export const MsgFrameSchema = z.strictObject({
  t: z.literal('msg'),
  room: roomName,
  offset,
  prev: offset,
  epoch,
  id: messageId,
  kind: z.enum(['msg', 'alert']),
  text: z.string().min(1),
  from: SenderSchema,
  ts: z.number().int().min(0),
});

/** One schema per server frame type, keyed by `t`. */
export const ServerFrames = {
  welcome: z.strictObject({
    t: z.literal('welcome'),
    v: z.number().int(),
    node: z.string().min(1),
    region: z.string().min(1),
    version: z.string(),
    user: MemberSchema,
    rooms: z.array(z.string().regex(ROOM_RE)),
    perms: PermsSchema,
    exp: unixSeconds,
    limits: LimitsSchema,
  }),
  joined: z.strictObject({
    t: z.literal('joined'),
    room: roomName,
    epoch,
    last: offset,
    recovered: z.boolean(),
    gap: z.strictObject({ from: offset, to: offset }).optional(),
    missed: z.strictObject({ from: offset, to: offset }).optional(),
    reset: z.boolean().optional(),
    members: z.array(MemberSchema),
    count,
  }),
  msg: MsgFrameSchema,
  ack: z.strictObject({ t: z.literal('ack'), id: messageId, room: roomName, offset, prev: offset, epoch, ts: z.number().int().min(0), dup: z.boolean() }),
  error: z.strictObject({
    t: z.literal('error'),
    code: ErrorCodeSchema,
    message: z.string(),
    /** The code's retry class from the table: never / later / reconnect. */
    retry: z.enum(['never', 'later', 'reconnect']),
    // echoed as the client sent them, also when they are what was wrong (bad_room, unknown_type)
    id: z.string().max(64).optional(),
    room: z.string().optional(),
  }),
  presence: z.strictObject({ t: z.literal('presence'), room: roomName, event: z.enum(['join', 'leave']), user: MemberSchema }),
  typing: z.strictObject({ t: z.literal('typing'), room: roomName, user: MemberSchema }),
  left: z.strictObject({ t: z.literal('left'), room: roomName }),
  pong: z.strictObject({ t: z.literal('pong') }),
  status: z.strictObject({ t: z.literal('status'), bus: z.enum(['up', 'down']) }),
  rooms: z.strictObject({ t: z.literal('rooms'), rooms: z.array(z.strictObject({ name: roomName, members: count })) }),
  history: z.strictObject({ t: z.literal('history'), room: roomName, before: offset, msgs: z.array(MsgFrameSchema), more: z.boolean() }),
  refresh: z.strictObject({ t: z.literal('refresh'), exp: unixSeconds }),
  authed: z.strictObject({ t: z.literal('authed'), exp: unixSeconds, perms: PermsSchema }),
} as const;

export const ServerFrameSchema = z.discriminatedUnion('t', [
  ServerFrames.welcome,
  ServerFrames.joined,
  ServerFrames.msg,
  ServerFrames.ack,
  ServerFrames.error,
  ServerFrames.presence,
  ServerFrames.typing,
  ServerFrames.left,
  ServerFrames.pong,
  ServerFrames.status,
  ServerFrames.rooms,
  ServerFrames.history,
  ServerFrames.refresh,
  ServerFrames.authed,
]);
export type ServerFrameParsed = z.infer<typeof ServerFrameSchema>;

/** The client → server frames (the decoder's own schema). */
export const ClientFrameSchema = ClientFrame;

export type FrameCheck = { ok: true; frame: ServerFrameParsed } | { ok: false; problem: string };

/** Validate one server frame's text: JSON, one object, and the schema of its `t`. Never throws. */
export function checkServerFrame(text: string): FrameCheck {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not valid JSON' };
  }
  const r = ServerFrameSchema.safeParse(raw);
  if (r.success) return { ok: true, frame: r.data };
  const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join('.') : '(frame)'}: ${i.message}`);
  return { ok: false, problem: issues.join('; ') };
}

// ---- JSON Schema

type JsonObject = Record<string, unknown>;

function toJson(schema: z.ZodType): JsonObject {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12' }) as JsonObject;
  return rest;
}

function literalT(schema: z.ZodObject): string {
  const t = schema.shape.t;
  if (!(t instanceof z.ZodLiteral)) throw new Error('frame schema without a literal t');
  return String(t.value);
}

/**
 * The JSON Schema (draft 2020-12) of every confab.v1 frame: `$defs` has one schema per frame
 * (`client.<t>`, `server.<t>`), `ClientFrame` and `ServerFrame` (one of those), and `ErrorCode`;
 * the document itself accepts a frame of either direction.
 */
export function protocolJsonSchema(): JsonObject {
  const defs: Record<string, unknown> = {};
  const clientRefs: JsonObject[] = [];
  const serverRefs: JsonObject[] = [];
  for (const opt of ClientFrame.options) {
    const name = `client.${literalT(opt)}`;
    defs[name] = toJson(opt);
    clientRefs.push({ $ref: `#/$defs/${name}` });
  }
  for (const opt of ServerFrameSchema.options) {
    const name = `server.${literalT(opt)}`;
    defs[name] = toJson(opt);
    serverRefs.push({ $ref: `#/$defs/${name}` });
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:confab:protocol:${SUBPROTOCOL}`,
    title: `confab wire protocol (WebSocket subprotocol ${SUBPROTOCOL}, version ${PROTOCOL_VERSION})`,
    description:
      'Every frame is one JSON object in a UTF-8 text frame. Client frames: $defs/ClientFrame; server frames: $defs/ServerFrame. ' +
      'Generated from src/protocol/ (frames.ts, schema.ts, codes.ts) by `npm run schema`; do not edit. Prose: docs/protocol.md.',
    anyOf: [{ $ref: '#/$defs/ClientFrame' }, { $ref: '#/$defs/ServerFrame' }],
    $defs: {
      ClientFrame: { description: 'A client → server frame (docs/protocol.md §3).', oneOf: clientRefs },
      ServerFrame: { description: 'A server → client frame (docs/protocol.md §4).', oneOf: serverRefs },
      ErrorCode: { description: 'The error and close code table (docs/protocol.md §7).', ...toJson(ErrorCodeSchema) },
      ...defs,
    },
  };
}

/** docs/protocol.schema.json exactly as committed: two-space JSON and a final newline. */
export function renderProtocolJsonSchema(): string {
  return JSON.stringify(protocolJsonSchema(), null, 2) + '\n';
}

// ---- compile-time: the schemas and the ServerFrame type describe the same frames (the same frame
// types; per type the same fields, the same of them required; each side's values assignable to the
// other's, except that the schema narrows error.code to the table). A field added to a nested
// object as optional on one side only is the one drift these do not see.

type Parsed = z.infer<typeof ServerFrameSchema>;
/** The schema narrows `error.code` to the table; the type says string. */
type Widened<F> = F extends { t: 'error' } ? Omit<F, 'code'> & { code: string } : F;
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Of<U, T> = U extends { t: T } ? U : never;
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type SameKeys<A, B> = Mutual<keyof A, keyof B> extends true ? Mutual<RequiredKeys<A>, RequiredKeys<B>> : false;
type PerType = { [T in ServerFrame['t']]: SameKeys<Of<ServerFrame, T>, Of<Parsed, T>> };
type AllTrue<U> = false extends U ? false : true;

const sameTypes: Mutual<ServerFrame['t'], Parsed['t']> = true;
const sameFields: AllTrue<PerType[keyof PerType]> = true;
const sameShapes: Mutual<Widened<Parsed>, ServerFrame> = true;
void [sameTypes, sameFields, sameShapes];
