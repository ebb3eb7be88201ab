/**
 * Members this node lost, kept after they left its routing table. Chord's
 * stabilization repairs a ring only from the inside: after a partition each
 * side forms a consistent ring of its own and nothing ever links the two
 * again (the same holds for a node that fell out of the ring while it was
 * overloaded, and for the ring it fell out of). So a node remembers the
 * peers it removed as failed, and the anchors it was given (bootstraps),
 * and probes them with exponential backoff, forever; one that answers is
 * the way back into the other ring (see mergeThrough in ring-merge.ts).
 *
 * Bounded: at most `max` lost members (the oldest loss is forgotten
 * first); anchors are never forgotten. Probes are paced by the caller.
 */
import type { NodeRef } from '../../rpc/types.ts';
import type { Random } from '../../util/random.ts';

interface Entry {
  ref: NodeRef;
  nextAt: number;
  backoffMs: number;
  /** When it was last probed (or remembered). */
  lastAt: number;
  anchor: boolean;
  /** Lost, or its last probe went unanswered, and it has not answered or called since. */
  silent: boolean;
}

export class RememberedMembers {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly random: Random,
    /** First wait before probing a lost member, and the cap of its backoff (ms). */
    readonly firstMs: number,
    readonly maxMs: number,
    readonly max = 64,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** A member that stopped answering: probe it from `now + firstMs` on. */
  lost(ref: NodeRef, now: number): void {
    const had = this.entries.get(ref.id);
    if (had) return;
    if (this.entries.size >= this.max + this.anchors()) this.evictOldestLoss();
    this.entries.set(ref.id, {
      ref,
      nextAt: now + this.firstMs,
      backoffMs: this.firstMs,
      lastAt: now,
      anchor: false,
      silent: true,
    });
  }

  /** Nodes to come back through whenever this node is cut off (a ring's bootstraps). Kept forever. */
  anchor(ref: NodeRef, now: number): void {
    const had = this.entries.get(ref.id);
    if (had) {
      had.anchor = true;
      had.ref = ref;
      return;
    }
    this.entries.set(ref.id, {
      ref,
      nextAt: now + this.firstMs,
      backoffMs: this.firstMs,
      lastAt: now,
      anchor: true,
      silent: false,
    });
  }

  /** A lost member answered again (and was merged through): stop probing it. Anchors stay. */
  found(id: string, now: number): void {
    const e = this.entries.get(id);
    if (!e) return;
    if (!e.anchor) this.entries.delete(id);
    else {
      e.silent = false;
      // An anchor that answers is checked again at the slow pace: it may be in another ring later.
      e.backoffMs = this.maxMs;
      e.lastAt = now;
      e.nextAt = now + this.jittered(this.maxMs);
    }
  }

  /** A probe went unanswered: wait twice as long (up to maxMs) before the next. */
  missed(id: string, now: number): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.silent = true;
    e.backoffMs = Math.min(this.maxMs, e.backoffMs * 2);
    e.lastAt = now;
    e.nextAt = now + this.jittered(e.backoffMs);
    // To the back of the queue: the others get their turn first.
    this.entries.delete(id);
    this.entries.set(id, e);
  }

  /** A lost member called us: it is reachable again, probe it at the next chance. True when it had been silent. */
  wake(id: string, now: number): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    const was = e.silent;
    e.silent = false;
    if (!e.anchor) e.nextAt = Math.min(e.nextAt, now);
    return was;
  }

  /** Forget a member for good (it answered at another id: the entry is stale). Anchors stay. */
  drop(id: string): void {
    const e = this.entries.get(id);
    if (e && !e.anchor) this.entries.delete(id);
  }

  /**
   * Up to `count` members due for a probe at `now`. `urgent` (this node is
   * alone): every member not probed within `firstMs` is due, whatever its backoff.
   */
  due(now: number, count: number, urgent = false): NodeRef[] {
    const out: NodeRef[] = [];
    for (const e of this.entries.values()) {
      if (out.length >= count) break;
      if (e.nextAt <= now || (urgent && now - e.lastAt >= this.firstMs)) out.push(e.ref);
    }
    return out;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Lost or unanswered at its last probe, and not heard from since: not a node to send anything to first. */
  silent(id: string): boolean {
    return this.entries.get(id)?.silent === true;
  }

  private anchors(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.anchor) n++;
    return n;
  }

  private evictOldestLoss(): void {
    for (const [id, e] of this.entries)
      if (!e.anchor) {
        this.entries.delete(id);
        return;
      }
  }

  private jittered(ms: number): number {
    return ms * (0.75 + this.random.next() * 0.5);
  }
}
