/**
 * The machine-readable protocol: docs/protocol.schema.json is what `npm run schema` generates from
 * the zod definitions today (fails when a frame, field, pattern or error code changed without
 * regenerating it; `npm run schema -- --check` itself is test/cli/generated-files.test.ts), the example frames of docs/protocol.md §4 match the server frame schemas, and
 * the schemas refuse what the doc does not allow.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCodes } from '../../src/protocol/codes.js';
import { CLIENT_FRAME_TYPES } from '../../src/protocol/frames.js';
import { checkServerFrame, protocolJsonSchema, renderProtocolJsonSchema, ServerFrameSchema } from '../../src/protocol/schema.js';
import { REPO_ROOT } from '../../src/testkit/gateway.js';

const SCHEMA_FILE = join(REPO_ROOT, 'docs/protocol.schema.json');

/** The JSON objects written in the doc's ```jsonc blocks (comments removed). */
function docExampleFrames(): unknown[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/protocol.md'), 'utf8');
  const out: unknown[] = [];
  for (const block of doc.matchAll(/```jsonc\n([\s\S]*?)```/g)) {
    const text = block[1]!;
    let depth = 0;
    let inString = false;
    let start = -1;
    let clean = '';
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (inString) {
        clean += ch;
        if (ch === '\\') clean += text[++i] ?? '';
        else if (ch === '"') inString = false;
        continue;
      }
      if (ch === '/' && text[i + 1] === '/') {
        while (i < text.length && text[i] !== '\n') i++;
        clean += '\n';
        continue;
      }
      clean += ch;
      if (ch === '"') inString = true;
      else if (ch === '{') {
        if (depth === 0) start = clean.length - 1;
        depth++;
      } else if (ch === '}') {
        depth--;
        if (depth === 0) {
          out.push(JSON.parse(clean.slice(start)));
          clean = '';
        }
      }
    }
  }
  return out;
}

describe('docs/protocol.schema.json', () => {
  it('is up to date with the zod definitions in src/protocol/ (else run npm run schema)', () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    assert.equal(committed, renderProtocolJsonSchema(), 'docs/protocol.schema.json is out of date: run `npm run schema` and commit it');
  });

  it('has one definition per frame type of each direction, and the error code table', () => {
    const s = protocolJsonSchema() as { $defs: Record<string, { oneOf?: unknown[]; enum?: string[]; additionalProperties?: unknown }> };
    for (const t of CLIENT_FRAME_TYPES) {
      assert.ok(s.$defs[`client.${t}`], `client.${t}`);
      assert.equal(s.$defs[`client.${t}`]!.additionalProperties, false, `client.${t} refuses unknown fields`);
    }
    const serverTypes = ServerFrameSchema.options.map((o) => String(o.shape.t.value));
    assert.deepEqual(serverTypes.sort(), ['ack', 'authed', 'error', 'history', 'joined', 'left', 'msg', 'pong', 'presence', 'refresh', 'rooms', 'status', 'typing', 'welcome']);
    for (const t of serverTypes) assert.ok(s.$defs[`server.${t}`], `server.${t}`);
    assert.equal(s.$defs.ClientFrame!.oneOf!.length, CLIENT_FRAME_TYPES.length);
    assert.equal(s.$defs.ServerFrame!.oneOf!.length, serverTypes.length);
    assert.deepEqual(s.$defs.ErrorCode!.enum, Object.keys(ErrorCodes));
  });
});

describe('server frame schemas', () => {
  it('accept every example frame of docs/protocol.md', () => {
    const frames = docExampleFrames().filter((f): f is { t: string } => typeof (f as { t?: unknown }).t === 'string');
    assert.ok(frames.length >= 10, `found only ${frames.length} example frames in docs/protocol.md`);
    for (const f of frames) {
      const r = checkServerFrame(JSON.stringify(f));
      assert.ok(r.ok, `docs/protocol.md example ${JSON.stringify(f)}: ${r.ok ? '' : r.problem}`);
    }
  });

  const welcome = {
    t: 'welcome', v: 1, node: 'n1', region: 'ams', version: '0.1.0', user: { id: 'u1', handle: 'ann' }, rooms: ['lobby'], perms: { alert: true }, exp: 1796000000,
    limits: { maxFrameBytes: 16384, maxTextChars: 2000, maxRooms: 50, ratePerSec: 20, rateBurst: 40, floodCloseAfter: 100, pingIntervalMs: 25000 },
  };
  const msg = { t: 'msg', room: 'lobby', offset: 43, prev: 42, epoch: 'e1', id: 'c-1', kind: 'msg', text: 'hi', from: { user: 'u1', handle: 'ann', node: 'n1', region: 'ams' }, ts: 1 };

  it('refuse what the doc does not allow', () => {
    assert.ok(checkServerFrame(JSON.stringify(welcome)).ok);
    assert.ok(checkServerFrame(JSON.stringify(msg)).ok);
    const bad: [string, unknown][] = [
      ['welcome without limits.rateBurst', { ...welcome, limits: { ...welcome.limits, rateBurst: undefined } }],
      ['welcome with a fractional limit', { ...welcome, limits: { ...welcome.limits, maxRooms: 1.5 } }],
      ['msg with an unknown field', { ...msg, admin: true }],
      ['msg with a bad room', { ...msg, room: 'Lobby' }],
      ['msg with a negative offset', { ...msg, offset: -1 }],
      ['msg with an epoch a client cannot send back (over 64 chars)', { ...msg, epoch: 'e'.repeat(65) }],
      ['msg of unknown kind', { ...msg, kind: 'html' }],
      ['ack without dup', { t: 'ack', id: 'c-1', room: 'lobby', offset: 1, epoch: 'e1' }],
      ['error with a code not in the table', { t: 'error', code: 'oops', message: 'x' }],
      ['an unknown frame type', { t: 'hello' }],
      ['presence with event "moved"', { t: 'presence', room: 'lobby', event: 'moved', user: { id: 'u1', handle: 'ann' } }],
    ];
    for (const [what, f] of bad) assert.equal(checkServerFrame(JSON.stringify(f)).ok, false, what);
    assert.deepEqual(checkServerFrame('{"t":'), { ok: false, problem: 'not valid JSON' });
  });

  it('accept an _alerts message and an error echoing what was wrong', () => {
    assert.ok(checkServerFrame(JSON.stringify({ ...msg, room: '_alerts', kind: 'alert' })).ok);
    assert.ok(checkServerFrame(JSON.stringify({ t: 'error', code: 'bad_room', message: 'x', retry: 'never', room: 'Not A Room' })).ok);
    assert.ok(checkServerFrame(JSON.stringify({ t: 'joined', room: 'lobby', epoch: 'e1', last: 0, recovered: false, gap: { from: 3, to: 17 }, reset: true, members: [], count: 0 })).ok);
  });
});
