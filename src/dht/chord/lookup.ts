import type { NodeRef } from '../../rpc/types.ts';
import { inHalfOpen, inOpen } from '../store/ring-id.ts';
import type { FindReply, NeighborsReply } from './messages.ts';

/**
 * Iterative, checked Chord lookup. The asking node drives every hop
 * (Stoica et al. 2003 section IV-C run iteratively, as seed 000 section VII
 * recommends against man-in-the-middle routing), so a node that lies can be
 * routed around instead of being trusted with the rest of the path.
 *
 * Why a lying node cannot make us accept a wrong owner:
 *  1. Every ref is checked by the `verify` policy before use: its id must be
 *     bound to its key (SHA-1 of the key, or an admission certificate), so a
 *     liar cannot invent nodes at chosen positions, only name real ones.
 *  2. Progress: a next hop is only taken if it lies in (best, target), where
 *     best is the closest preceding node that has answered. A liar can slow a
 *     path down but never make it jump past the target.
 *  3. Confirmation: the candidate owner c (from the successor list of the
 *     node that claims to precede the target) is asked for its predecessor
 *     p, and the target must lie in (p, c]. If p is not the node that named
 *     c, p is asked too, and its successor list must not contain a node in
 *     [target, c) (a second, independent source).
 *  4. Evidence: every verified ref seen during the lookup is kept; a live
 *     node in [target, c) refutes c (the owner is the first live node at or
 *     after the target), so it is probed and becomes the candidate.
 * A wrong owner is accepted only if the candidate and its claimed
 * predecessor lie consistently together and no honest reply along the path
 * named a node between them: a single lying node cannot do it.
 * Failures are results, not exceptions: a hop that times out or answers
 * nonsense is marked dead and `alpha` other candidates are asked at once.
 */
export interface LookupContext {
  readonly self: NodeRef;
  /** Routing state of the asking node itself (answered locally, no message). */
  localStep(target: string): FindReply;
  /** FIND at a remote node; null when it timed out, refused, or answered garbage. */
  find(to: NodeRef, target: string): Promise<FindReply | null>;
  neighbors(to: NodeRef): Promise<NeighborsReply | null>;
}

export interface LookupOptions {
  /** Confirm the owner through its predecessor (default true). Finger repair skips it. */
  confirm?: boolean;
  maxHops?: number;
  alpha?: number;
  /** Start from these nodes instead of the local routing table (joining through a bootstrap). */
  start?: readonly NodeRef[];
}

export type LookupResult =
  | { ok: true; owner: NodeRef; succs: NodeRef[]; hops: number; queries: number }
  | { ok: false; error: 'DHT_LOOKUP_FAILED'; reason: string; hops: number; queries: number };

export async function iterativeLookup(
  ctx: LookupContext,
  target: string,
  opts: LookupOptions = {},
): Promise<LookupResult> {
  const confirm = opts.confirm ?? true;
  const maxHops = opts.maxHops ?? 32;
  const alpha = opts.alpha ?? 3;
  const self = ctx.self;
  const known = new Map<string, NodeRef>();
  const dead = new Set<string>();
  const asked = new Set<string>([self.id]);
  let hops = 0;
  let queries = 0;
  const fail = (reason: string): LookupResult => ({ ok: false, error: 'DHT_LOOKUP_FAILED', reason, hops, queries });
  const learn = (refs: readonly NodeRef[]): void => {
    for (const r of refs) if (r.id !== self.id && !known.has(r.id)) known.set(r.id, r);
  };

  let best = self.id;
  let bestReply: FindReply | null = null;
  const refuted = new Set<string>();
  const nbCache = new Map<string, NeighborsReply | null>();
  if (opts.start) learn(opts.start);
  else bestReply = ctx.localStep(target);
  if (bestReply) {
    learn(bestReply.succs);
    learn(bestReply.next);
  }
  let fresh = bestReply !== null;
  let failedLast = false;

  for (let guard = 0; guard < maxHops * 4; guard++) {
    if (fresh && bestReply) {
      fresh = false;
      const cand = ownerFromSuccessors(best, bestReply.succs, target, dead, refuted);
      if (cand) {
        if (!confirm) return { ok: true, owner: cand.owner, succs: cand.rest, hops, queries };
        const res = await confirmOwner(cand.owner, cand.index === 0 ? best : undefined);
        if (res === 'fail') return fail('owner could not be confirmed');
        if (res !== 'retry') return res;
        fresh = true; // candidate dead or refuted: look again in the same reply
        continue;
      }
    }
    // One routing round: the closest untried known node in (best, target); alpha of them after a failure.
    const cands = [...known.values()]
      .filter((r) => !dead.has(r.id) && !asked.has(r.id) && inOpen(r.id, best, target))
      .sort((a, b) => closerToTarget(a.id, b.id, best));
    if (cands.length === 0) return fail('no live node left to ask');
    if (hops >= maxHops) return fail('hop limit');
    const batch = cands.slice(0, failedLast ? alpha : 1);
    hops++;
    queries += batch.length;
    const replies = await Promise.all(batch.map((r) => ctx.find(r, target)));
    let moved = false;
    batch.forEach((r, i) => {
      asked.add(r.id);
      const rep = replies[i];
      if (!rep) {
        dead.add(r.id);
        return;
      }
      learn(rep.succs);
      learn(rep.next);
      if (!moved || inOpen(r.id, best, target)) {
        best = r.id;
        bestReply = rep;
        moved = true;
      }
    });
    failedLast = !moved;
    if (moved) fresh = true;
  }
  return fail('hop limit');

  async function neighborsOf(r: NodeRef): Promise<NeighborsReply | null> {
    const hit = nbCache.get(r.id);
    if (hit !== undefined) return hit;
    queries++;
    const nb = await ctx.neighbors(r);
    nbCache.set(r.id, nb);
    if (nb) learn(nb.succs);
    else dead.add(r.id);
    return nb;
  }

  /**
   * Steps 3 and 4 of the check above. `voucher` is the node whose own
   * successor list starts with c. c is confirmed when it answers, no live
   * known node lies in [target, c), and its predecessor p is the voucher or
   * p (asked separately) lists c among its successors.
   */
  async function confirmOwner(first: NodeRef, voucher: string | undefined): Promise<LookupResult | 'retry' | 'fail'> {
    let c = first;
    let v = voucher;
    for (let round = 0; round < maxHops; round++) {
      const nb = await neighborsOf(c);
      if (!nb) return 'retry';
      let p = nb.pred && nb.pred.id !== c.id ? nb.pred : null;
      if (p && !inHalfOpen(target, p.id, c.id)) {
        // c names a predecessor in [target, c): if it is alive, c is not the owner.
        learn([p]);
        if (refuted.has(p.id)) return 'fail';
        if (await neighborsOf(p)) {
          c = p;
          v = undefined;
          continue;
        }
        p = null; // c's predecessor pointer is stale
      }
      const gap = closestInGap(target, c.id);
      if (gap) {
        if (refuted.has(gap.id)) return 'fail';
        c = gap;
        v = undefined;
        continue;
      }
      let vouched = p !== null && p.id === v;
      if (!vouched && p !== null) {
        const pn = await neighborsOf(p);
        vouched = pn?.succs.some((s) => s.id === c.id) === true;
        // p's list may have named a node in [target, c) just now.
        const g2 = closestInGap(target, c.id);
        if (g2) {
          if (refuted.has(g2.id)) return 'fail';
          c = g2;
          v = undefined;
          continue;
        }
      }
      // Alone on the ring: the node is its own successor and owns everything.
      if (!vouched && p === null && c.id === self.id && v === self.id && nb.succs[0]?.id === self.id) vouched = true;
      if (vouched) return { ok: true, owner: c, succs: nb.succs, hops, queries };
      refuted.add(c.id);
      return 'retry';
    }
    return 'fail';
  }

  /** The known live node in [t, c) nearest to t, if any. */
  function closestInGap(t: string, c: string): NodeRef | undefined {
    let out: NodeRef | undefined;
    for (const r of known.values()) {
      if (dead.has(r.id) || r.id === c) continue;
      if (r.id === t) return r;
      if (inOpen(r.id, t, c) && (!out || inOpen(r.id, t, out.id))) out = r;
    }
    return out;
  }
}

/** The first live entry s of `succs` with target in (prev, s], walking from `from`. */
function ownerFromSuccessors(
  from: string,
  succs: readonly NodeRef[],
  target: string,
  dead: ReadonlySet<string>,
  refuted: ReadonlySet<string>,
): { owner: NodeRef; rest: NodeRef[]; index: number } | undefined {
  let prev = from;
  let live = 0;
  for (let i = 0; i < succs.length; i++) {
    const s = succs[i];
    if (dead.has(s.id)) continue;
    if (inHalfOpen(target, prev, s.id))
      return refuted.has(s.id) ? undefined : { owner: s, rest: succs.slice(i + 1), index: live };
    prev = s.id;
    live++;
  }
  return undefined;
}

/** Sort order: nodes closer to the target (further clockwise from `from`) first. */
function closerToTarget(a: string, b: string, from: string): number {
  const ga = a > from ? 0 : 1;
  const gb = b > from ? 0 : 1;
  if (ga !== gb) return gb - ga;
  return a < b ? 1 : a > b ? -1 : 0;
}
