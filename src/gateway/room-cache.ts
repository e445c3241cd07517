/**
 * The encoded message cache of the room engine: per room, the last messages this node delivered,
 * kept as the very frames written to sockets, so joins, resumes and history pages inside it read
 * no history. Bounded twice: by count per room (CONFAB_ROOM_CACHE) and by bytes across every room
 * of the node (CONFAB_CACHE_BYTES), least recently used rooms' entries going first.
 */

/** A message this node delivered, kept encoded (a complete `msg` WebSocket frame). */
export interface CachedMsg {
  offset: number;
  prev: number;
  frame: Buffer;
}

/** Bytes charged per entry beyond its frame: the entry object, its slot, the buffer's own header. */
export const ENTRY_OVERHEAD = 160;

const cost = (m: CachedMsg): number => m.frame.length + ENTRY_OVERHEAD;

/**
 * The node-wide byte budget of every room's cache. Rooms are kept in least-recently-used order
 * (a room is used when it caches a message or answers from its cache); past the budget the least
 * recently used rooms lose their entries, oldest first, before the room that is growing does.
 */
export class CacheBudget {
  private used = 0;
  /** Insertion order is use order: the first is the least recently used. */
  private readonly lru = new Set<RoomCache>();

  constructor(readonly maxBytes: number) {}

  /** Bytes held by every room's cache on this node. */
  get bytes(): number {
    return this.used;
  }

  /** Rooms holding cached entries. */
  get rooms(): number {
    return this.lru.size;
  }

  touch(c: RoomCache): void {
    this.lru.delete(c);
    this.lru.add(c);
  }

  /** `c` grew by `bytes`: make room, other rooms first (least recently used first), then `c`'s oldest. */
  grew(c: RoomCache, bytes: number): void {
    this.used += bytes;
    this.touch(c);
    if (this.used <= this.maxBytes) return;
    for (const victim of this.lru) {
      if (this.used <= this.maxBytes) return;
      if (victim !== c) victim.shed(this.used - this.maxBytes);
    }
    if (this.used > this.maxBytes) c.shed(this.used - this.maxBytes);
  }

  shrank(c: RoomCache, bytes: number, empty: boolean): void {
    this.used -= bytes;
    if (empty) this.lru.delete(c);
  }
}

/**
 * One room's cached messages: one unbroken chain (each entry's `prev` is the one before it) ending
 * at the newest message this node delivered, at most `maxCount` long.
 */
export class RoomCache {
  /** Slots before `start` are emptied (undefined) at once, so a dropped frame is freed at once. */
  private entries: (CachedMsg | undefined)[] = [];
  /** Index of the oldest kept entry (the array is compacted now and then). */
  private start = 0;
  private held = 0;

  constructor(
    private readonly maxCount: number,
    private readonly budget: CacheBudget,
  ) {}

  get size(): number {
    return this.entries.length - this.start;
  }

  get bytes(): number {
    return this.held;
  }

  /** The kept entries, oldest first (a fresh array). */
  list(): CachedMsg[] {
    return this.entries.slice(this.start) as CachedMsg[];
  }

  /** Add the newest delivered message; a break in the chain starts it over. */
  push(m: CachedMsg): void {
    if (this.maxCount <= 0 || this.budget.maxBytes <= 0) return;
    const newest = this.entries[this.entries.length - 1];
    if (this.size > 0 && newest!.offset !== m.prev) this.clear();
    this.entries.push(m);
    const n = cost(m);
    this.held += n;
    if (this.size > this.maxCount) this.dropOldest(1);
    this.budget.grew(this, n);
  }

  /** Forget everything (bus outage, epoch change, room closed). */
  clear(): void {
    if (this.size === 0) return;
    const freed = this.held;
    this.entries = [];
    this.start = 0;
    this.held = 0;
    this.budget.shrank(this, freed, true);
  }

  /** Give back at least `bytes` (or everything), oldest entries first. */
  shed(bytes: number): void {
    let freed = 0;
    let n = 0;
    while (this.start + n < this.entries.length && freed < bytes) freed += cost(this.entries[this.start + n++]!);
    if (this.start + n >= this.entries.length) return this.clear();
    this.dropOldest(n);
  }

  /** Mark this room used (an answer came from its cache). */
  touch(): void {
    if (this.size > 0) this.budget.touch(this);
  }

  /** Entries with offset > `after`, when the chain reaches back that far (its first entry's prev ≤ after). */
  after(after: number): CachedMsg[] | undefined {
    if (this.size === 0 || this.entries[this.start]!.prev > after) return undefined;
    let i = this.entries.length;
    while (i > this.start && this.entries[i - 1]!.offset > after) i--;
    return this.entries.slice(i) as CachedMsg[];
  }

  /** The newest `n` entries, when the chain holds that many or reaches the room's first message. */
  recent(n: number): CachedMsg[] | undefined {
    if (this.size < n && (this.size === 0 || this.entries[this.start]!.prev !== 0)) return undefined;
    return this.entries.slice(Math.max(this.start, this.entries.length - n)) as CachedMsg[];
  }

  /** The newest `limit` entries with offset < `before`, when the chain holds them all (or reaches the first message). */
  before(before: number, limit: number): CachedMsg[] | undefined {
    let i = this.entries.length;
    while (i > this.start && this.entries[i - 1]!.offset >= before) i--;
    const from = Math.max(this.start, i - limit);
    if (i - from === limit) return this.entries.slice(from, i) as CachedMsg[];
    if (this.size > 0 && this.entries[this.start]!.prev === 0) return this.entries.slice(from, i) as CachedMsg[]; // the room's whole history is here
    return undefined;
  }

  private dropOldest(n: number): void {
    let freed = 0;
    for (let k = 0; k < n; k++) {
      freed += cost(this.entries[this.start + k]!);
      this.entries[this.start + k] = undefined;
    }
    this.start += n;
    this.held -= freed;
    if (this.start > 64 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
    this.budget.shrank(this, freed, this.size === 0);
  }
}
