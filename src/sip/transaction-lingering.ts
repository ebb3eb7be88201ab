import type { Clock, Timer } from '../util/clock.ts';
import type { SentBytes } from './transport.ts';

/**
 * A server transaction in its last phase, reduced to what that phase needs: RFC 3261 17.2.2 Completed resends
 * the final response for each retransmitted request until Timer J; 17.2.1 Confirmed absorbs ACKs and
 * retransmitted INVITEs until Timer I (and a CANCEL still gets 200 with the INVITE's To tag, 9.2).
 */
export interface LingeringTransaction {
  readonly key: string;
  /** Clock time at which the phase ends (Timer J or I fires). */
  readonly until: number;
  /** The final response as sent, for 17.2.2; undefined when retransmissions are only absorbed. */
  readonly bytes: SentBytes | undefined;
  /** The To tag of an INVITE transaction's responses. */
  readonly toTag: string | undefined;
}

/** Entries are dropped in batches this far apart; lookups treat an entry as gone from its `until` on. */
const SWEEP_SLACK_MS = 250;

/**
 * The lingering server transactions of a transaction layer. One clock timer serves them all: every entry of
 * one duration expires in the order it was added (Timer J and Timer I are constants), so each duration is a
 * first-in first-out queue and only the heads need watching.
 */
export class Lingering {
  private readonly clock: Clock;
  private readonly byKey = new Map<string, LingeringTransaction>();
  /** Per duration: the entries in order of expiry, and the index of the first still queued. */
  private readonly queues = new Map<number, { items: Array<LingeringTransaction | undefined>; head: number }>();
  private timer: Timer | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The lingering transaction with this key, if its phase has not ended. */
  get(key: string): LingeringTransaction | undefined {
    const e = this.byKey.get(key);
    if (e === undefined) return undefined;
    if (e.until > this.clock.now()) return e;
    this.byKey.delete(key);
    return undefined;
  }

  add(key: string, bytes: SentBytes | undefined, toTag: string | undefined, ms: number): void {
    const e: LingeringTransaction = { key, until: this.clock.now() + ms, bytes, toTag };
    this.byKey.set(key, e);
    let q = this.queues.get(ms);
    if (q === undefined) {
      q = { items: [], head: 0 };
      this.queues.set(ms, q);
    }
    q.items.push(e);
    if (q.items.length - q.head === 1) this.arm(e.until);
  }

  private arm(at: number): void {
    const when = at + SWEEP_SLACK_MS;
    if (this.timer !== undefined && this.timerAt <= when) return;
    this.timer?.cancel();
    this.timerAt = when;
    this.timer = this.clock.setTimer(when - this.clock.now(), () => this.sweep());
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const q of this.queues.values()) {
      const items = q.items;
      for (let e = items[q.head]; e !== undefined && e.until <= now; e = items[q.head]) {
        // The slot is cleared at once: an expired entry must not wait for the next compaction to be freed.
        items[q.head++] = undefined;
        if (this.byKey.get(e.key) === e) this.byKey.delete(e.key);
      }
      if (q.head === items.length) {
        items.length = 0;
        q.head = 0;
      } else {
        // Drop the expired prefix once it is the larger part, so the queue does not grow without bound.
        if (q.head > 1024 && q.head * 2 > items.length) {
          q.items = items.slice(q.head);
          q.head = 0;
        }
        next = Math.min(next, (q.items[q.head] as LingeringTransaction).until);
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
}
