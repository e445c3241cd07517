/** Conformance checks: across gateways of one deployment (with a peer URL): sessions, delivery, resume and dedupe. */
import { chainProblem, ids, Skip } from '../context.js';
import { expect, show, type FrameOf } from '../probe.js';
import { type Check, P, replayBefore, needPeer } from './common.js';

export const CLUSTER_CHECKS: Check[] = [
  // ---- across gateways (with a peer URL of the same deployment)
  {
    id: 'cluster.session',
    name: 'a session made on one gateway opens a socket on the other',
    section: `${P} §1`,
    requires: ['ws.welcome'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const s = await ctx.session();
      const { welcome } = await ctx.connect(s, { ep: peer, name: 'A on peer' });
      expect(welcome.user.id === s.user.id, `welcome on the peer should be for ${s.user.id}, got ${show(welcome.user)}`);
    },
  },
  {
    id: 'cluster.delivery',
    name: 'members on two gateways: presence join crosses, each one\'s pub reaches the other, one order, node stamped by the sender\'s gateway',
    section: `${P} §4, §5 (G1)`,
    requires: ['cluster.session'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const a = await ctx.user('A');
      const b = await ctx.user('B on peer', peer);
      if (a.welcome.node === b.welcome.node) throw new Skip(`the peer URL answered from the same node (${a.welcome.node}) as the URL`);
      const room = ctx.room('xgw');
      const ja = await ctx.join(a.p, room);
      const jb = await ctx.join(b.p, room);
      expect(ja.joined.epoch === jb.joined.epoch, `the two gateways name different epochs for one room: ${ja.joined.epoch} / ${jb.joined.epoch}`);
      await a.p.find('presence', (f) => f.room === room && f.event === 'join' && f.user.id === b.s.user.id, `presence join of B (on the peer) in ${room}`, ja.at);
      const fromA = await ctx.pub(a.p, room, 'from A');
      const onB = await b.p.find('msg', (m) => m.id === fromA.ack.id, `A's message ${fromA.ack.id} on the peer`, jb.at);
      expect(onB.from.node === a.welcome.node, `msg from A should be stamped with A's node ${a.welcome.node}, got ${onB.from.node}`);
      const fromB = await ctx.pub(b.p, room, 'from B');
      const onA = await a.p.find('msg', (m) => m.id === fromB.ack.id, `B's message ${fromB.ack.id} on the URL's gateway`, ja.at);
      expect(onA.from.node === b.welcome.node, `msg from B should be stamped with B's node ${b.welcome.node}, got ${onA.from.node}`);
      const key = (ms: FrameOf<'msg'>[]) => ms.map((m) => `${m.offset}:${m.id}`).join(',');
      expect(key(a.p.msgs(room, ja.at + 1)) === key(b.p.msgs(room, jb.at + 1)), `the gateways delivered different orders: ${key(a.p.msgs(room, ja.at + 1))} / ${key(b.p.msgs(room, jb.at + 1))}`);
      const chain = chainProblem(a.p.msgs(room, ja.at + 1), ja.joined.last);
      expect(chain === undefined, chain ?? '');
    },
  },
  {
    id: 'cluster.resume',
    name: 'resume on the other gateway: recovered, exactly the missed messages, then live',
    section: `${P} §5 (G2)`,
    requires: ['cluster.session'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const a = await ctx.user('A');
      const b = await ctx.user('B');
      const room = ctx.room('xresume');
      await ctx.join(a.p, room);
      await ctx.join(b.p, room);
      const m1 = await ctx.pub(b.p, room, 'seen');
      const seen = await a.p.find('msg', (m) => m.id === m1.ack.id, `msg ${m1.ack.id}`);
      await a.p.closeAndWait();
      const missed = [];
      for (let k = 0; k < 3; k++) missed.push(await ctx.pub(b.p, room, `missed ${k}`));
      const { p: a2, welcome } = await ctx.connect(a.s, { ep: peer, name: 'A on peer' });
      if (welcome.node === a.welcome.node) throw new Skip(`the peer URL answered from the same node (${welcome.node}) as the URL`);
      const { joined, at } = await ctx.join(a2, room, { epoch: seen.epoch, offset: seen.offset });
      expect(joined.recovered === true && joined.epoch === seen.epoch, `resume on the peer with since {${seen.epoch}, ${seen.offset}}: expected recovered true in the same epoch, got ${show(joined)}`);
      const replay = await replayBefore(a2, room, at, async () => (await ctx.pub(b.p, room, 'live')).ack.id);
      const want = missed.map((m) => m.ack.id);
      expect(JSON.stringify(ids(replay)) === JSON.stringify(want), `replay on the peer should be exactly ${show(want)}, got ${show(ids(replay))}`);
      const chain = chainProblem(a2.msgs(room, at + 1), seen.offset);
      expect(chain === undefined, `replay then live on the peer: ${chain}`);
    },
  },
  {
    id: 'cluster.dup',
    name: 'resending an id through the other gateway → ack dup true with the original offset',
    section: `${P} §3 (G3)`,
    requires: ['cluster.session'],
    async run(ctx) {
      const peer = needPeer(ctx);
      const a = await ctx.user('A');
      const room = ctx.room('xdup');
      await ctx.join(a.p, room);
      const first = await ctx.pub(a.p, room, 'once');
      const { p: a2 } = await ctx.connect(a.s, { ep: peer, name: 'A on peer' });
      await ctx.join(a2, room);
      const from = a2.frames.length;
      await a2.send({ t: 'pub', id: first.ack.id, room, text: 'once' });
      const again = await a2.answer(first.ack.id, from);
      expect(again.t === 'ack' && again.dup === true && again.offset === first.ack.offset && again.epoch === first.ack.epoch, `resend of ${first.ack.id} on the peer: expected ack dup true offset ${first.ack.offset}, got ${show(again)}`);
    },
  },
];
