/**
 * Suspicion before removal. A Chord node that drops a neighbour on its
 * first unanswered RPC splits the ring as soon as a peer is merely busy: a
 * bootstrap storing a burst of registrations answered late, every adapter
 * dropped it, and it dropped them (the ring then stayed split). Here a
 * peer counts as failed only after `strikes` RPCs in a row went unanswered
 * AND the first of them is at least `graceMs` old; any answer, and any
 * request the peer sends us, clears the suspicion. A dead peer is still
 * dropped after about `graceMs` (two stabilize periods by default), and a
 * slow one that answers at all never is. A node that hears from nobody
 * doubts itself first (see `failed`).
 *
 * The timeout itself follows the observed round trips (RFC 6298 2.2-2.3:
 * RTO = SRTT + 4 RTTVAR), never below the configured one: a node whose own
 * event loop or whose peers are loaded waits longer instead of declaring
 * everyone dead.
 */
import type { Clock } from '../../util/clock.ts';

const MAX_TRACKED = 4096;
/** With no peer answering at all, how many grace periods before a silent peer counts as failed. */
const SELF_DOUBT_GRACES = 5;
/** An RPC timeout never grows past this, however slow the answers were. */
const MAX_RTO_MS = 30_000;
/** With no configured timeout, the RTO takes over only past this (the endpoints' defaults are 1-5 s). */
const UNCONFIGURED_FLOOR_MS = 5000;

export class FailureDetector {
  private readonly suspects = new Map<string, { strikes: number; since: number }>();
  /** When any peer last answered or called us. */
  private lastAliveAt = Number.NEGATIVE_INFINITY;
  /** Smoothed round trip and its variation (ms; 0 before the first answer). */
  srtt = 0;
  rttvar = 0;

  constructor(
    private readonly clock: Clock,
    readonly strikes: number,
    readonly graceMs: number,
  ) {}

  /** The peer answered or called us: not suspected any more. */
  alive(id: string): void {
    this.lastAliveAt = this.clock.now();
    if (this.suspects.size > 0) this.suspects.delete(id);
  }

  /** An RPC to the peer went unanswered. True when the peer now counts as failed (see `failed`). */
  missed(id: string): boolean {
    const now = this.clock.now();
    let s = this.suspects.get(id);
    if (!s) {
      if (this.suspects.size >= MAX_TRACKED) this.suspects.delete(this.suspects.keys().next().value as string);
      s = { strikes: 0, since: now };
      this.suspects.set(id, s);
    }
    s.strikes++;
    return this.failed(id);
  }

  /**
   * Has the peer missed `strikes` RPCs in a row, the first at least
   * `graceMs` ago, while some other peer answered us since? When nobody
   * answers, the fault is likely ours (our own event loop or link is
   * overloaded, or we are cut off): peers are then kept until
   * SELF_DOUBT_GRACES grace periods have passed, so a busy node does not
   * empty its own routing table; a node truly left alone still moves on.
   */
  failed(id: string): boolean {
    const s = this.suspects.get(id);
    if (s === undefined || s.strikes < this.strikes) return false;
    const silent = this.clock.now() - s.since;
    return silent >= this.graceMs && (this.lastAliveAt > s.since || silent >= SELF_DOUBT_GRACES * this.graceMs);
  }

  /** An RPC to the peer went unanswered and it has not answered or called since (suspected or failed). */
  doubted(id: string): boolean {
    return this.suspects.has(id);
  }

  /** Suspected but not yet failed. */
  suspected(id: string): boolean {
    return this.suspects.has(id) && !this.failed(id);
  }

  /** The peer answered at another id (a stale entry): failed at once. */
  condemn(id: string): void {
    this.suspects.set(id, { strikes: this.strikes, since: this.clock.now() - SELF_DOUBT_GRACES * this.graceMs });
  }

  /** Forget a peer that was removed (its entry would only age). */
  forget(id: string): void {
    this.suspects.delete(id);
  }

  sample(rttMs: number): void {
    if (this.srtt === 0) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
      return;
    }
    this.rttvar += (Math.abs(this.srtt - rttMs) - this.rttvar) / 4;
    this.srtt += (rttMs - this.srtt) / 8;
  }

  /** The timeout for the next RPC: the configured one, or longer when answers have been slow. */
  timeoutMs(configured: number | undefined): number | undefined {
    if (this.srtt === 0) return configured;
    const rto = Math.min(MAX_RTO_MS, Math.ceil(this.srtt + 4 * this.rttvar));
    // Unconfigured: the endpoint's own timeout applies (a few seconds), unless answers have been slower still.
    return rto > (configured ?? UNCONFIGURED_FLOOR_MS) ? rto : configured;
  }
}
