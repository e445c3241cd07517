/**
 * Room history a page at a time from the server: older messages above the top of a room, and
 * the messages a capped resume skipped, placed at their "missed" marker. A failed page pauses
 * asking for that room for a few seconds.
 */
import { app } from './state.js';
import type { RoomView, TimelineItem } from './store.js';
import type { Timeline } from './timeline.js';

const HISTORY_PAGE = 50;
const PAUSE_AFTER_FAILURE_MS = 5000;
const pausedUntil = new Map<string, number>();

/** Older messages for the top of a room, a page at a time, from the server's history. */
export async function loadOlder(r: RoomView, timeline: Timeline): Promise<void> {
  const c = app.client;
  if (!c || r.loading || (pausedUntil.get(r.name) ?? 0) > Date.now()) return;
  pausedUntil.delete(r.name);
  // nothing shown yet: the join's replay brings the newest messages; older ones are asked for above them
  const first = r.items.find((i): i is Extract<TimelineItem, { kind: 'msg' }> => i.kind === 'msg');
  if (!first) return;
  if (first.m.prev === 0) {
    r.more = false;
    if (r === timeline.room) timeline.refresh();
    return;
  }
  r.loading = true;
  try {
    const page = await c.history(r.name, { before: first.m.offset, limit: HISTORY_PAGE });
    const msgs = page.messages.filter((m) => m.offset < first.m.offset && m.epoch === first.m.epoch);
    const at = r.items.indexOf(first);
    const added = at < 0 ? [] : (app.store?.prepend(r.name, msgs, at) ?? []);
    r.more = page.more && added.length > 0;
    r.loading = false;
    if (r === timeline.room) {
      if (added.length) timeline.inserted(at, added.length);
      else timeline.refresh();
    }
  } catch {
    r.loading = false;
    pausedUntil.set(r.name, Date.now() + PAUSE_AFTER_FAILURE_MS);
  }
}

/** Messages a capped resume skipped, newest first, a page at a time, placed at their marker. */
export async function loadMissed(r: RoomView, item: Extract<TimelineItem, { kind: 'missed' }>, timeline: Timeline): Promise<void> {
  const c = app.client;
  if (!c || r.loading) return;
  r.loading = true;
  if (r === timeline.room) timeline.refresh();
  try {
    const page = await c.history(r.name, { before: item.to + 1, limit: Math.min(100, item.to - item.from + 1) });
    const msgs = page.messages.filter((m) => m.offset >= item.from && m.offset <= item.to);
    const at = r.items.indexOf(item);
    if (at < 0) return;
    const added = app.store?.prepend(r.name, msgs, at + 1) ?? [];
    const lowest = msgs.reduce((lo, m) => Math.min(lo, m.offset), item.to + 1);
    item.to = lowest - 1;
    if (item.to < item.from || !page.more || msgs.length === 0) r.items.splice(r.items.indexOf(item), 1);
    if (r === timeline.room) {
      if (added.length) timeline.inserted(at + 1, added.length);
      timeline.refresh();
    }
  } catch {
    pausedUntil.set(r.name, Date.now() + PAUSE_AFTER_FAILURE_MS);
  } finally {
    r.loading = false;
  }
}
