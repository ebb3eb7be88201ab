/**
 * The acceptance rule of the iterative lookup (steps 3 and 4 of the argument
 * in lookup.ts): what one lookup has learned (refs seen, dead nodes, the
 * NEIGHBORS replies it got) and the checks that accept a candidate owner only
 * when no live node is known between the target and it and two different
 * nodes vouch for it; and, on the way, telling a node that a neighbour it
 * named did not answer. Kept apart from the routing loop (lookup.ts), which
 * only proposes candidates, so that what keeps a liar from making us accept
 * a wrong owner reads in one place.
 */
import type { NodeRef } from '../../rpc/types.ts';
import { inHalfOpen, inOpen } from '../store/ring-id.ts';
import type { LookupContext, LookupOptions, LookupResult } from './lookup.ts';
import type { NeighborsReply } from './messages.ts';

/** A lookup's answer once its owner was accepted. */
export type Confirmed = Extract<LookupResult, { ok: true }>;

/** What one lookup knows, and the rule deciding whether a candidate is the owner (see LookupRun for the routing). */
export abstract class OwnerCheck {
  protected readonly known = new Map<string, NodeRef>();
  protected readonly dead = new Set<string>();
  /** Live nodes shown not to be the owner (a live node lies between the target and them). */
  protected readonly notOwner = new Set<string>();
  /** Live candidates no second source would vouch for. */
  protected readonly refuted = new Set<string>();
  private readonly nbCache = new Map<string, NeighborsReply | null>();
  /** Nodes told of a silent neighbour (see report). */
  private readonly reported = new Set<string>();
  protected hops = 0;
  protected queries = 0;
  private readonly maxBack: number;
  protected readonly self: string;

  constructor(
    protected readonly ctx: LookupContext,
    protected readonly target: string,
    protected readonly opts: LookupOptions,
  ) {
    this.maxBack = opts.maxBackSteps ?? 4;
    this.self = ctx.self.id;
    // We are alive and on the ring too (unless joining): if we lie in
    // [target, c), c is not the owner.
    if (!opts.start) this.known.set(this.self, ctx.self);
  }

  protected learn(refs: readonly NodeRef[]): void {
    for (const r of refs) if (r.id !== this.self && !this.known.has(r.id)) this.known.set(r.id, r);
  }

  protected async neighborsOf(r: NodeRef): Promise<NeighborsReply | null> {
    const hit = this.nbCache.get(r.id);
    if (hit !== undefined) return hit;
    const shared = this.opts.batch;
    let pending = shared?.neighbors.get(r.id);
    if (pending && shared) shared.saved++;
    else {
      this.queries++;
      pending = this.ctx.neighbors(r);
      shared?.neighbors.set(r.id, pending);
    }
    const nb = await pending;
    this.nbCache.set(r.id, nb);
    if (!nb) shared?.dead.add(r.id);
    if (nb) this.learn(nb.succs);
    else this.dead.add(r.id);
    return nb;
  }

  /**
   * Steps 3 and 4 of the check in lookup.ts. `voucher` is the node that, by the
   * list that named c, sits right before c: the list's owner or the entry
   * before c in it.
   */
  protected async confirmOwner(
    first: NodeRef,
    voucher: string | undefined,
    skipped?: string,
    after?: readonly NodeRef[],
  ): Promise<Confirmed | 'retry'> {
    const target = this.target;
    let c = first;
    let v = voucher;
    let rest = after;
    // The node before c by the list that named it has a successor that did not answer us: it may not know yet.
    if (skipped !== undefined && v !== undefined) this.report(v, skipped);
    for (let steps = 0; ; steps++) {
      const nb = await this.neighborsOf(c);
      if (!nb) return 'retry';
      let p = nb.pred && nb.pred.id !== c.id ? nb.pred : null;
      if (p && !inHalfOpen(target, p.id, c.id)) {
        // c names a predecessor in [target, c): if it is alive, c is not the owner.
        this.learn([p]);
        const pAlive = !this.dead.has(p.id) && (await this.neighborsOf(p)) !== null;
        if (pAlive) {
          this.notOwner.add(c.id);
          if (steps >= this.maxBack || this.refuted.has(p.id)) return 'retry';
          c = p;
          v = undefined;
          rest = undefined;
          continue;
        }
        this.report(c.id, p.id);
        p = null; // c's predecessor pointer is stale
      }
      const gap = this.closestInGap(c.id);
      if (gap) {
        this.notOwner.add(c.id);
        if (steps >= this.maxBack || this.refuted.has(gap.id)) return 'retry';
        c = gap;
        v = undefined;
        rest = undefined;
        continue;
      }
      if (await this.vouched(c, nb, p, v, rest)) {
        // A second source may have named a node in [target, c) on the way.
        const late = this.closestInGap(c.id);
        if (!late)
          return { ok: true, owner: c, succs: nb.succs, hops: this.hops, queries: this.queries, pred: p ?? undefined };
        this.notOwner.add(c.id);
        if (steps >= this.maxBack) return 'retry';
        c = late;
        v = undefined;
        rest = undefined;
        continue;
      }
      this.refuted.add(c.id);
      return 'retry';
    }
  }

  private async vouched(
    c: NodeRef,
    nb: NeighborsReply,
    p: NodeRef | null,
    v: string | undefined,
    rest: readonly NodeRef[] | undefined,
  ): Promise<boolean> {
    // We precede c ourselves: our own successor list is the second source.
    if (v === this.self) {
      const own = this.ctx.localStep(this.target).succs.find((s) => !this.dead.has(s.id));
      if (own?.id === c.id) return true;
    }
    // c and the list that named it agree on c's predecessor, and c's list goes on where that list does.
    // (Asking that same node again below would add no second source.)
    if (p && p.id === v) {
      if (this.continues(nb, rest)) return true;
    } else if (p) {
      // c's named predecessor, asked separately, lists c as its successor (its first live entry: a list that
      // names c further on names a node between them, or is not a successor list at all).
      const pn = await this.neighborsOf(p);
      if (!pn) this.report(c.id, p.id);
      if (pn && pn.succs.find((s) => !this.dead.has(s.id))?.id === c.id) return true;
    }
    // A node without a predecessor (just joined, or its predecessor failed)
    // cannot be confirmed from the predecessor side: its successor naming it
    // says nothing about nodes before it. Such lookups fail until stabilize
    // links it, within a period.
    // c lies or is stale about its predecessor: the predecessor w of the voucher v must list v then c.
    if (v !== undefined && v !== c.id) {
      const vRef = this.known.get(v);
      const vn = vRef ? await this.neighborsOf(vRef) : null;
      const w = vn?.pred;
      if (w && w.id !== c.id && w.id !== v) {
        const wn = await this.neighborsOf(w);
        if (wn && this.follows(wn.succs, v, c.id)) return true;
      }
    }
    // Alone on the ring: believable only while no other node is known to exist.
    if (!p && nb.succs[0]?.id === c.id && [...this.known.keys()].every((id) => id === c.id || id === this.self))
      return true;
    return false;
  }

  /**
   * Does c's successor list go on where the list that named c does? `rest`: what that list names after c.
   * Honest lists share a node (churn replaces at most a few entries between two ticks); a list made up
   * by a liar for c almost never does, so a liar that names c and a lying c that names it back (the
   * two sources agreeing by chance) are still refused. Nothing to check when the list named nothing after c.
   */
  private continues(nb: NeighborsReply, rest: readonly NodeRef[] | undefined): boolean {
    if (!rest) return true;
    const live = rest.filter((r) => !this.dead.has(r.id));
    if (live.length === 0 || nb.succs.length === 0) return true;
    return nb.succs.some((s) => live.some((r) => r.id === s.id));
  }

  /** Tell a node that a neighbour it named did not answer (see LookupContext.report); once per node per lookup. */
  private report(to: string, silent: string): void {
    if (!this.ctx.report || to === this.self || to === silent || this.reported.has(to)) return;
    const ref = this.known.get(to);
    if (!ref) return;
    this.reported.add(to);
    this.ctx.report(ref, silent);
  }

  /** Does `list` hold a, then b as the next live entry? */
  private follows(list: readonly NodeRef[], a: string, b: string): boolean {
    const i = list.findIndex((r) => r.id === a);
    if (i < 0) return false;
    for (let j = i + 1; j < list.length; j++) {
      if (this.dead.has(list[j].id)) continue;
      return list[j].id === b;
    }
    return false;
  }

  /** The known live node in [target, c) nearest to the target, if any. */
  private closestInGap(c: string): NodeRef | undefined {
    const t = this.target;
    let out: NodeRef | undefined;
    for (const r of this.known.values()) {
      if (this.dead.has(r.id) || r.id === c) continue;
      if (r.id === t) return r;
      if (inOpen(r.id, t, c) && (!out || inOpen(r.id, t, out.id))) out = r;
    }
    return out;
  }
}
