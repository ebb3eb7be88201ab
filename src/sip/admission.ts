import type { Clock } from '../util/clock.ts';

/** What happens to a request that would start a new server transaction. */
export type Admission = 'admit' | 'reject' | 'drop';

/**
 * The kernel's receive queue of the datagram socket the requests arrive on (its SO_RCVBUF, which the kernel
 * doubles and fills with each datagram's whole buffer, about 1-2 KB for a SIP request).
 */
export interface ReceiveQueue {
  setBytes(bytes: number): void;
}

export interface AdmissionInit {
  /** Load is measured over windows this long (ms). */
  windowMs?: number;
  /** Busy fraction of a window at or above which the process counts as saturated. */
  highWater?: number;
  /** Busy fraction below which the admitted rate may grow again. */
  lowWater?: number;
  /**
   * New requests beyond the admitted rate are answered 503 up to this multiple of it (default 4: a 503 written
   * from the request's bytes costs a small fraction of serving, and a dropped request over UDP returns up to six
   * times); beyond that they are dropped unanswered.
   */
  rejectShare?: number;
  /** The admitted rate never goes below this (requests/s). */
  minRate?: number;
  /** Retry-After of the 503s (RFC 3261 20.33), seconds. */
  retryAfterS?: number;
  /** The receive queue's size while the process is not saturated (bytes, default 4 MiB: bursts are not lost). */
  queueBytes?: number;
  /** While saturated the receive queue holds about this long of the process's work (ms, default 100). */
  boundedQueueMs?: number;
  /** Bytes of receive queue one request takes (default 2048). */
  datagramBytes?: number;
  /** While the queue is bounded, 503s go to at most this share of the admitted rate (default 0.05). */
  boundedRejectShare?: number;
}

export interface AdmissionStats {
  admitted: number;
  rejected: number;
  dropped: number;
  /** Windows in which the process was saturated. */
  saturatedWindows: number;
  /** Times the receive queue was bounded. */
  queueBounded: number;
}

/**
 * Admission control in front of the transaction layer: the answer to overload is to serve what the process can
 * and to refuse the rest early and cheaply, so that queues (the socket buffer, retransmission timers) never build
 * up. An unbounded queue is what makes a SIP server's overload metastable: requests wait longer than T1, clients
 * retransmit, the retransmissions are more load, and goodput collapses and stays collapsed (RFC 6357 section 3,
 * RFC 7339 section 1).
 *
 * The core measures how busy the process was in each window (`busyMs`: cumulative busy milliseconds, from the
 * event loop), how many requests it admitted and how many retransmissions of admitted ones came back (the layer
 * tells it: a sign that requests waited about T1). While the process is never both saturated and late there is no
 * limit. Three such windows in a row (late: retransmissions for 5 % of what it took) set the admitted rate to the
 * best the process admitted per busy second in the last two seconds times
 * `lowWater`; later windows both saturated and late lower it by 10 %, not below half that first estimate
 * (saturated alone holds it), windows below `lowWater` with demand above the limit raise
 * it (by 5 %, or to the capacity that window's work shows), and a second without any shedding lifts the limit.
 * Requests beyond the limit are answered 503 with Retry-After (they create no transaction, so no Timer G or J) up
 * to `rejectShare` times the admitted rate, and dropped beyond that (over UDP a dropped request comes back up to
 * six times, so refusing is the cheaper answer as long as the refusals are cheap). Retransmissions of admitted transactions are
 * answered from transaction state by the layer.
 *
 * Over UDP the cheapest refusal is the kernel's. With a receive queue attached (`boundQueue`), the first saturated
 * window shrinks the socket's receive buffer to about `boundedQueueMs` of the work the process does per second:
 * what arrives beyond that is dropped by the kernel at no cost to this process, and what is read has waited at
 * most that long, well below T1, so clients do not retransmit requests the process has already taken. Everything
 * read is then served: refusing or dropping it here would cost CPU that serving it turns into goodput (a 503 from
 * the request's bytes costs about a third of a 302 on loopback, send and ACK included; a request dropped here
 * comes back up to six times). Only a small share (`boundedRejectShare` of the admitted rate) of the requests
 * beyond the admitted rate is answered 503 with Retry-After, for clients that back off. The queue is given back
 * its size after a second below `lowWater` with no request beyond the limit. This is how a single-threaded
 * stateless server keeps its goodput at its capacity however far the offered load goes beyond it (RFC 6357
 * section 3: the work spent on requests that are not served is what makes overload collapse).
 */
export class AdmissionControl {
  private readonly clock: Clock;
  private readonly busyMs: () => number;
  private readonly windowMs: number;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly rejectShare: number;
  private readonly minRate: number;
  readonly retryAfterS: number;
  private readonly queueBytes: number;
  private readonly boundedQueueMs: number;
  private readonly datagramBytes: number;
  private readonly boundedRejectShare: number;
  private queue: ReceiveQueue | undefined;
  /** Whether the receive queue is bounded now. */
  private bounded = false;
  private lastSaturatedAt = Number.NEGATIVE_INFINITY;
  /** Admitted requests per second; +Infinity while there is no limit. */
  private limit = Number.POSITIVE_INFINITY;
  private windowStart: number;
  private busyAtStart: number;
  private admittedInWindow = 0;
  private shedInWindow = 0;
  private retransmittedInWindow = 0;
  /** The highest admitted rate of a window in the last two seconds, and when it was seen. */
  private peakPerS = 0;
  private peakAt = 0;
  /** The first limit set in this episode of overload: the capacity estimate (times lowWater). */
  private estimate = 0;
  /** Clock time until which the process counts as late (its clients were retransmitting). */
  private lateUntil = Number.NEGATIVE_INFINITY;
  /** Consecutive windows both saturated and late. */
  private saturatedRun = 0;
  private lastShedAt = Number.NEGATIVE_INFINITY;
  /** Token buckets for admitting and for answering 503, refilled at `limit` and `limit * rejectShare` per second. */
  private admitTokens = 0;
  private rejectTokens = 0;
  private refilledAt: number;
  readonly stats: AdmissionStats = { admitted: 0, rejected: 0, dropped: 0, saturatedWindows: 0, queueBounded: 0 };

  constructor(components: { clock: Clock; busyMs: () => number }, init: AdmissionInit = {}) {
    this.clock = components.clock;
    this.busyMs = components.busyMs;
    this.windowMs = init.windowMs ?? 100;
    this.highWater = init.highWater ?? 0.98;
    this.lowWater = init.lowWater ?? 0.93;
    this.rejectShare = init.rejectShare ?? 16;
    this.minRate = init.minRate ?? 50;
    this.retryAfterS = init.retryAfterS ?? 1;
    this.queueBytes = init.queueBytes ?? 4 * 1024 * 1024;
    this.boundedQueueMs = init.boundedQueueMs ?? 100;
    this.datagramBytes = init.datagramBytes ?? 2048;
    this.boundedRejectShare = init.boundedRejectShare ?? 0.05;
    this.windowStart = this.refilledAt = this.clock.now();
    this.busyAtStart = this.busyMs();
  }

  /**
   * The receive queue of the socket the requests come in on: bounded while the process is saturated. Set by the
   * transport that reads the datagrams.
   */
  boundQueue(queue: ReceiveQueue): void {
    this.queue = queue;
    queue.setBytes(this.queueBytes);
  }

  /** Whether the receive queue is bounded now (the process is saturated). */
  get queueIsBounded(): boolean {
    return this.bounded;
  }

  /** Whether a limit is in force (the process was saturated lately). */
  get limiting(): boolean {
    return this.limit !== Number.POSITIVE_INFINITY;
  }

  /** The admitted rate limit (requests/s), +Infinity when there is none. */
  get rate(): number {
    return this.limit;
  }

  /** Decide for one request that would start a new server transaction. */
  classify(): Admission {
    const now = this.clock.now();
    if (now - this.windowStart >= this.windowMs) this.closeWindow(now);
    if (this.limit === Number.POSITIVE_INFINITY) {
      this.admittedInWindow++;
      this.stats.admitted++;
      return 'admit';
    }
    this.refill(now);
    if (this.admitTokens >= 1) {
      this.admitTokens--;
      this.admittedInWindow++;
      this.stats.admitted++;
      return 'admit';
    }
    this.shedInWindow++;
    this.lastShedAt = now;
    if (this.rejectTokens >= 1) {
      this.rejectTokens--;
      this.stats.rejected++;
      return 'reject';
    }
    if (this.bounded) {
      // The kernel sheds what the bounded queue cannot hold; what was read is served.
      this.admittedInWindow++;
      this.stats.admitted++;
      return 'admit';
    }
    this.stats.dropped++;
    return 'drop';
  }

  private refill(now: number): void {
    const dt = (now - this.refilledAt) / 1000;
    this.refilledAt = now;
    // A bucket holds at most one window's worth, so a quiet moment does not let a burst through.
    const cap = (this.limit * this.windowMs) / 1000;
    this.admitTokens = Math.min(Math.max(cap, 1), this.admitTokens + dt * this.limit);
    const share = this.bounded ? this.boundedRejectShare : this.rejectShare;
    this.rejectTokens = Math.min(Math.max(cap * share, 1), this.rejectTokens + dt * this.limit * share);
  }

  private closeWindow(now: number): void {
    const elapsed = now - this.windowStart;
    if (now - this.peakAt >= 2000) this.peakPerS = 0;
    const busy = this.busyMs();
    const u = elapsed > 0 ? (busy - this.busyAtStart) / elapsed : 0;
    const admittedPerS = (this.admittedInWindow * 1000) / elapsed;
    if (admittedPerS > this.peakPerS) {
      this.peakPerS = admittedPerS;
      this.peakAt = now;
    }
    // Late: clients retransmit requests the process has already taken, so requests waited about T1 or more.
    // Retransmissions come in bursts (T1 apart), so for setting a first limit lateness is remembered for a second.
    const lateNow = this.retransmittedInWindow >= Math.max(3, 0.05 * this.admittedInWindow);
    if (lateNow) this.lateUntil = now + 1000;
    const late = now < this.lateUntil;
    if (u >= this.highWater) {
      this.stats.saturatedWindows++;
      this.lastSaturatedAt = now;
      if (this.queue !== undefined && !this.bounded) {
        // The best rate of the last two seconds (this window's may be low: it is the one that saturated).
        const perS = Math.max(this.peakPerS, admittedPerS / Math.max(u, 1e-3), this.minRate);
        this.queue.setBytes(Math.max(64 * 1024, Math.round((perS * this.boundedQueueMs * this.datagramBytes) / 1000)));
        this.bounded = true;
        this.stats.queueBounded++;
      }
      this.saturatedRun = late ? this.saturatedRun + 1 : 0;
      // Busy alone is no overload: a process starved of CPU by others, a garbage collection or code being compiled
      // at start keep the loop busy without a queue. Busy for 300 ms while late is.
      if (this.limit === Number.POSITIVE_INFINITY && this.saturatedRun < 3) {
        // not yet
      } else if (this.limit === Number.POSITIVE_INFINITY) {
        // What one busy second served, scaled to leave headroom: the first estimate of capacity.
        // The windows that showed the overload are the slowest (retransmissions to answer); the best of the last
        // two seconds is the better estimate.
        this.limit = Math.max(this.minRate, Math.max(this.peakPerS, admittedPerS / Math.max(u, 1e-3)) * this.lowWater);
        this.admitTokens = (this.limit * this.windowMs) / 1000;
        this.rejectTokens = this.admitTokens * (this.bounded ? this.boundedRejectShare : this.rejectShare);
        this.refilledAt = now;
        this.estimate = this.limit;
      } else if (lateNow)
        // Busy and still late: requests still wait, so take fewer, but never fewer than half the first estimate.
        // Busy but no longer late holds the limit: the refusals themselves keep the process busy, and a limit
        // ratcheting down for them would end in refusing everything, the collapse this class exists to prevent.
        this.limit = Math.max(this.minRate, this.estimate * 0.5, Math.min(this.limit, admittedPerS) * 0.9);
    } else {
      this.saturatedRun = 0;
      if (this.limit !== Number.POSITIVE_INFINITY && u < this.lowWater) {
        if (now - this.lastShedAt >= 1000) this.limit = Number.POSITIVE_INFINITY;
        else if (this.shedInWindow > 0) {
          // Room to spare and demand above the limit: grow by 5 %, or at once to what this window's work says
          // the process can serve when that is more (the first estimate may come from a slow, warming-up process).
          this.limit = Math.max(this.limit * 1.05, (admittedPerS / Math.max(u, 0.05)) * this.lowWater);
        }
      }
    }
    if (
      this.bounded &&
      this.limit === Number.POSITIVE_INFINITY &&
      now - this.lastSaturatedAt >= 1000 &&
      now - this.lastShedAt >= 1000
    ) {
      this.queue?.setBytes(this.queueBytes);
      this.bounded = false;
    }
    this.windowStart = now;
    this.busyAtStart = busy;
    this.admittedInWindow = 0;
    this.shedInWindow = 0;
    this.retransmittedInWindow = 0;
  }

  /** A retransmission of a request the process already took (answered from transaction state). */
  noteRetransmission(): void {
    this.retransmittedInWindow++;
  }
}
