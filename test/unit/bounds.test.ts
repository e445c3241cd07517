import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker, MemoryBus } from '../../src/bus/memory.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { addressKey, normalizeIp, parseCidr, TrustedProxies } from '../../src/gateway/address.js';
import { edgeDefaults, fdHeadroom, KeyedCounter, openFilesLimit } from '../../src/gateway/edge.js';
import { DebitBucket, USAGE_CHUNK, USAGE_CHUNK_BYTES, UserLimits, type UsageKind } from '../../src/gateway/user-limits.js';

describe('client addresses', () => {
  it('groups IPv6 per /64 and keeps IPv4 as is', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2::1'), '2001:db8:1:2::/64', 'same /64, other host');
    assert.equal(addressKey('2001:DB8:1:2:ffff::'), '2001:db8:1:2::/64', 'case does not matter');
    assert.notEqual(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'), 'the next /64 is another address');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone is dropped');
    assert.equal(addressKey('64:ff9b::1.2.3.4'), '64:ff9b:0:0::/64', 'an embedded IPv4 suffix');
    assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3', 'IPv4-mapped counts as IPv4');
    assert.equal(addressKey('10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('unknown'), 'unknown');
    assert.equal(normalizeIp('::FFFF:127.0.0.1'), '127.0.0.1');
  });

  it('parses trusted proxies as addresses and CIDR ranges, refusing anything else', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('fdaa::/16'), { address: 'fdaa::', prefix: 16, family: 'ipv6' });
    assert.deepEqual(parseCidr('127.0.0.1'), { address: '127.0.0.1', prefix: 32, family: 'ipv4' });
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0/8', '1.2.3.4/8/1', '/8', '10.0.0.0/x']) assert.throws(() => parseCidr(bad), Error, bad);
    assert.throws(() => loadConfig({ CONFAB_TRUSTED_PROXIES: '10.0.0.0/8, nonsense' }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONFAB_TRUSTED_PROXIES');
    assert.deepEqual(loadConfig({ CONFAB_TRUSTED_PROXIES: '10.0.0.0/8, fdaa::/16' }).trustedProxies, ['10.0.0.0/8', 'fdaa::/16']);
  });

  it('believes X-Forwarded-For only from peers inside the trusted ranges, right-most untrusted hop first', () => {
    const p = new TrustedProxies(['10.0.0.0/8', 'fdaa::/16', '127.0.0.1']);
    assert.ok(p.has('10.200.3.4') && p.has('::ffff:10.0.0.1') && p.has('fdaa:0:1::5') && p.has('127.0.0.1'));
    assert.ok(!p.has('11.0.0.1') && !p.has('fdab::1') && !p.has('127.0.0.2') && !p.has('garbage'));
    assert.equal(p.clientIp('10.9.9.9', { 'x-forwarded-for': '6.6.6.6, 1.2.3.4' }), '1.2.3.4', 'a client cannot choose by prepending');
    assert.equal(p.clientIp('10.9.9.9', { 'x-forwarded-for': '1.2.3.4, 10.0.0.7' }), '1.2.3.4', 'proxy hops are skipped');
    assert.equal(p.clientIp('fdaa::3', { 'x-forwarded-for': '2001:db8::9' }), '2001:db8::9');
    assert.equal(p.clientIp('9.9.9.9', { 'x-forwarded-for': '1.2.3.4' }), '9.9.9.9', 'an untrusted peer is not believed');
    assert.equal(p.clientIp('10.9.9.9', {}), '10.9.9.9');
    assert.equal(p.clientIp('10.9.9.9', { 'x-forwarded-for': 'not-an-ip' }), '10.9.9.9', 'garbage leaves the peer');
    const fly = new TrustedProxies(['172.16.0.0/12'], 'fly-client-ip');
    assert.equal(fly.clientIp('172.19.0.2', { 'fly-client-ip': '203.0.113.5', 'x-forwarded-for': '6.6.6.6' }), '203.0.113.5');
    assert.equal(fly.clientIp('8.8.8.8', { 'fly-client-ip': '203.0.113.5' }), '8.8.8.8', 'a direct peer cannot set Fly-Client-IP');
    assert.equal(fly.clientIp('172.19.0.2', { 'fly-client-ip': 'x' }), '172.19.0.2');
    assert.equal(new TrustedProxies([]).clientIp('127.0.0.1', { 'x-forwarded-for': '1.2.3.4' }), '127.0.0.1', 'no proxies: never believed');
  });
});

describe('edge budget defaults', () => {
  it('reads the soft open-files limit and keeps headroom below it', () => {
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    assert.equal(openFilesLimit(limits), 1024);
    assert.equal(openFilesLimit('Max open files            unlimited            unlimited            files\n'), undefined);
    assert.equal(openFilesLimit(''), undefined);
    assert.ok((openFilesLimit() ?? 1) > 0, 'this process');
    const d = edgeDefaults(1024, 0);
    assert.equal(d.maxHttpConnections, 1024 - fdHeadroom(1024));
    assert.ok(d.maxHttpConnections <= 1024 - 64 && d.maxSockets < d.maxHttpConnections, JSON.stringify(d));
    const big = edgeDefaults(20_000, 0);
    assert.equal(big.maxHttpConnections, 18_000);
    assert.equal(big.maxSockets, 18_000 - 900);
    const tiny = edgeDefaults(256, 0);
    assert.ok(tiny.maxHttpConnections === 192 && tiny.maxSockets === 176, JSON.stringify(tiny));
  });

  it('config: CONFAB_MAX_SOCKETS cannot exceed the HTTP connection budget', () => {
    assert.throws(() => loadConfig({ CONFAB_MAX_HTTP_CONNECTIONS: '100', CONFAB_MAX_SOCKETS: '200' }), (e: unknown) => e instanceof ConfigError && e.variable === 'CONFAB_MAX_SOCKETS');
    const c = loadConfig({ CONFAB_MAX_HTTP_CONNECTIONS: '100' });
    assert.equal(c.maxSockets, 84, 'the budget less 16 kept for plain HTTP');
    assert.equal(loadConfig({ CONFAB_MAX_CONN_PER_IP: '5000' }).maxHttpPerIp, 5000, 'plain HTTP per address follows the socket limit unless set');
  });

  it('keyed counter refuses past its maximum and forgets released keys', () => {
    const k = new KeyedCounter(2);
    assert.ok(k.tryAcquire('a') && k.tryAcquire('a') && !k.tryAcquire('a') && k.tryAcquire('b'));
    k.release('a');
    k.release('a');
    k.release('b');
    assert.equal(k.keys, 0);
  });
});

describe('per-user limits', () => {
  const rates = { msg: { perSec: 10, burst: 10 }, alert: { perSec: 0.1, burst: 2 }, typing: { perSec: 2, burst: 4 } };
  const opts = { maxSocketsPerUser: 3, maxRoomsPerUser: 2, maxRoomsPerNode: 3, rates, gossipMs: 0 };

  it('a debit bucket goes into debt from remote usage and refills from it', () => {
    const b = new DebitBucket({ perSec: 10, burst: 5 }, 0);
    b.debit(100, 0);
    assert.equal(b.take(0), false);
    assert.equal(b.take(500), false, 'still in debt (-5 + 5)');
    assert.equal(b.take(700), true);
    assert.ok(b.full(10_000));
  });

  it('caps sockets per user, distinct rooms per user and per node, with release', () => {
    const u = new UserLimits({ node: 'n', ...opts });
    assert.ok(u.openSocket('a') && u.openSocket('a') && u.openSocket('a'));
    assert.equal(u.openSocket('a'), false, 'fourth socket of a');
    assert.ok(u.openSocket('b'));
    assert.equal(u.joinRoom('a', 'r1'), undefined);
    assert.equal(u.joinRoom('a', 'r1'), undefined, 'the same room on another socket is no new room');
    assert.equal(u.joinRoom('a', 'r2'), undefined);
    assert.equal(u.joinRoom('a', 'r3')?.code, 'too_many_rooms');
    assert.equal(u.joinRoom('b', 'r3'), undefined);
    assert.equal(u.roomCount, 3);
    assert.equal(u.joinRoom('b', 'r4')?.code, 'node_full');
    assert.equal(u.joinRoom('b', 'r1'), undefined, 'a room the node holds is always open');
    u.leaveRoom('a', 'r2');
    assert.equal(u.joinRoom('b', 'r4')?.code, 'too_many_rooms', 'b is at its own maximum now');
    u.leaveRoom('b', 'r3');
    assert.equal(u.roomCount, 1, 'r1 only');
    assert.equal(u.joinRoom('a', 'r4'), undefined);
    u.leaveRoom('a', 'r4');
    u.leaveRoom('a', 'r4'); // released twice: no effect
    assert.equal(u.roomCount, 1);
  });

  it('shares each user\'s buckets across its sockets on a node', () => {
    const u = new UserLimits({ node: 'n', ...opts });
    let alerts = 0;
    for (let i = 0; i < 50; i++) if (u.take('a', 'alert')) alerts++;
    assert.equal(alerts, 2, 'the alert burst, whatever the socket');
    assert.ok(u.take('b', 'alert'), 'another user has its own');
  });

  it('across nodes: usage reports bring a user on three nodes back to one rate, within the stated bound', async (t) => {
    const broker = new MemoryBroker();
    const nodes = ['n1', 'n2', 'n3'].map((node) => new UserLimits({ node, ...opts, rates: { ...rates, msg: { perSec: 20, burst: 20 } }, gossipMs: 100, bus: new MemoryBus(broker) }));
    for (const n of nodes) {
      n.start();
      n.openSocket('mallory');
    }
    // mallory sends flat out on three nodes for 2 s; each node alone would accept 20 + 20·2 = 60
    const accepted = [0, 0, 0];
    const t0 = Date.now();
    while (Date.now() - t0 < 2000) {
      nodes.forEach((n, i) => {
        if (n.take('mallory', 'msg')) accepted[i]!++;
      });
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const n of nodes) n.stop();
    const total = accepted.reduce((a, b) => a + b, 0);
    const T = (Date.now() - t0) / 1000;
    // bound: rate·T + k·burst + (k−1)·rate·(interval + delay) + k·threshold·(T / interval)
    const k = 3;
    const bound = 20 * T + k * 20 + (k - 1) * 20 * 0.15 + k * 1 * (T / 0.1);
    t.diagnostic(`accepted ${total} (${accepted.join('+')}) in ${T.toFixed(2)} s; one node alone: ${(20 + 20 * T).toFixed(0)}; bound ${bound.toFixed(0)}; ${nodes[0]!.bytesSent} B in ${nodes[0]!.reportsSent} reports from n1`);
    assert.ok(total <= bound, `accepted ${total} (${accepted.join('+')}) over ${T.toFixed(1)} s, bound ${bound.toFixed(0)}`);
    assert.ok(total < 3 * (20 + 20 * T) * 0.75, `well below three independent buckets (${total})`);
    assert.ok(nodes[0]!.bytesSent > 0 && nodes[0]!.bytesSent / nodes[0]!.reportsSent < 100, `one user's report is small (${nodes[0]!.bytesSent} B in ${nodes[0]!.reportsSent})`);
  });

  it('reports only heavy users, chunked, and forgets idle users', () => {
    const sent: Uint8Array[] = [];
    const bus = { status: 'up', publish: (_s: string, d: Uint8Array) => sent.push(d), subscribe: () => ({ unsubscribe() {} }) } as unknown as MemoryBus;
    const u = new UserLimits({ node: 'n', ...opts, rates: { ...rates, msg: { perSec: 1000, burst: 1000 } }, gossipMs: 1000, bus });
    const kinds: UsageKind[] = ['msg'];
    for (let i = 0; i < USAGE_CHUNK + 10; i++) for (let j = 0; j < 300; j++) u.take(`heavy${i}`, kinds[0]!);
    u.take('light', 'msg');
    u.tick();
    assert.equal(sent.length, 2, 'two chunks');
    const text = sent.map((d) => new TextDecoder().decode(d)).join('\n');
    assert.ok(!text.includes('"light"'), 'a light user is not reported');
    assert.ok(sent.every((d) => d.length < 1024 * 1024), 'each chunk under 1 MiB');
    const perUser = sent.reduce((a, d) => a + d.length, 0) / (USAGE_CHUNK + 10);
    assert.ok(perUser < 40, `~${perUser.toFixed(1)} bytes per reported user`);
    u.tick(Date.now() + 3_600_000);
    assert.equal(u.userCount, 0, 'users without sockets and with full buckets are forgotten');
  });
  it('holdings across nodes: reported above an eighth of a cap, forgotten when not renewed, cleared once below, chunked by bytes', async () => {
    const flush = () => new Promise((r) => setImmediate(r)); // the memory bus delivers in a microtask batch
    const broker = new MemoryBroker();
    const o = { ...opts, maxSocketsPerUser: 16, maxRoomsPerUser: 100, maxRoomsPerNode: 100_000, gossipMs: 100 };
    const a = new UserLimits({ node: 'a', ...o, bus: new MemoryBus(broker) });
    const b = new UserLimits({ node: 'b', ...o, bus: new MemoryBus(broker) });
    a.start();
    b.start();
    try {
      a.openSocket('u');
      a.tick();
      await flush();
      assert.equal(b.remoteSockets('u'), 0, 'one socket is below the threshold (2): not reported');
      a.openSocket('u');
      for (let r = 0; r < 13; r++) a.joinRoom('u', `r${r}`);
      a.tick();
      await flush();
      assert.equal(b.remoteSockets('u'), 2);
      assert.equal(b.remoteRooms('u').size, 13);
      for (let i = 0; i < 14; i++) assert.ok(b.openSocket('u') === i < 14, `socket ${i} on b`);
      assert.equal(b.openSocket('u'), false, '2 on a + 14 on b = the cap of 16');
      assert.equal(b.remoteSockets('u', Date.now() + 301), 0, 'a report not renewed within 3 intervals is forgotten');
      // below the threshold on a: one report with nothing
      a.closeSocket('u');
      for (let r = 0; r < 13; r++) a.leaveRoom('u', `r${r}`);
      a.tick();
      await flush();
      assert.equal(b.remoteSockets('u'), 0);
      assert.equal(b.remoteRooms('u').size, 0);
    } finally {
      a.stop();
      b.stop();
    }
    // 3,000 users holding 100 rooms each: reports cut by bytes, every chunk under the bus's 1 MiB
    const sent: Uint8Array[] = [];
    const bus = { status: 'up', publish: (_s: string, d: Uint8Array) => sent.push(d), subscribe: () => ({ unsubscribe() {} }) } as unknown as MemoryBus;
    const big = new UserLimits({ node: 'n', ...o, maxRoomsPerNode: 1_000_000, bus });
    for (let i = 0; i < 3000; i++) for (let r = 0; r < 100; r++) big.joinRoom(`user${i}`, `room-${i}-${r}`);
    big.tick();
    assert.ok(sent.length >= 3 && sent.every((d) => d.length <= USAGE_CHUNK_BYTES + 4096), `${sent.length} chunks of at most ${Math.max(...sent.map((d) => d.length))} bytes`);
  });
});
