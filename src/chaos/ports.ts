/**
 * Ports for the chaos cluster. Its processes need their port numbers up front
 * (NATS routes name each other's ports) and get them again when they are
 * restarted after a kill, so a port must stay free between being chosen and
 * being bound, possibly twice. Ports the kernel picks (listen on 0) come from
 * the ephemeral range (ip_local_port_range, 32768-60999 here), which is also
 * where every outgoing connection's local port comes from: hundreds of client
 * sockets make a collision likely. These come from below that range instead,
 * at random, checked free, and never handed out twice by this process.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const given = new Set<number>();

function ephemeralLow(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(lo) && lo > 12_000 ? lo : 32_768;
  } catch {
    return 32_768;
  }
}
const HIGH = Math.min(ephemeralLow(), 32_768);
const LOW = 20_000;

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port on 127.0.0.1 below the ephemeral range, free now and not given out before by this process. */
export async function chaosPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (given.has(p)) continue;
    given.add(p);
    if (await canBind(p)) return p;
  }
  throw new Error(`no free port found in ${LOW}-${HIGH} after 200 tries`);
}
