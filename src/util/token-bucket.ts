/**
 * Token buckets keyed by a string (a node key, a source address), on the
 * injected clock. Each key may spend `burst` tokens at once and earns
 * `perSecond` back. The table is bounded: past `maxKeys`, buckets that are
 * full again (indistinguishable from new ones) are forgotten first, then the
 * oldest.
 */
import type { Clock } from './clock.ts';

export interface TokenBucketLimit {
  burst: number;
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly clock: Clock;
  private readonly limit: TokenBucketLimit;
  private readonly maxKeys: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(clock: Clock, limit: TokenBucketLimit, maxKeys = 100_000) {
    this.clock = clock;
    this.limit = limit;
    this.maxKeys = maxKeys;
  }

  private level(b: Bucket, now: number): number {
    return Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
  }

  /** Would `take` succeed now (spends nothing). */
  allows(key: string): boolean {
    const b = this.buckets.get(key);
    return b === undefined || this.level(b, this.clock.now()) >= 1;
  }

  /** How long until `key` may spend a token again (0 when it may now). */
  waitMs(key: string): number {
    const b = this.buckets.get(key);
    const level = b === undefined ? this.limit.burst : this.level(b, this.clock.now());
    if (level >= 1) return 0;
    // Less a hair, so float error in the refill does not round a whole number of ms up.
    return this.limit.perSecond > 0
      ? Math.ceil(((1 - level) / this.limit.perSecond) * 1000 - 1e-6)
      : Number.POSITIVE_INFINITY;
  }

  /** Spend one token for `key`; false (nothing spent) when its bucket is empty. */
  take(key: string): boolean {
    const now = this.clock.now();
    const b = this.buckets.get(key);
    const level = b === undefined ? this.limit.burst : this.level(b, now);
    if (level < 1) return false;
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      this.buckets.set(key, { tokens: level - 1, at: now });
    } else {
      b.tokens = level - 1;
      b.at = now;
    }
    return true;
  }

  private evict(now: number): void {
    for (const [k, b] of this.buckets) if (this.level(b, now) >= this.limit.burst) this.buckets.delete(k);
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }
}
