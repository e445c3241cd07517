// A node:test reporter that scripts/test.mjs adds beside the spec reporter for
// every file: it writes one JSON object (counts, plus the full names of failed,
// cancelled, skipped and todo tests) to its --test-reporter-destination, so the
// runner can print an honest summary at the end without parsing spec output.
//
// Events arrive children first (a suite's test:pass comes after its tests'),
// so names are joined with their suites' names when the suite's event arrives.
export default async function* summaryReporter(source) {
  const counts = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  const lists = { failed: [], skipped: [], todo: [] };
  // entries waiting for their parent's name, by nesting level
  const pending = new Map();
  const diagnostics = [];

  const take = (level) => {
    const list = pending.get(level) ?? [];
    pending.delete(level);
    return list;
  };

  for await (const event of source) {
    if (event.type === 'test:diagnostic') {
      diagnostics.push(event.data.message);
      continue;
    }
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { name, nesting, skip, todo, details } = event.data;
    const isSuite = details?.type === 'suite';
    // the entries of this test's children now get this test's name in front
    const children = take(nesting + 1).map((e) => ({ ...e, path: [name, ...e.path] }));
    const mine = [];
    if (!isSuite) {
      counts.tests += 1;
      if (skip !== undefined && skip !== false) {
        counts.skipped += 1;
        mine.push({ kind: 'skipped', path: [name], reason: typeof skip === 'string' ? skip : '' });
      } else if (todo !== undefined && todo !== false) {
        counts.todo += 1;
        mine.push({ kind: 'todo', path: [name], reason: typeof todo === 'string' ? todo : '' });
      } else if (event.type === 'test:pass') {
        counts.pass += 1;
      } else if (details?.error?.failureType === 'cancelledByParent') {
        counts.cancelled += 1;
        mine.push({ kind: 'failed', path: [name], reason: 'cancelled' });
      } else {
        counts.fail += 1;
        mine.push({ kind: 'failed', path: [name], reason: firstLine(details?.error) });
      }
    } else if (event.type === 'test:fail' && children.every((c) => c.kind !== 'failed' || c.reason === 'cancelled')) {
      // a suite that failed by itself (a hook threw, or the file crashed): its own error says why
      counts.fail += 1;
      mine.push({ kind: 'failed', path: [name], reason: firstLine(details?.error) });
    }
    const all = [...children, ...mine];
    if (nesting === 0) {
      for (const e of all) lists[e.kind].push({ name: e.path.join(' › '), reason: e.reason });
    } else {
      pending.set(nesting, [...(pending.get(nesting) ?? []), ...all]);
    }
  }
  // anything left without a parent (should not happen) is still reported
  for (const [, list] of pending) for (const e of list) lists[e.kind].push({ name: e.path.join(' › '), reason: e.reason });
  yield JSON.stringify({ counts, ...lists, diagnostics }) + '\n';
}

function firstLine(error) {
  const cause = error?.cause ?? error;
  const msg = cause?.message ?? String(cause ?? '');
  return msg.split('\n')[0].slice(0, 300);
}
