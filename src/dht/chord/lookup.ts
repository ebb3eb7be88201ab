import type { NodeRef } from '../../rpc/types.ts';
import { inHalfOpen, inOpen } from '../store/ring-id.ts';
import type { FindReply, NeighborsReply } from './messages.ts';
import { type Confirmed, OwnerCheck } from './owner-check.ts';

/**
 * Iterative, checked Chord lookup. The asking node drives every hop
 * (Stoica et al. 2003 section IV-C run iteratively, as seed 000 section VII
 * recommends against man-in-the-middle routing), so a node that lies can be
 * routed around instead of being trusted with the rest of the path.
 *
 * Why a lying node cannot make us accept a wrong owner:
 *  1. Bound refs: every ref passes the `verify` policy (id bound to key by
 *     SHA-1 or an admission certificate) before use, so a liar can only name
 *     real nodes, never invent one at a chosen position.
 *  2. Progress: a next hop is only taken inside (best, target), best being
 *     the closest preceding node that answered. A liar can slow a path but
 *     never make it jump past the target. A path that dead-ends backs off:
 *     the node that led into the dead end is distrusted and the previous
 *     node's alternatives are tried.
 *  3. Evidence: every ref seen is kept; any live node in [target, c) proves
 *     the candidate c is not the owner (the owner is the first live node at
 *     or after the target). The nearest such node is probed instead.
 *  4. Two sources: c is accepted only when two different nodes say nothing
 *     lies between the target's predecessor and c: c names as predecessor
 *     the node v whose list names c (right before c), and c's own successor
 *     list shares a node with what v's list names after c; or c's named
 *     predecessor p (target in (p, c]) names c as its first live successor;
 *     or, when c lies about its predecessor, the predecessor w of the node v
 *     that named c lists v directly followed by c (the successor list of a
 *     second node). The first two checks on the lists are what two lone
 *     liars agreeing by chance fail: a liar v naming c while a lying c names
 *     v back (1 in N), or a lying c naming a liar p whose made-up list holds c.
 * A wrong owner needs two nodes lying in agreement about the same spot of
 * the ring (collusion of neighbours); lone liars only cause failures.
 * A node met silent while a live one names it as its neighbour is reported
 * to that one (LookupContext.report), so that the ring repairs the spot at
 * the short period: no extra message on a path where every node answers.
 * Failures are results, not exceptions: a hop that times out or answers
 * nonsense is marked dead and `alpha` other candidates are asked at once.
 * This file holds the routing (steps 1 and 2, and the sharing of a batch);
 * steps 3 and 4 and the reporting are in owner-check.ts.
 */
export interface LookupContext {
  readonly self: NodeRef;
  /** Routing state of the asking node itself (answered locally, no message). */
  localStep(target: string): FindReply;
  /** FIND at a remote node; null when it timed out, refused, or answered garbage. */
  find(to: NodeRef, target: string): Promise<FindReply | null>;
  neighbors(to: NodeRef): Promise<NeighborsReply | null>;
  /**
   * Optional: the owner of `target` and the node before it, as far as the
   * asking node has heard (RingView.around); asked first, both at once.
   */
  guess?(target: string): { pred: NodeRef; owner: NodeRef; waitMs: number } | undefined;
  /** Resolves after `ms` (the asking node's clock); without it a guess is waited for until it answers. */
  sleep?(ms: number): Promise<void>;
  /**
   * Optional: `to` answered naming `silent` as its predecessor or successor, and `silent` did not answer this
   * lookup: tell `to`, so that it checks that neighbour at its short period (see TickPacing) instead of
   * after a long one. Only timing; sent off the lookup's path (nothing waits on it).
   */
  report?(to: NodeRef, silent: string): void;
}

/**
 * What the concurrent lookups of one batch (ChordNode.lookupMany) share.
 * A FIND reply's successor list does not depend on the target, so a reply
 * got for one key serves every other key it covers: a lookup that finds a
 * reply from a node X in (best, target) whose successor list reaches past
 * its target takes X as its next hop without asking X again, exactly as if
 * it had. FINDs in flight are joined the same way, NEIGHBORS replies, refs
 * seen and dead nodes are pooled. Every fact still comes from a reply of a
 * real, bound node during this batch, and each lookup applies the checks
 * above to it unchanged: pooled refs only add evidence against candidates.
 */
export class LookupBatch {
  readonly replies = new Map<string, FindReply>();
  readonly finding = new Map<string, Promise<FindReply | null>>();
  readonly neighbors = new Map<string, Promise<NeighborsReply | null>>();
  readonly known = new Map<string, NodeRef>();
  readonly dead = new Set<string>();
  /** FINDs and NEIGHBORS that one lookup did not send because another's reply served it. */
  saved = 0;
}

export interface LookupOptions {
  /** Share replies with the other lookups of this batch. */
  batch?: LookupBatch;
  /** Confirm the owner through two sources (default true). Finger repair skips it. */
  confirm?: boolean;
  maxHops?: number;
  alpha?: number;
  /** Start from these nodes instead of the local routing table (joining through a bootstrap). */
  start?: readonly NodeRef[];
  /**
   * How far a confirmation may walk back along predecessor pointers towards
   * the target (default 4). Bounds what a liar naming a far candidate costs.
   */
  maxBackSteps?: number;
}

export type LookupResult =
  | {
      ok: true;
      owner: NodeRef;
      succs: NodeRef[];
      hops: number;
      queries: number;
      /** The owner's predecessor as the owner named it, when the confirmation asked (a joiner notifies it). */
      pred?: NodeRef;
    }
  | { ok: false; error: 'DHT_LOOKUP_FAILED'; reason: string; hops: number; queries: number };

export function iterativeLookup(ctx: LookupContext, target: string, opts: LookupOptions = {}): Promise<LookupResult> {
  return new LookupRun(ctx, target, opts).run();
}

class LookupRun extends OwnerCheck {
  private readonly asked = new Set<string>();
  /** Nodes that led a path into a dead end. */
  private readonly distrusted = new Set<string>();
  /** Nodes that answered, in order of progress; the last one is `best`. */
  private readonly path: { id: string; reply: FindReply }[] = [];
  private readonly maxHops: number;
  private readonly alpha: number;

  constructor(ctx: LookupContext, target: string, opts: LookupOptions) {
    super(ctx, target, opts);
    this.maxHops = opts.maxHops ?? 32;
    this.alpha = opts.alpha ?? 3;
    this.asked.add(this.self);
  }

  async run(): Promise<LookupResult> {
    const target = this.target;
    if (this.opts.start) this.learn(this.opts.start);
    else {
      const local = this.ctx.localStep(target);
      this.learn(local.succs);
      this.learn(local.next);
      this.path.push({ id: this.self, reply: local });
    }
    const shared = this.opts.batch;
    if (shared) {
      this.learn([...shared.known.values()]);
      for (const d of shared.dead) this.dead.add(d);
    }
    // A guessed owner and predecessor, asked at once: one round trip when the guess is right (see tryGuess).
    const g = this.opts.start || this.opts.confirm === false ? undefined : this.ctx.guess?.(target);
    if (g) {
      // A guessed node that is down would hold the lookup for an RPC timeout: past `waitMs`, route
      // instead (the guess's answers still land in the cache of neighbour replies).
      const guessed = this.tryGuess(g.owner, g.pred);
      const res = this.ctx.sleep
        ? await Promise.race([guessed, this.ctx.sleep(g.waitMs).then(() => undefined)])
        : await guessed;
      if (res) return res;
    }
    let fresh = this.path.length > 0;
    let failedLast = false;
    for (let guard = 0; guard < this.maxHops * 4; guard++) {
      const top = this.path[this.path.length - 1];
      const best = top ? top.id : this.self;
      if (fresh && top) {
        fresh = false;
        const cand = this.ownerFromSuccessors(best, top.reply.succs);
        if (cand) {
          if (this.opts.confirm === false)
            return { ok: true, owner: cand.owner, succs: cand.rest, hops: this.hops, queries: this.queries };
          const res = await this.confirmOwner(cand.owner, cand.before, cand.skipped, cand.rest);
          if (res !== 'retry') return res;
          fresh = true; // candidate dead or refuted: look again in the same reply
          continue;
        }
      }
      const hit = shared ? this.coveringReply(shared, best) : undefined;
      if (hit) {
        // Another lookup of the batch heard from a node that covers our target: as if we had asked it.
        this.asked.add(hit.id);
        this.learn(hit.reply.succs);
        this.path.push(hit);
        fresh = true;
        failedLast = false;
        continue;
      }
      // One routing round: the closest untried node in (best, target); alpha of them after a failure.
      const cands: NodeRef[] = [];
      for (const r of this.known.values())
        if (!this.dead.has(r.id) && !this.asked.has(r.id) && !this.distrusted.has(r.id) && inOpen(r.id, best, target))
          cands.push(r);
      if (cands.length === 0) {
        // Dead end: distrust the node that led here and go back one step.
        if (this.path.length > 1) {
          this.distrusted.add((this.path.pop() as { id: string }).id);
          fresh = true;
          continue;
        }
        return this.fail('no live node left to ask');
      }
      if (this.hops >= this.maxHops) return this.fail('hop limit');
      let batch: NodeRef[];
      if (failedLast) {
        cands.sort((a, b) => closerToTarget(a.id, b.id, best));
        batch = cands.slice(0, this.alpha);
      } else {
        let top = cands[0];
        for (const r of cands) if (closerToTarget(r.id, top.id, best) < 0) top = r;
        batch = [top];
      }
      this.hops++;
      this.queries += batch.length;
      const replies =
        batch.length === 1
          ? [await this.findShared(batch[0])]
          : await Promise.all(batch.map((r) => this.findShared(r)));
      let next: { id: string; reply: FindReply } | undefined;
      for (let i = 0; i < batch.length; i++) {
        const r = batch[i];
        const rep = replies[i];
        this.asked.add(r.id);
        if (!rep) {
          this.dead.add(r.id);
          continue;
        }
        this.learn(rep.succs);
        this.learn(rep.next);
        if (!next || inOpen(r.id, next.id, target)) next = { id: r.id, reply: rep };
      }
      failedLast = next === undefined;
      if (next) {
        this.path.push(next);
        fresh = true;
      }
    }
    return this.fail('hop limit');
  }

  /**
   * Ask the guessed owner c and its guessed predecessor p for their
   * neighbours in parallel, then run the usual confirmation on c (steps 3 and
   * 4 above): when c names p as its predecessor and p lists c, two nodes
   * vouch for c, as when routing found them, and the answers are already
   * here. Anything else leaves what was learned (dead nodes, refuted
   * candidates, refs seen) to the routing that follows.
   */
  private async tryGuess(c: NodeRef, p: NodeRef): Promise<Confirmed | undefined> {
    if (c.id === this.self) return undefined;
    // c and p are not learned as refs seen: they come from our own view, not from a reply of this lookup,
    // and a stale one would count as evidence against the real owner (closestInGap).
    this.hops++;
    await Promise.all([this.neighborsOf(c), p.id === this.self ? null : this.neighborsOf(p)]);
    const wasRefuted = this.refuted.has(c.id);
    const res = await this.confirmOwner(c, p.id === this.self ? this.self : undefined);
    if (res !== 'retry') return res;
    // Not vouched for by the guessed pair is no evidence against c: routing may find its real voucher.
    if (!wasRefuted) this.refuted.delete(c.id);
    return undefined;
  }

  /** A pooled reply from a live node in (best, target) whose successor list names an owner for the target. */
  private coveringReply(shared: LookupBatch, best: string): { id: string; reply: FindReply } | undefined {
    let out: { id: string; reply: FindReply } | undefined;
    for (const [id, reply] of shared.replies) {
      if (this.asked.has(id) || this.dead.has(id) || this.distrusted.has(id)) continue;
      if (!inOpen(id, best, this.target)) continue;
      if (out && !inOpen(id, out.id, this.target)) continue;
      if (this.ownerFromSuccessors(id, reply.succs)) out = { id, reply };
    }
    return out;
  }

  /** FIND at r; in a batch, a FIND to r already in flight is joined when its reply covers our target. */
  private async findShared(r: NodeRef): Promise<FindReply | null> {
    const shared = this.opts.batch;
    if (!shared) return this.ctx.find(r, this.target);
    const pending =
      shared.finding.get(r.id) ??
      (shared.replies.has(r.id) ? Promise.resolve(shared.replies.get(r.id) ?? null) : undefined);
    if (pending) {
      const rep = await pending;
      if (rep === null || this.ownerFromSuccessors(r.id, rep.succs)) {
        shared.saved++;
        this.queries--;
        return rep;
      }
    }
    const p = this.ctx.find(r, this.target);
    shared.finding.set(r.id, p);
    const rep = await p;
    if (shared.finding.get(r.id) === p) shared.finding.delete(r.id);
    if (rep) {
      shared.replies.set(r.id, rep);
      for (const x of rep.succs) if (x.id !== this.self) shared.known.set(x.id, x);
      for (const x of rep.next) if (x.id !== this.self) shared.known.set(x.id, x);
    } else shared.dead.add(r.id);
    return rep;
  }

  private fail(reason: string): LookupResult {
    return { ok: false, error: 'DHT_LOOKUP_FAILED', reason, hops: this.hops, queries: this.queries };
  }

  /** The first live entry s of `succs` with the target in (prev, s], walking from `from`. */
  private ownerFromSuccessors(
    from: string,
    succs: readonly NodeRef[],
  ): { owner: NodeRef; rest: NodeRef[]; before: string; skipped?: string } | undefined {
    let prev = from;
    let skipped: string | undefined;
    for (let i = 0; i < succs.length; i++) {
      const s = succs[i];
      if (this.dead.has(s.id)) {
        skipped ??= s.id;
        continue;
      }
      if (inHalfOpen(this.target, prev, s.id)) {
        if (this.refuted.has(s.id) || this.notOwner.has(s.id)) return undefined;
        return { owner: s, rest: succs.slice(i + 1), before: prev, skipped };
      }
      prev = s.id;
      skipped = undefined;
    }
    return undefined;
  }
}

/** Sort order: nodes closer to the target (further clockwise from `from`) first. */
function closerToTarget(a: string, b: string, from: string): number {
  const ga = a > from ? 0 : 1;
  const gb = b > from ? 0 : 1;
  if (ga !== gb) return gb - ga;
  return a < b ? 1 : a > b ? -1 : 0;
}
