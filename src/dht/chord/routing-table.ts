import type { NodeRef } from '../../rpc/types.ts';
import { compareFrom, distance, ID_BITS, inOpen, lastFingerCovered } from '../store/ring-id.ts';

/**
 * The successor list of r entries (Stoica et al. 2003, section V-B): the
 * first live entry is the successor; the rest take over when it fails and
 * hold the key's replicas.
 */
export class SuccessorList {
  private list: NodeRef[];

  constructor(
    private readonly self: NodeRef,
    readonly r: number,
  ) {
    this.list = [self];
  }

  get first(): NodeRef {
    return this.list[0] ?? this.self;
  }

  entries(): readonly NodeRef[] {
    return this.list;
  }

  /** stabilize(): take the successor's list, prepend the successor, drop the last (section V-B). */
  adopt(succ: NodeRef, theirs: readonly NodeRef[]): boolean {
    const next: NodeRef[] = [succ];
    for (const r of theirs) {
      if (next.length >= this.r) break;
      if (r.id === this.self.id) break;
      // Keep the list in ring order after succ; anything else is stale or a lie.
      if (compareFrom(this.self.id, next[next.length - 1].id, r.id) < 0) next.push(r);
    }
    const changed = next.length !== this.list.length || next.some((r, i) => r.id !== this.list[i].id);
    this.list = next;
    return changed;
  }

  /** A closer successor appeared (stabilize found succ.predecessor in (n, succ)). */
  prepend(ref: NodeRef): void {
    this.list = [ref, ...this.list.filter((r) => r.id !== ref.id && r.id !== this.self.id)].slice(0, this.r);
  }

  remove(id: string): boolean {
    const before = this.list.length;
    this.list = this.list.filter((r) => r.id !== id);
    if (this.list.length === 0) this.list = [this.self];
    return this.list.length !== before;
  }
}

/**
 * Finger table (section IV-D): finger[i] = successor(n + 2^i). Routing only
 * needs the distinct entries, kept sorted by clockwise distance from n so
 * closest-preceding-node is a short scan from the far end.
 */
export class FingerTable {
  private readonly fingers: (NodeRef | undefined)[] = new Array(ID_BITS);
  private table: NodeRef[] = [];
  private dirty = false;
  /** Next finger index fix_fingers() refreshes. */
  next = 0;

  constructor(private readonly self: NodeRef) {}

  get(i: number): NodeRef | undefined {
    return this.fingers[i];
  }

  set(i: number, ref: NodeRef): void {
    if (this.fingers[i]?.id === ref.id) return;
    this.fingers[i] = ref;
    this.dirty = true;
  }

  /** Set every finger from index i up whose start lies in (n, ref] to ref; returns the first index not covered. */
  fill(from: number, ref: NodeRef): number {
    const last = lastFingerCovered(this.self.id, ref.id);
    for (let i = from; i <= last; i++) {
      if (this.fingers[i]?.id === ref.id) continue;
      this.fingers[i] = ref;
      this.dirty = true;
    }
    return Math.max(from, last + 1);
  }

  remove(id: string): void {
    for (let i = 0; i < ID_BITS; i++)
      if (this.fingers[i]?.id === id) {
        this.fingers[i] = undefined;
        this.dirty = true;
      }
  }

  /** Distinct fingers, nearest first. */
  distinct(): readonly NodeRef[] {
    if (this.dirty) this.rebuild();
    return this.table;
  }

  /**
   * closest_preceding_node (Fig. 5), generalised: up to `count` known nodes
   * in (n, target), closest to target first, drawn from the fingers and the
   * successor list.
   */
  closestPreceding(target: string, succs: readonly NodeRef[], count: number): NodeRef[] {
    if (this.dirty) this.rebuild();
    const self = this.self.id;
    // Both lists are in clockwise order from n: walk each back from its last
    // entry inside (n, target) and merge, farthest first.
    const t = this.table;
    let i = t.length - 1;
    while (i >= 0 && !inOpen(t[i].id, self, target)) i--;
    let j = succs.length - 1;
    while (j >= 0 && !(succs[j].id !== self && inOpen(succs[j].id, self, target))) j--;
    const out: NodeRef[] = [];
    while (out.length < count && (i >= 0 || j >= 0)) {
      let pick: NodeRef;
      if (j < 0 || (i >= 0 && compareFrom(self, t[i].id, succs[j].id) >= 0)) pick = t[i--];
      else pick = succs[j--];
      if (out.length === 0 || out[out.length - 1].id !== pick.id) out.push(pick);
    }
    return out;
  }

  private rebuild(): void {
    const seen = new Map<string, NodeRef>();
    for (const f of this.fingers) if (f && f.id !== this.self.id) seen.set(f.id, f);
    this.table = [...seen.values()].sort((a, b) => compareFrom(this.self.id, a.id, b.id));
    this.dirty = false;
  }
}

/**
 * Every bound node this node has heard of lately (from FIND and NEIGHBORS
 * replies, fingers, successors), up to `max`, oldest forgotten first: the
 * location cache of CFS/DHash. On a ring not much larger than `max` it names
 * the owner of most keys, so a reader that can check what it gets (records
 * signed by their writer) can go straight to the holders without routing.
 * Never used to confirm an owner. Until the first `holders` call it keeps
 * only the last DORMANT_MAX nodes heard of (simulated rings of thousands
 * of nodes never ask, and would otherwise hold `max` refs per node).
 */
const DORMANT_MAX = 32;
/**
 * A guess (see `around`) is offered only when the gap between the two nodes
 * it names is at most this many times the mean gap between nodes: with ids
 * spread uniformly a gap is wider than k means with probability e^-k, so a
 * wider one most likely hides nodes the view has not heard of.
 */
const GUESS_GAP_FACTOR = 6;
const RING = 1n << 160n;

export class RingView {
  private readonly refs = new Map<string, NodeRef>();
  /** Nodes found silent: not learned again until `unmute` (others' lists name a crashed node a while longer). */
  private readonly muted = new Set<string>();
  private sorted: NodeRef[] = [];
  private dirty = false;
  private active = false;
  /** Gaps (as the ids of the nodes on either side) already asked about (see wideGap). */
  private readonly gapsAsked = new Set<string>();

  constructor(
    private readonly self: NodeRef,
    readonly max: number,
  ) {}

  get size(): number {
    return this.refs.size;
  }

  get started(): boolean {
    return this.active;
  }

  learn(refs: readonly NodeRef[]): void {
    const max = this.active ? this.max : Math.min(this.max, DORMANT_MAX);
    if (max === 0) return;
    for (const r of refs) {
      if (r.id === this.self.id || this.muted.has(r.id)) continue;
      const had = this.refs.get(r.id);
      if (had) {
        if (had === r) continue;
        this.refs.delete(r.id);
      } else this.dirty = true;
      this.refs.set(r.id, r);
      if (this.refs.size > max) {
        this.refs.delete(this.refs.keys().next().value as string);
        this.dirty = true;
      }
    }
  }

  /** Every node in the view, oldest heard of first (none before the view started). */
  known(): NodeRef[] {
    return this.active ? [...this.refs.values()] : [];
  }

  forget(id: string): void {
    if (this.refs.delete(id)) this.dirty = true;
  }

  /** Forget a node that did not answer, and do not learn it again before the next `unmute`. */
  mute(id: string): void {
    this.forget(id);
    if (this.muted.size < 256) this.muted.add(id);
  }

  unmute(): void {
    this.muted.clear();
  }

  /** Start remembering nodes, from `seed` (the routing table) on; a `max` of 0 never starts. */
  activate(seed: readonly NodeRef[] = []): void {
    if (this.active || this.max === 0) return;
    this.active = true;
    this.learn(seed);
  }

  /**
   * The node this view names as the owner of `pos` (the first known at or
   * after it) and the known node before that one, when the view likely knows
   * every node between them: the gap between the two is at most
   * GUESS_GAP_FACTOR mean gaps, the mean taken from this node's successor
   * list. On a ring the view can hold whole (estimated from the same mean) the
   * view starts itself from `seed` (the routing table). No guess names a node
   * `usable` rejects (one that lately did not answer). A lookup asks the two
   * named nodes at once and accepts the owner only under its usual two-source
   * check (lookup.ts), so a wrong guess costs two messages, never a wrong answer.
   */
  around(
    pos: string,
    succs: readonly NodeRef[],
    seed: () => readonly NodeRef[],
    usable: (id: string) => boolean = () => true,
  ): { pred: NodeRef; owner: NodeRef } | undefined {
    const mean = this.startIfSmall(succs, seed);
    if (mean === undefined) return undefined;
    const [owner] = this.holders(pos, 1);
    const s = this.sorted;
    if (s.length < 3) return undefined;
    const i = s.indexOf(owner);
    const pred = s[(i - 1 + s.length) % s.length];
    if (pred.id === owner.id || distance(pred.id, owner.id) > BigInt(GUESS_GAP_FACTOR) * mean) return undefined;
    // A node that lately did not answer would cost the guess an RPC timeout: route instead.
    if (!usable(owner.id) || !usable(pred.id)) return undefined;
    return { pred, owner };
  }

  /**
   * The mean gap between nodes, from this node's successor list; on a ring
   * small enough for the view to hold whole (at most half of `max`, by the
   * same estimate) the view is started from `seed`. Undefined while the view
   * is not in use.
   */
  startIfSmall(succs: readonly NodeRef[], seed: () => readonly NodeRef[]): bigint | undefined {
    const last = succs[succs.length - 1];
    if (!last || last.id === this.self.id) return undefined;
    const mean = distance(this.self.id, last.id) / BigInt(succs.length);
    if (mean === 0n) return undefined;
    if (!this.active) {
      if (RING / mean > BigInt(this.max) / 2n) return undefined;
      this.activate(seed());
    }
    return mean;
  }

  /**
   * A known node followed by a gap wider than twice the mean (`mean`, see
   * startIfSmall) that has not been returned for this same gap before:
   * nodes there are likely missing from the view, and asking that node for
   * its successors fills it in (one message per gap, none once the view is
   * whole and the ring at rest). Undefined when there is none.
   */
  wideGap(mean: bigint): NodeRef | undefined {
    this.holders(this.self.id, 1);
    const s = this.sorted;
    if (s.length < 3) return undefined;
    for (let i = 0; i < s.length; i++) {
      const a = s[i];
      const b = s[(i + 1) % s.length];
      if (distance(a.id, b.id) <= 2n * mean) continue;
      const gap = `${a.id}${b.id}`;
      if (this.gapsAsked.has(gap)) continue;
      if (this.gapsAsked.size >= 4 * this.max) this.gapsAsked.clear();
      this.gapsAsked.add(gap);
      return a;
    }
    return undefined;
  }

  /** The first `count` known nodes (this node included) at or after ring position `pos`, clockwise. */
  holders(pos: string, count: number): NodeRef[] {
    this.activate();
    if (this.dirty) {
      this.sorted = [this.self, ...this.refs.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
      this.dirty = false;
    }
    const s = this.sorted;
    if (s.length === 0) return [this.self];
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid].id < pos) lo = mid + 1;
      else hi = mid;
    }
    const out: NodeRef[] = [];
    for (let i = 0; i < Math.min(count, s.length); i++) out.push(s[(lo + i) % s.length]);
    return out;
  }
}
