/**
 * Baseline servers the bench starts beside confab, each in its own process:
 *
 *   node dist/bench/baselines.js raw            minimal `ws` broadcast server
 *   node dist/bench/baselines.js sio [--recovery] Socket.IO 4 room broadcast
 *
 * Env: PORT (0 = any), HOST. Prints `listening http://HOST:PORT` when ready.
 *
 * raw: `GET /?rooms=a,b` joins rooms and answers `ready`; a text frame
 * `room\npayload` is framed ONCE and the same bytes are written straight to
 * every other member's socket (the floor Node allows). A member whose socket
 * buffers more than RAW_SEND_CAP bytes (default 1 MiB, like confab's send
 * buffer) is dropped, so slow consumers cannot grow its memory.
 *
 * sio: `auth.rooms` in the connect packet joins rooms, the server emits
 * `ready`; `pub(room, text)` is broadcast with `socket.to(room).emit('msg', text)`.
 * `--recovery` turns on connection-state recovery (for the resume scenario).
 * Both answer `sync` with `synced` so a publisher knows earlier frames were processed.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const mode = process.argv[2];
const port = Number(process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';
const sendCap = Number(process.env.RAW_SEND_CAP ?? 1024 * 1024);

function frameText(data: Buffer): Buffer {
  const n = data.length;
  const hdr = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const f = Buffer.allocUnsafe(hdr + n);
  f[0] = 0x81;
  if (hdr === 2) f[1] = n;
  else if (hdr === 4) {
    f[1] = 126;
    f.writeUInt16BE(n, 2);
  } else {
    f[1] = 127;
    f.writeUInt32BE(0, 2);
    f.writeUInt32BE(n, 6);
  }
  data.copy(f, hdr);
  return f;
}

function startRaw(server: http.Server): void {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, maxPayload: 64 * 1024 });
  const rooms = new Map<string, Set<Socket>>();
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const mine = (url.searchParams.get('rooms') ?? '').split(',').filter(Boolean);
      const sock = (ws as unknown as { _socket: Socket })._socket;
      for (const r of mine) {
        let set = rooms.get(r);
        if (!set) rooms.set(r, (set = new Set()));
        set.add(sock);
      }
      ws.on('message', (data: Buffer) => {
        const nl = data.indexOf(10);
        if (nl < 0) {
          if (data.toString('latin1') === 'sync') ws.send('synced');
          return;
        }
        const set = rooms.get(data.toString('latin1', 0, nl));
        if (!set) return;
        const frame = frameText(data);
        for (const s of set) {
          if (s === sock) continue;
          if (s.writableLength > sendCap) {
            s.destroy();
            continue;
          }
          s.write(frame);
        }
      });
      ws.on('close', () => {
        for (const r of mine) {
          const set = rooms.get(r);
          set?.delete(sock);
          if (set?.size === 0) rooms.delete(r);
        }
      });
      ws.on('error', () => {});
      ws.send('ready');
    });
  });
}

async function startSio(server: http.Server, recovery: boolean): Promise<void> {
  const { Server } = await import('socket.io');
  const io = new Server(server, {
    transports: ['websocket'],
    perMessageDeflate: false,
    serveClient: false,
    ...(recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: true } } : {}),
  });
  io.on('connection', (socket) => {
    const rooms = (socket.handshake.auth as { rooms?: unknown }).rooms;
    if (Array.isArray(rooms)) void socket.join(rooms.filter((r): r is string => typeof r === 'string'));
    socket.on('pub', (room: unknown, text: unknown) => {
      if (typeof room === 'string') socket.to(room).emit('msg', text);
    });
    socket.on('sync', () => socket.emit('synced'));
    socket.emit('ready');
  });
}

async function main(): Promise<void> {
  const server = http.createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  if (mode === 'raw') startRaw(server);
  else if (mode === 'sio') await startSio(server, process.argv.includes('--recovery'));
  else throw new Error(`usage: baselines.js raw|sio [--recovery] (got ${mode})`);
  server.listen(port, host, () => {
    const a = server.address();
    const p = typeof a === 'object' && a ? a.port : port;
    process.stdout.write(`listening http://${host}:${p}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((e: unknown) => {
  process.stderr.write(`baseline failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
