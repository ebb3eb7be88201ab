/**
 * Injected time source. Protocol cores never read the wall clock or call
 * setTimeout themselves: daemons use SystemClock, tests and the simulator use
 * SimClock, which only moves when told to.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; monotonic within one process. */
  now(): number;
  /** Wall-clock milliseconds since the epoch (for signed timestamps). */
  wallNow(): number;
  setTimer(delayMs: number, fn: () => void): Timer;
}

export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  }
}

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Discrete-event clock. Timers fire in (time, insertion) order when the clock
 * is advanced; a binary heap keeps this fast with millions of timers.
 */
export class SimClock implements Clock {
  private t: number;
  private readonly epoch: number;
  private seq = 0;
  private heap: Pending[] = [];

  constructor(start = 0, epochMs = Date.UTC(2026, 0, 1)) {
    this.t = start;
    this.epoch = epochMs;
  }

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.epoch + this.t;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const p: Pending = { at: this.t + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }

  /** Number of timers still scheduled (including cancelled ones not yet popped). */
  get pending(): number {
    return this.heap.length;
  }

  /** Time of the next live timer, or undefined. */
  nextAt(): number | undefined {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    return this.heap[0]?.at;
  }

  /** Run every timer due at or before now + ms, then set the clock to now + ms. */
  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }

  runUntil(target: number): void {
    for (;;) {
      const next = this.nextAt();
      if (next === undefined || next > target) break;
      const p = this.pop() as Pending;
      this.t = Math.max(this.t, p.at);
      p.fn();
    }
    this.t = Math.max(this.t, target);
  }

  /** Run until no timers remain or the limit is reached; returns true if drained. */
  runAll(limitMs = Number.POSITIVE_INFINITY): boolean {
    const end = this.t + limitMs;
    for (;;) {
      const next = this.nextAt();
      if (next === undefined) return true;
      if (next > end) {
        this.t = end;
        return false;
      }
      const p = this.pop() as Pending;
      this.t = Math.max(this.t, p.at);
      p.fn();
    }
  }

  private less(a: Pending, b: Pending): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(p: Pending): void {
    const h = this.heap;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  private pop(): Pending | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop() as Pending;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
