import type { Clock, Timer } from '../util/clock.ts';

/** One scheduled call of a TimerQueue; `cancel` is cheap and may be called at any time, also after it fired. */
export interface QueuedTimer extends Timer {
  /** Clock time at which it fires. */
  readonly at: number;
}

class Entry implements QueuedTimer {
  readonly at: number;
  fn: (() => void) | undefined;
  private readonly owner: TimerQueue;

  constructor(at: number, fn: () => void, owner: TimerQueue) {
    this.at = at;
    this.fn = fn;
    this.owner = owner;
  }

  cancel(): void {
    if (this.fn === undefined) return;
    this.fn = undefined;
    this.owner.noteCancelled();
  }
}

interface Fifo {
  items: Array<Entry | undefined>;
  head: number;
}

/** Cancelled entries tolerated in the queues before they are swept out (and only when they are the larger part). */
const COMPACT_AT = 1024;

/**
 * The timers of a transaction layer on one clock timer. RFC 3261 transaction timers take few distinct durations
 * (T1 and its doublings up to T2 for Timers A, E and G; 64*T1 for B, F, H and J; T4 for I and K; 200 ms for a
 * deferred 100 Trying), so the timers of one duration expire in the order they were set: each duration is a
 * first-in first-out queue and only the heads need watching. Setting a timer costs an array push instead of a
 * clock timer of its own; cancelling one marks it, and marked entries are dropped when they reach the head or,
 * when they pile up (an INVITE answered and ACKed at once cancels Timers G and H), in one sweep.
 *
 * Each timer fires at its own time on the clock (a SimClock gives the exact instant), in the order of the times.
 */
export class TimerQueue {
  private readonly clock: Clock;
  private readonly queues = new Map<number, Fifo>();
  private timer: Timer | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private queued = 0;
  private cancelled = 0;
  private firing = false;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Timers set and neither fired nor swept out (cancelled ones may count until they are). */
  get size(): number {
    return this.queued;
  }

  set(delayMs: number, fn: () => void): QueuedTimer {
    const ms = delayMs > 0 ? delayMs : 0;
    const e = new Entry(this.clock.now() + ms, fn, this);
    let q = this.queues.get(ms);
    if (q === undefined) {
      q = { items: [], head: 0 };
      this.queues.set(ms, q);
    }
    q.items.push(e);
    this.queued++;
    if (!this.firing && e.at < this.timerAt) this.arm(e.at);
    return e;
  }

  /** @internal an entry was cancelled */
  noteCancelled(): void {
    this.cancelled++;
    if (this.cancelled > COMPACT_AT && this.cancelled * 2 > this.queued) this.compact();
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimer(at - this.clock.now(), () => this.fire());
  }

  /** Fires every entry that is due, earliest first, then arms the clock timer for the next one. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.firing = true;
    try {
      for (;;) {
        const now = this.clock.now();
        let best: Fifo | undefined;
        let bestAt = Number.POSITIVE_INFINITY;
        for (const q of this.queues.values()) {
          const e = this.headOf(q);
          if (e !== undefined && e.at < bestAt) {
            best = q;
            bestAt = e.at;
          }
        }
        if (best === undefined || bestAt > now) break;
        const e = best.items[best.head] as Entry;
        best.items[best.head++] = undefined;
        this.queued--;
        this.trim(best);
        const fn = e.fn;
        e.fn = undefined;
        // A throwing callback must not stop the others (a clock timer's callback would not stop them either).
        if (fn !== undefined) fn();
      }
    } finally {
      this.firing = false;
      let next = Number.POSITIVE_INFINITY;
      for (const q of this.queues.values()) {
        const e = this.headOf(q);
        if (e !== undefined && e.at < next) next = e.at;
      }
      if (next !== Number.POSITIVE_INFINITY) this.arm(next);
    }
  }

  /** The first live entry of a queue, dropping cancelled ones before it. */
  private headOf(q: Fifo): Entry | undefined {
    const items = q.items;
    while (q.head < items.length) {
      const e = items[q.head] as Entry;
      if (e.fn !== undefined) return e;
      items[q.head++] = undefined;
      this.queued--;
      this.cancelled--;
    }
    this.trim(q);
    return undefined;
  }

  /** Frees the consumed prefix of a queue once it is empty or the prefix is the larger part. */
  private trim(q: Fifo): void {
    if (q.head === q.items.length) {
      q.items.length = 0;
      q.head = 0;
    } else if (q.head > 1024 && q.head * 2 > q.items.length) {
      q.items = q.items.slice(q.head);
      q.head = 0;
    }
  }

  private compact(): void {
    for (const q of this.queues.values()) {
      const live: Entry[] = [];
      for (let i = q.head; i < q.items.length; i++) {
        const e = q.items[i] as Entry;
        if (e.fn !== undefined) live.push(e);
      }
      q.items = live;
      q.head = 0;
    }
    let n = 0;
    for (const q of this.queues.values()) n += q.items.length;
    this.queued = n;
    this.cancelled = 0;
  }
}
