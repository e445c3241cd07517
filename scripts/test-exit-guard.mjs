// Loaded into every test file's process by scripts/test.mjs (--import).
// A file whose tests have all finished but whose process does not exit (a NATS
// or Redis client left reconnecting forever, a timer, a listening server, a child
// process) would sit there until the runner's file timeout (180 s) and then be
// reported only as "test timed out". Instead, GRACE_MS after the file's last test
// the handles still open are printed and the file fails at once. A file that
// exits on its own is not affected (the timer is unref'd).
import { after } from 'node:test';

const GRACE_MS = Number(process.env.CONFAB_TEST_EXIT_GRACE_MS ?? 30_000);

function describe(h) {
  const name = h?.constructor?.name ?? typeof h;
  try {
    if (name === 'Socket' || name === 'TLSSocket') {
      if (h.remotePort !== undefined) return `${name} ${h.localAddress}:${h.localPort} -> ${h.remoteAddress}:${h.remotePort}`;
      if (h._handle?.constructor?.name === 'Pipe' || h._type === 'pipe') return `${name} (pipe${h === process.stdout ? ': stdout' : h === process.stderr ? ': stderr' : ''})`;
      return `${name} (connecting)`;
    }
    if (name === 'Server') {
      const a = h.address();
      return `Server listening on ${typeof a === 'string' ? a : `${a?.address}:${a?.port}`}`;
    }
    if (name === 'ChildProcess') return `ChildProcess pid ${h.pid}: ${(h.spawnargs ?? []).join(' ').slice(0, 200)}`;
  } catch {
    // describe what we can
  }
  return name;
}

if (process.env.NODE_TEST_CONTEXT?.startsWith('child')) {
  // a root hook: runs once every test of the file (and every suite's hooks) finished
  after(() => {
    const timer = setTimeout(() => {
      const handles = typeof process._getActiveHandles === 'function' ? process._getActiveHandles().map(describe) : [];
      process.stderr.write(
        `\n[test-exit-guard] ${process.argv[1] ?? 'this file'}: the process did not exit ${GRACE_MS} ms after its last test; ` +
          `something is still open (a client reconnecting, a timer, a server, a child):\n` +
          `  resources: ${process.getActiveResourcesInfo().join(', ')}\n` +
          handles.map((h) => `  handle: ${h}\n`).join(''),
      );
      process.exit(1);
    }, GRACE_MS);
    timer.unref();
  });
}
