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
 *
 * The refill is for this node's own walks (LOOKUP). Walks a peer asks for are
 * passed through: served from the cache when it has them, otherwise fetched
 * exactly as many for that request alone. Refilling at every hop would make
 * one walk on cold caches (as right after SETUP, which carries its questions
 * along its walks and leaves these caches empty) ask count + refill walks of
 * each peer it steps to, whose walks ask as many again: about n * w * refill
 * walks across the network, seconds of work that the first lookups wait for.
 * Passing through keeps a walk's cost at one request per hop, and a peer
 * asking for c walks makes this node ask for at most c.
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

  /**
   * Up to `count` independent walks of `length` (fewer only when peers cannot
   * supply them). `refill` 0 passes the request through (see above).
   */
  async take(count: number, length: number, refill = this.refill): Promise<WalkEnd[]> {
    if (length === 0) return Array.from({ length: count }, () => this.deps.selfEnd());
    const out: WalkEnd[] = [];
    for (let rounds = 0; out.length < count && rounds < 4; ) {
      this.takeCached(length, count - out.length, out);
      if (out.length >= count) break;
      if (refill === 0) {
        rounds++;
        // Pass-through: this request's own fetch, not queued behind a shared fill.
        const mine: Cached[] = [];
        const got = await this.fill(length, count - out.length, mine);
        for (const c of mine) out.push(c.end);
        if (got === 0 && this.deps.activePeers().length === 0) break;
        continue;
      }
      const running = this.filling.get(length);
      if (running) {
        await running;
        continue;
      }
      rounds++;
      const fill = this.fill(length, count - out.length + refill, this.list(length));
      this.filling.set(length, fill);
      let got = 0;
      try {
        got = await fill;
      } finally {
        this.filling.delete(length);
      }
      if (got === 0 && this.deps.activePeers().length === 0) break;
    }
    return out.slice(0, count);
  }

  private list(length: number): Cached[] {
    let list = this.cache.get(length);
    if (!list) {
      list = [];
      this.cache.set(length, list);
    }
    return list;
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

  /** One batch into `list`: each of `n` walks steps to a uniformly chosen active peer; returns how many arrived. */
  private async fill(length: number, n: number, list: Cached[]): Promise<number> {
    const peers = this.deps.activePeers();
    if (peers.length === 0) return 0;
    const counts = new Map<NodeRef, number>();
    for (let k = 0; k < n; k++) {
      const p = peers[this.deps.random.int(peers.length)];
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
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
