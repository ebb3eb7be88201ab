import type { Clock } from '../../util/clock.ts';
import type { Random } from '../../util/random.ts';
import type { NodeRef } from '../../rpc/types.ts';
import { MAX_WALK_BATCH, type WalkEnd } from './messages.ts';

/**
 * RandomWalkCache (seed 003 section 4.4). Asked for n walks of length s, it
 * serves them from its cache for that length or batches requests for walks of
 * length s - 1 to its active peers, chosen uniformly for each walk, asking for
 * enough to refill the cache too. At most one fill runs per length; a peer that
 * fails is marked inactive for a while. Length 0 is this node with a fresh
 * query token. Every walk is handed out once.
 */
export interface RandomWalkCacheDeps {
  clock: Clock;
  random: Random;
  /** This node's walk end (own ref and a fresh query token). */
  selfEnd(): WalkEnd;
  /** Peers a walk may step to (mutual and not marked inactive). */
  activePeers(): NodeRef[];
  /** Ask a peer for `count` walks of `length`; rejects on failure or refusal. */
  requestWalks(peer: NodeRef, length: number, count: number): Promise<WalkEnd[]>;
  markInactive(peer: NodeRef): void;
}

interface Cached {
  end: WalkEnd;
  /** Local time after which the token may have expired at its minter. */
  usableUntil: number;
}

export class RandomWalkCache {
  private readonly cache = new Map<number, Cached[]>();
  private readonly filling = new Map<number, Promise<number>>();
  /** Walks asked of peers for each fill on top of what the request needs. */
  readonly refill: number;
  private readonly usableMs: number;
  walksRequested = 0;

  constructor(
    private readonly deps: RandomWalkCacheDeps,
    opts: { refill?: number; tokenTtlMs: number },
  ) {
    this.refill = opts.refill ?? 8;
    // Tokens are timed by the minter's clock; keep a wide margin for skew and transit.
    this.usableMs = opts.tokenTtlMs / 2;
  }

  size(length: number): number {
    return this.cache.get(length)?.length ?? 0;
  }

  clear(): void {
    this.cache.clear();
  }

  /** Up to `count` independent walks of `length` (fewer only when peers cannot supply them). */
  async take(count: number, length: number): Promise<WalkEnd[]> {
    if (length === 0) return Array.from({ length: count }, () => this.deps.selfEnd());
    const out: WalkEnd[] = [];
    for (let rounds = 0; out.length < count && rounds < 4; ) {
      this.takeCached(length, count - out.length, out);
      if (out.length >= count) break;
      const running = this.filling.get(length);
      if (running) {
        await running;
        continue;
      }
      rounds++;
      const fill = this.fill(length, count - out.length + this.refill);
      this.filling.set(length, fill);
      let got = 0;
      try {
        got = await fill;
      } finally {
        this.filling.delete(length);
      }
      if (got === 0 && this.deps.activePeers().length === 0) break;
    }
    return out;
  }

  private takeCached(length: number, want: number, out: WalkEnd[]): void {
    const list = this.cache.get(length);
    if (!list) return;
    const now = this.deps.clock.now();
    while (want > 0 && list.length > 0) {
      const c = list.shift() as Cached;
      if (c.usableUntil <= now) continue;
      out.push(c.end);
      want--;
    }
  }

  /** One batch: each of `n` walks steps to a uniformly chosen active peer; returns how many arrived. */
  private async fill(length: number, n: number): Promise<number> {
    const peers = this.deps.activePeers();
    if (peers.length === 0) return 0;
    const counts = new Map<NodeRef, number>();
    for (let k = 0; k < n; k++) {
      const p = peers[this.deps.random.int(peers.length)];
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    const list = this.cache.get(length) ?? [];
    this.cache.set(length, list);
    let got = 0;
    await Promise.all(
      [...counts].map(async ([peer, c]) => {
        for (let done = 0; done < c; ) {
          const batch = Math.min(MAX_WALK_BATCH, c - done);
          done += batch;
          this.walksRequested += batch;
          try {
            const ends = await this.deps.requestWalks(peer, length - 1, batch);
            const until = this.deps.clock.now() + this.usableMs;
            for (const end of ends.slice(0, batch)) list.push({ end, usableUntil: until });
            got += Math.min(batch, ends.length);
          } catch {
            this.deps.markInactive(peer);
            return;
          }
        }
      }),
    );
    return got;
  }
}
