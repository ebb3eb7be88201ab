import type { Clock } from '../util/clock.ts';

export type ReplayVerdict = { ok: true } | { ok: false; code: 'IDENTITY_STALE' | 'IDENTITY_REPLAY'; reason: string };

export interface ReplayCacheOptions {
  clock: Clock;
  /** A message is accepted only if its timestamp is within this many ms of now (either side). */
  windowMs?: number;
  /** Memory bound on remembered nonces. */
  maxEntries?: number;
}

interface Entry {
  ts: number;
  key: string;
}

/**
 * Replay guard for signed messages carrying (nonce, timestamp): a message is
 * accepted once, and only while its timestamp is within the window of the
 * injected clock's wall time. A nonce is remembered until its timestamp leaves
 * the window, after which the window itself refuses it.
 *
 * Memory is bounded: when full, the entry with the oldest timestamp is
 * forgotten and the acceptance floor rises to that timestamp, so a forgotten
 * nonce still cannot be replayed (it is now stale); under a flood, the cost is
 * refusing some old-but-valid messages, never accepting a replay.
 *
 * Check the signature first, then call check(): unsigned junk must not spend
 * the cache.
 */
export class ReplayCache {
  private readonly clock: Clock;
  readonly windowMs: number;
  readonly maxEntries: number;
  private readonly seen = new Map<string, number>();
  private readonly heap: Entry[] = [];
  private floor = Number.NEGATIVE_INFINITY;
  readonly stats = { accepted: 0, replayed: 0, stale: 0, evicted: 0 };

  constructor(opts: ReplayCacheOptions) {
    this.clock = opts.clock;
    this.windowMs = opts.windowMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 100_000;
    if (!(this.windowMs > 0) || !(this.maxEntries >= 1)) throw new RangeError('ReplayCache: bad window or size');
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * What check() would answer, remembering and counting nothing: lets a
   * receiver refuse a stale or replayed message before costly work (a key
   * lookup) and still call check() only once the signature verified.
   */
  peek(nonce: Uint8Array | string, timestampMs: number, scope = ''): ReplayVerdict {
    const now = this.clock.wallNow();
    if (!Number.isFinite(timestampMs) || Math.abs(timestampMs - now) > this.windowMs)
      return {
        ok: false,
        code: 'IDENTITY_STALE',
        reason: `timestamp ${timestampMs} outside ${this.windowMs} ms of now`,
      };
    if (timestampMs <= this.floor)
      return { ok: false, code: 'IDENTITY_STALE', reason: 'timestamp older than the replay cache remembers' };
    const key = `${scope}\u0000${typeof nonce === 'string' ? nonce : Buffer.from(nonce).toString('base64')}`;
    if (this.seen.has(key)) return { ok: false, code: 'IDENTITY_REPLAY', reason: 'nonce already seen' };
    return { ok: true };
  }

  /** Accept (and remember) or refuse a (scope, nonce, timestamp). `scope` is e.g. the sender's id. */
  check(nonce: Uint8Array | string, timestampMs: number, scope = ''): ReplayVerdict {
    const now = this.clock.wallNow();
    this.expire(now);
    if (!Number.isFinite(timestampMs) || Math.abs(timestampMs - now) > this.windowMs) {
      this.stats.stale++;
      return {
        ok: false,
        code: 'IDENTITY_STALE',
        reason: `timestamp ${timestampMs} outside ${this.windowMs} ms of now`,
      };
    }
    if (timestampMs <= this.floor) {
      this.stats.stale++;
      return { ok: false, code: 'IDENTITY_STALE', reason: 'timestamp older than the replay cache remembers' };
    }
    const key = `${scope}\u0000${typeof nonce === 'string' ? nonce : Buffer.from(nonce).toString('base64')}`;
    if (this.seen.has(key)) {
      this.stats.replayed++;
      return { ok: false, code: 'IDENTITY_REPLAY', reason: 'nonce already seen' };
    }
    while (this.seen.size >= this.maxEntries) {
      const old = this.pop() as Entry;
      this.seen.delete(old.key);
      this.floor = Math.max(this.floor, old.ts);
      this.stats.evicted++;
    }
    if (timestampMs <= this.floor) {
      this.stats.stale++;
      return { ok: false, code: 'IDENTITY_STALE', reason: 'timestamp older than the replay cache remembers' };
    }
    this.seen.set(key, timestampMs);
    this.push({ ts: timestampMs, key });
    this.stats.accepted++;
    return { ok: true };
  }

  /** Forget nonces whose timestamps have left the window (the window refuses them by itself). */
  private expire(now: number): void {
    while (this.heap.length > 0 && this.heap[0].ts < now - this.windowMs) {
      const e = this.pop() as Entry;
      this.seen.delete(e.key);
    }
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].ts <= h[i].ts) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].ts < h[m].ts) m = l;
        if (r < h.length && h[r].ts < h[m].ts) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}
