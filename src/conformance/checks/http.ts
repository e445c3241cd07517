/** Conformance checks: HTTP endpoints, sessions, the WebSocket upgrade and the socket basics (welcome, ping, rooms list). */
import { SUBPROTOCOL } from '../../protocol/constants.js';
import { Skip } from '../context.js';
import { createSession, expect, show, tryUpgrade } from '../probe.js';
import { type Check, P, LIMIT_KEYS, jsonObject, postSession } from './common.js';

export const HTTP_CHECKS: Check[] = [
  // ---- HTTP
  {
    id: 'http.healthz',
    name: 'GET /healthz answers 200 with JSON',
    section: 'README: HTTP endpoints',
    async run(ctx) {
      const r = await jsonObject(ctx.ep, '/healthz');
      expect(r.status === 200, `GET /healthz: expected 200, got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'http.readyz',
    name: 'GET /readyz answers 200 with JSON (accepting)',
    section: 'README: HTTP endpoints',
    async run(ctx) {
      const r = await jsonObject(ctx.ep, '/readyz');
      expect(r.status === 200, `GET /readyz: expected 200 (accepting), got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'session.create',
    name: 'POST /api/session {handle} → 200 {token, user, expiresAt}; token {u, h, e} with e = expiresAt in seconds',
    section: `${P} §1`,
    async run(ctx) {
      const handle = ctx.handle();
      const before = Date.now();
      const s = await ctx.session(ctx.ep, handle);
      expect(s.user.handle === handle, `user.handle should be ${handle}, got ${show(s.user)}`);
      expect(s.expiresAt > before, `expiresAt ${s.expiresAt} should be in the future (ms since the epoch)`);
      // the token's format is documented: base64url(JSON{u, h, e}) "." base64url(HMAC), e the same instant in seconds
      const parts = s.token.split('.');
      let claims: { u?: unknown; h?: unknown; e?: unknown } | undefined;
      try {
        claims = parts.length === 2 ? (JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof claims) : undefined;
      } catch {
        claims = undefined;
      }
      expect(claims !== undefined, `the token should be base64url(JSON{u, h, e}).signature, got ${show(s.token, 80)}`);
      expect(claims.u === s.user.id && claims.h === handle, `the token's u/h should be the user ${show(s.user)}, got ${show(claims)}`);
      expect(typeof claims.e === 'number' && claims.e * 1000 === s.expiresAt, `the token's e (seconds) should be expiresAt ${s.expiresAt} / 1000, got ${show(claims.e)}`);
    },
  },
  {
    id: 'session.renew',
    name: 'POST /api/session {handle, token} keeps the user id',
    section: `${P} §1`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const other = await ctx.session();
      expect(other.user.id !== s.user.id, `two new sessions got the same user id ${s.user.id}`);
      const renewed = await createSession(ctx.ep, s.user.handle, s.token);
      expect(renewed.user.id === s.user.id, `renewing with the token should keep user id ${s.user.id}, got ${renewed.user.id}`);
      const handle = ctx.handle();
      const renamed = await createSession(ctx.ep, handle, s.token);
      expect(renamed.user.id === s.user.id && renamed.user.handle === handle, `renaming with the token should keep user id ${s.user.id} with handle ${handle}, got ${show(renamed.user)}`);
    },
  },
  {
    id: 'session.errors',
    name: 'bad handle 400 bad_handle, bad JSON 400 bad_json, bad body 400 bad_request, wrong type 415',
    section: `${P} §1`,
    async run(ctx) {
      const cases: [string, string, string, number, string][] = [
        ['handle "-x"', JSON.stringify({ handle: '-x' }), 'application/json', 400, 'bad_handle'],
        ['handle of 25 characters', JSON.stringify({ handle: 'a'.repeat(25) }), 'application/json', 400, 'bad_handle'],
        ['a body that is not JSON', '{"handle":', 'application/json', 400, 'bad_json'],
        ['an unknown field', JSON.stringify({ handle: ctx.handle(), extra: 1 }), 'application/json', 400, 'bad_request'],
        ['handle not a string', JSON.stringify({ handle: 42 }), 'application/json', 400, 'bad_request'],
        ['content-type text/plain', JSON.stringify({ handle: ctx.handle() }), 'text/plain', 415, 'bad_request'],
      ];
      for (const [what, body, type, status, code] of cases) {
        const r = await postSession(ctx.ep, body, type);
        expect(r.status === status && r.code === code, `POST /api/session with ${what}: expected ${status} {code: ${code}}, got ${r.status} ${show(r.text)}`);
      }
    },
  },
  // ---- upgrade
  {
    id: 'upgrade.subprotocol',
    name: 'upgrade without the subprotocol confab.v1 → 400 protocol_violation',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const url = `${ctx.ep.ws()}?token=${encodeURIComponent(s.token)}`;
      for (const protocols of [[], ['confab.v0'], ['chat', 'confab.v2']]) {
        const r = await tryUpgrade(url, protocols);
        expect(r !== undefined, `upgrade offering ${show(protocols)} was accepted; expected 400`);
        expect(r.status === 400, `upgrade offering ${show(protocols)}: expected 400, got ${r.status} ${show(r.body)}`);
        expect((r.body as { code?: unknown }).code === 'protocol_violation', `upgrade offering ${show(protocols)}: expected body code protocol_violation, got ${show(r.body)}`);
      }
    },
  },
  {
    id: 'upgrade.auth',
    name: 'upgrade without a token, with a malformed or forged token → 401 unauthorized',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const [payload = '', sig = ''] = s.token.split('.');
      // change the first character: all six of its bits are signature bits (the last one's low bits are base64 padding)
      const flip = (x: string) => (x.startsWith('A') ? 'B' : 'A') + x.slice(1);
      const forgedPayload = Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8') || '{}') as object), h: 'mallory' })).toString('base64url');
      const cases: [string, string][] = [
        ['no token', ctx.ep.ws()],
        ['a malformed token', `${ctx.ep.ws()}?token=not-a-token`],
        ['a token with a wrong signature', `${ctx.ep.ws()}?token=${encodeURIComponent(`${payload}.${flip(sig)}`)}`],
        ['a token with an altered payload', `${ctx.ep.ws()}?token=${encodeURIComponent(`${forgedPayload}.${sig}`)}`],
      ];
      for (const [what, url] of cases) {
        const r = await tryUpgrade(url, [SUBPROTOCOL]);
        expect(r !== undefined, `upgrade with ${what} was accepted; expected 401`);
        expect(r.status === 401, `upgrade with ${what}: expected 401, got ${r.status} ${show(r.body)}`);
        expect((r.body as { code?: unknown }).code === 'unauthorized', `upgrade with ${what}: expected body code unauthorized, got ${show(r.body)}`);
      }
    },
  },
  {
    id: 'upgrade.path',
    name: 'upgrade on a path other than /ws → 404 not_found',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const r = await tryUpgrade(`${ctx.ep.ws('/not-ws')}?token=${encodeURIComponent(s.token)}`, [SUBPROTOCOL]);
      expect(r !== undefined, 'upgrade on /not-ws was accepted; expected 404');
      expect(r.status === 404 && (r.body as { code?: unknown }).code === 'not_found', `upgrade on /not-ws: expected 404 not_found, got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'upgrade.origin',
    name: 'an Origin the deployment does not allow → 403 forbidden_origin',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const origin = 'https://conformance.invalid';
      const r = await tryUpgrade(`${ctx.ep.ws()}?token=${encodeURIComponent(s.token)}`, [SUBPROTOCOL], { origin });
      if (r === undefined) throw new Skip(`this deployment allows Origin ${origin} (CONFAB_ALLOWED_ORIGINS): nothing to refuse`);
      expect(r.status === 403 && (r.body as { code?: unknown }).code === 'forbidden_origin', `upgrade with Origin ${origin}: expected 403 forbidden_origin, got ${r.status} ${show(r.body)}`);
    },
  },
  {
    id: 'upgrade.bearer',
    name: 'the token in Authorization: Bearer opens the socket',
    section: `${P} §2`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const { welcome } = await ctx.connect(s, { bearer: true, name: 'bearer' });
      expect(welcome.user.id === s.user.id, `welcome.user should be the session's user ${s.user.id}, got ${show(welcome.user)}`);
    },
  },
  // ---- socket basics
  {
    id: 'ws.welcome',
    name: 'welcome first: v 1, the session user, every limits field; subprotocol confab.v1 selected',
    section: `${P} §2, §4`,
    requires: ['session.create'],
    async run(ctx) {
      const s = await ctx.session();
      const { p, welcome } = await ctx.connect(s, { name: 'A' });
      expect(p.ws.protocol === SUBPROTOCOL, `the server selected subprotocol ${JSON.stringify(p.ws.protocol)}, expected ${SUBPROTOCOL}`);
      const raw = welcome as unknown as { limits?: Record<string, unknown> };
      const missing = LIMIT_KEYS.filter((k) => typeof raw.limits?.[k] !== 'number');
      expect(missing.length === 0, `welcome.limits lacks ${missing.join(', ')}: ${show(raw.limits)}`);
      expect(welcome.v === 1, `welcome.v should be 1 (protocol version 1), got ${welcome.v}`);
      expect(welcome.user.id === s.user.id && welcome.user.handle === s.user.handle, `welcome.user should be ${show(s.user)}, got ${show(welcome.user)}`);
      ctx.welcome = welcome;
    },
  },
  {
    id: 'session.handle_taken',
    name: 'a handle online is refused to another user (case-insensitive): 409 handle_taken',
    section: `${P} §1`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { s } = await ctx.user('A');
      for (const h of [s.user.handle, s.user.handle.toUpperCase()]) {
        const r = await postSession(ctx.ep, JSON.stringify({ handle: h }));
        expect(r.status === 409 && r.code === 'handle_taken', `POST /api/session {handle: ${h}} while ${s.user.handle} is online: expected 409 handle_taken, got ${r.status} ${show(r.text)}`);
      }
    },
  },
  {
    id: 'ws.ping',
    name: 'ping → pong',
    section: `${P} §3, §8`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const from = p.frames.length;
      await p.send({ t: 'ping' });
      await p.find('pong', () => true, 'pong', from);
    },
  },
  {
    id: 'ws.rooms',
    name: 'rooms → rooms',
    section: `${P} §3, §4`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const { p } = await ctx.user('A');
      const from = p.frames.length;
      await p.send({ t: 'rooms' });
      await p.find('rooms', () => true, 'rooms', from);
    },
  },
];
