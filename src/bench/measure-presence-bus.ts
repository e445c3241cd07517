/**
 * Bus bytes per second per gateway for presence (issue 15 item 4, docs/scaling.md), on a local
 * nats-server: G gateways share U users (each online and in R rooms); figures for the fill, an
 * idle window, a churn window (users reconnecting to another gateway) and a newcomer catching up.
 *
 *   npm run measure:presence-bus -- [--gateways 4] [--users 10000] [--rooms 3] [--pool 2000]
 *       [--idle 20] [--reconnects 50] [--churn 10] [--hb 2000] [--impl path/to/presence.js] [--json file]
 *
 * `--impl` measures another Presence build (e.g. the one before delta batches) with the same load.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startNats } from '../procs/nats.js';
import { measurePresenceTraffic, type TrafficOptions } from './presence-traffic.js';

const { values: a } = parseArgs({
  options: {
    gateways: { type: 'string', default: '4' },
    users: { type: 'string', default: '10000' },
    rooms: { type: 'string', default: '3' },
    pool: { type: 'string', default: '2000' },
    idle: { type: 'string', default: '20' },
    reconnects: { type: 'string', default: '50' },
    churn: { type: 'string', default: '10' },
    hb: { type: 'string', default: '2000' },
    impl: { type: 'string' },
    json: { type: 'string' },
  },
});

const nats = await startNats();
try {
  const presence = a.impl ? ((await import(pathToFileURL(resolve(a.impl)).href)) as { Presence: TrafficOptions['presence'] }).Presence : undefined;
  const r = await measurePresenceTraffic({
    natsUrl: nats.url,
    monitor: (p) => nats.monitor(p),
    gateways: Number(a.gateways),
    users: Number(a.users),
    roomsPerUser: Number(a.rooms),
    roomPool: Number(a.pool),
    idleSec: Number(a.idle),
    reconnectsPerSec: Number(a.reconnects),
    churnSec: Number(a.churn),
    heartbeatMs: Number(a.hb),
    ...(presence ? { presence } : {}),
    log: (l) => console.error(l),
  });
  const f = (n: number) => n.toFixed(0).padStart(9);
  console.log(`presence over NATS: ${r.gateways} gateways, ${r.users} users, ${r.entries} (room, user) entries${a.impl ? ` (impl ${a.impl})` : ''}`);
  console.log(`phase        B/s in    B/s out  wire in  wire out  msgs/s in   (per gateway)`);
  const row = (n: string, p: { inBps: number; outBps: number; wireInBps: number; wireOutBps: number; msgsInPerSec: number }) =>
    console.log(`${n.padEnd(8)}${f(p.inBps)}${f(p.outBps)}${f(p.wireInBps)}${f(p.wireOutBps)}${f(p.msgsInPerSec)}`);
  row('idle', r.idle);
  if (r.churn) row('churn', r.churn);
  if (r.churn) console.log(`churn: ${r.churn.reconnectsPerSec.toFixed(1)} reconnects/s = ${r.churn.opsPerSec.toFixed(0)} presence changes/s; ${r.churn.inBytesPerOp.toFixed(1)} B in per change per gateway, ${r.churn.cpuUsPerOpPerGateway.toFixed(1)} µs CPU per change per gateway (sender's share included)`);
  console.log(`fill: ${r.fill.seconds.toFixed(1)} s, ${(r.fill.payloadBytesPerGateway / 1e6).toFixed(2)} MB per gateway; newcomer: ${r.newcomer.seconds.toFixed(2)} s, ${(r.newcomer.inBytes / 1e6).toFixed(2)} MB in ${r.newcomer.inMsgs} msgs (each other gateway received ${(r.newcomer.othersInBytes / 1e6).toFixed(2)} MB meanwhile)`);
  console.log('(payload bytes; nats-server /connz in_bytes/out_bytes count payloads too; each message adds ~40-60 bytes of NATS protocol line)');
  console.log(`largest message: ${r.maxMessageBytes} bytes`);
  if (a.json) writeFileSync(a.json, JSON.stringify(r, null, 2));
} finally {
  await nats.close();
}
