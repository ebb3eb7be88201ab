/**
 * Links the layer above wants open before it needs them (a Chord node: its
 * successors, predecessor and fingers, and on a small ring every node it
 * knows), so that a lookup never waits for a TCP and TLS handshake on its
 * path. The endpoint's idle sweep leaves these links open, and a missing one
 * is dialed in the background, a few at a time, with a backoff after a
 * failed dial so a node that is down costs one dial per backoff period.
 *
 * Two nodes that want each other would otherwise dial at the same moment and
 * end up with two links: the node with the smaller key dials at once, the
 * other only when no link came up within `graceMs`.
 */
import type { Clock, Timer } from '../util/clock.ts';
import type { NodeRef } from './types.ts';
import { keyHex } from './tls-dial.ts';

export interface LinkDialer {
  readonly self: NodeRef;
  readonly clock: Clock;
  /** Is a link to `to` open or being dialed? */
  linked(to: NodeRef): boolean;
  /** Open a link to `to`; resolves true once it is up, false when the dial failed. */
  open(to: NodeRef): Promise<boolean>;
}

export interface LinkKeeperOptions {
  /** Background dials at once. */
  concurrency: number;
  /** How long the node with the greater key waits for the other to dial first. */
  graceMs: number;
  /** After a failed background dial, the same peer is not dialed again before this. */
  retryMs: number;
}

export const DEFAULT_LINK_KEEPER: Readonly<LinkKeeperOptions> = Object.freeze({
  concurrency: 4,
  graceMs: 1000,
  retryMs: 10_000,
});

export class LinkKeeper {
  private wanted = new Map<string, NodeRef>();
  /** When each wanted peer was first wanted (for the grace period). */
  private since = new Map<string, number>();
  private readonly retryAt = new Map<string, number>();
  private readonly dialing = new Set<string>();
  private readonly selfHex: string;
  private timer: Timer | null = null;
  /** Background dials started, and those that failed. */
  readonly counters = { dials: 0, failed: 0 };

  constructor(
    private readonly host: LinkDialer,
    private readonly opts: LinkKeeperOptions = DEFAULT_LINK_KEEPER,
  ) {
    this.selfHex = keyHex(host.self.key);
  }

  /** Replace the set of peers whose links are kept; missing links are dialed in the background. */
  keep(refs: readonly NodeRef[]): void {
    const now = this.host.clock.now();
    const next = new Map<string, NodeRef>();
    const since = new Map<string, number>();
    for (const r of refs) {
      const k = keyHex(r.key);
      if (k === this.selfHex || next.has(k)) continue;
      next.set(k, r);
      since.set(k, this.since.get(k) ?? now);
    }
    this.wanted = next;
    this.since = since;
    this.pump();
  }

  /** A link closed (the peer closed it, or it failed): wanted ones are dialed again (after any retry delay). */
  linkClosed(peerKeyHex: string): void {
    if (this.wanted.has(peerKeyHex)) this.pump();
  }

  /** Look again once a grace period ends (one timer for all). */
  private later(ms: number): void {
    if (this.timer !== null) return;
    this.timer = this.host.clock.setTimer(ms + 1, () => {
      this.timer = null;
      this.pump();
    });
  }

  /** Forget every wanted link and stop the timer (the endpoint is closing). */
  stop(): void {
    this.wanted.clear();
    this.timer?.cancel();
    this.timer = null;
  }

  /** Is the link to the peer with this key wanted (the idle sweep leaves it open)? */
  keeps(peerKeyHex: string): boolean {
    return this.wanted.has(peerKeyHex);
  }

  get size(): number {
    return this.wanted.size;
  }

  private pump(): void {
    const now = this.host.clock.now();
    for (const [k, ref] of this.wanted) {
      if (this.dialing.size >= this.opts.concurrency) return;
      if (this.dialing.has(k) || this.host.linked(ref)) continue;
      if ((this.retryAt.get(k) ?? 0) > now) continue;
      const waited = now - (this.since.get(k) ?? now);
      if (k < this.selfHex && waited < this.opts.graceMs) {
        this.later(this.opts.graceMs - waited);
        continue;
      }
      this.dialing.add(k);
      this.counters.dials++;
      void this.host.open(ref).then((up) => {
        this.dialing.delete(k);
        if (up) this.retryAt.delete(k);
        else {
          this.counters.failed++;
          this.retryAt.set(k, this.host.clock.now() + this.opts.retryMs);
          if (this.retryAt.size > 4096) this.retryAt.clear();
        }
        this.pump();
      });
    }
  }
}
