import type { NodeRef } from '../../rpc/types.ts';
import type { DhtRecord } from '../store/record.ts';
import {
  compareFrom,
  fingerStart,
  ID_BITS,
  inHalfOpen,
  inOpen,
  keyPosition,
  lastFingerCovered,
} from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import { DEFAULT_RPC_TIMEOUT_MS } from './chord-types.ts';
import { iterativeLookup } from './lookup.ts';
import { decodeRecordsReply, decodeRefsReply, METHOD } from './messages.ts';
import { keepLinks, TickPacing } from './pacing.ts';

const CHUNK = 1000;
/** Owner lookups per tick when records are sent to their owners after a ring change (see rehome). */
const REHOME_LOOKUPS = 4;

/**
 * The periodic work of a Chord node, batched into one jittered tick
 * (Stoica et al. 2003, Fig. 7 and section V): stabilize, check_predecessor,
 * fix_fingers (one finger per tick), re-replication to new successors and
 * republish of the records this node put.
 */
export class Maintenance {
  readonly published = new Map<string, { record: DhtRecord; nextAt: number }>();
  /** Successors that already hold every record of our range (pred, self]. */
  private readonly syncedTo = new Set<string>();
  private ticks = 0;
  /** The first ticks after a join check our slot from afar (see checkFromAfar). */
  joinChecks = 4;
  /**
   * The last full pass of fix_fingers over the table moved no finger. Until
   * one does (after a join, or once a finger moved), the tick stays at the
   * short period: a table still converging is not a ring at rest.
   */
  private fingersSettled = false;
  /** A finger moved during the pass under way. */
  private sweepMoved = false;
  /** A record this node put is due for republishing within a few short periods (see republish). */
  republishSoon = false;
  /** Ping the predecessor at the next tick, however lately it was heard from (see predDoubted). */
  private pingPred = false;
  /** Ticks in a row without a predecessor: nobody links to us. */
  private orphanTicks = 0;

  /** A new predecessor inside our old range, given our records at the next tick (see handOver). */
  private handOverTo: NodeRef | null = null;
  /** When the records we hold outside our range are next sent to their owners (see rehome). */
  private rehomeAt = Number.POSITIVE_INFINITY;
  /** The first ring change not rehomed yet: later changes defer the rehome, but not past this plus a bound. */
  private rehomeFirst: number | null = null;
  /** Records still to send in the rehome under way, in ring order from our id. */
  private rehomeQueue: { rec: DhtRecord; pos: string }[] = [];
  /** The rehome pass under way; it runs beside the tick (its lookups may wait on nodes gone silent). */
  private rehoming: Promise<void> | null = null;

  /** The tick period (adaptive stabilization, pacing.ts). */
  readonly pacing: TickPacing;

  constructor(private readonly node: ChordNode) {
    this.pacing = new TickPacing(node);
  }

  /** The period until the next tick: stabilizeMs, doubled after each calm tick up to maxStabilizeMs. */
  get periodMs(): number {
    return this.pacing.periodMs;
  }

  rangeGrew(): void {
    this.syncedTo.clear();
    this.pacing.wake();
  }

  rangeShrank(pred: NodeRef): void {
    this.handOverTo = pred;
    this.ringChanged();
    this.pacing.wake();
  }

  /**
   * Our neighbourhood changed (a predecessor arrived inside our range, or a
   * merge gave us a closer successor): once it has been quiet for two
   * stabilize periods (a merge moves many pointers in a row), send the
   * records we hold outside our range to their owners (see rehome).
   */
  ringChanged(): void {
    const now = this.node.clock.now();
    const period = this.node.init.stabilizeMs;
    this.rehomeFirst ??= now;
    this.rehomeAt = Math.min(now + 2 * period, this.rehomeFirst + 10 * period);
  }

  /**
   * A member this node had lost answers again, or a merge step took place:
   * the records this node published may sit only on its own side's nodes,
   * so republish them soon rather than at the next republish period.
   */
  merged(): void {
    const soon = this.node.clock.now() + 4 * this.node.init.stabilizeMs;
    for (const p of this.published.values()) if (p.nextAt > soon) p.nextAt = soon;
    this.ringChanged();
  }

  async tick(): Promise<void> {
    const n = this.node;
    if (n.stopped) return;
    this.ticks++;
    await this.stabilize();
    if (n.stopped) return;
    await this.probeRemembered();
    if (n.stopped) return;
    if (n.pred === null) this.orphanTicks++;
    else this.orphanTicks = 0;
    if (this.joinChecks > 0) this.joinChecks--;
    if (this.joinChecks > 0 || this.ticks % 16 === 0 || this.orphanTicks >= 2) await this.checkFromAfar();
    await this.checkPredecessor();
    await this.fixFinger();
    await this.handOver();
    this.startRehome();
    await this.replicate();
    await this.republish();
    if (this.ticks % 16 === 0) n.store.sweep();
    // By now stabilize has dropped crashed nodes from successor lists: the view may hear of muted ones again.
    if (this.ticks % 8 === 0) n.view.unmute();
    keepLinks(n);
    const pending =
      !this.fingersSettled ||
      this.republishSoon ||
      this.joinChecks > 0 ||
      this.orphanTicks > 0 ||
      this.handOverTo !== null ||
      this.rehomeQueue.length > 0 ||
      this.rehomeAt !== Number.POSITIVE_INFINITY;
    this.pacing.adapt(pending);
  }

  /** stabilize() of Fig. 7 with the successor list of section V-B; a dead successor is replaced by the next. */
  async stabilize(): Promise<void> {
    const n = this.node;
    for (let attempt = 0; attempt < n.r + 1; attempt++) {
      const s = n.successor;
      if (s.id === n.id) {
        const next = await this.closestLiveAfterSelf();
        if (!next) return;
        n.succs.prepend(next);
        continue;
      }
      const nb = await n.neighbors(s, true);
      if (!nb) {
        // Suspected, not yet failed: keep it and ask again next tick (a busy node answers late, see
        // FailureDetector). The rest of the list is pinged meanwhile, so that a run of crashed
        // successors is found failed together, not one grace period after the other. The pings say that
        // something changed (see TickPacing): the first live one may have lost its predecessor with s, and
        // checks it at the short period instead of after a long one.
        const rest = n.succs.entries().filter((r) => r.id !== s.id && r.id !== n.id);
        if (!n.failures.failed(s.id)) {
          await Promise.all(rest.map((r) => n.call(r, METHOD.PING, { changed: true })));
          return;
        }
        // Indirect evidence (as SWIM's indirect probe): a next successor that still names s as its
        // predecessor still hears from s, so s is slow towards us, not gone; ask again next tick.
        const next = rest.length > 0 ? await n.neighbors(rest[0], false) : null;
        if (next?.pred?.id === s.id) return;
        this.removeFailed(s, 'successor');
        continue;
      }
      const x = nb.pred;
      if (x && x.id !== n.id && inOpen(x.id, n.id, s.id)) {
        const nx = await n.neighbors(x, true);
        if (nx) {
          n.succs.adopt(x, nx.succs);
          n.fingers.set(0, x);
          return;
        }
      }
      n.succs.adopt(s, nb.succs);
      n.fingers.set(0, s);
      return;
    }
  }

  /**
   * The successor list ran empty (every entry failed): the closest node
   * after us that answers, among all we know of (nodes heard of lately,
   * fingers, the predecessor), becomes the successor. Falling back on the
   * nearest finger instead would skip every live node before it, and
   * stabilize would then walk back over them one tick per node.
   */
  private async closestLiveAfterSelf(): Promise<NodeRef | null> {
    const n = this.node;
    const known = new Map<string, NodeRef>();
    for (const r of [...n.guessHolders(n.id, 8), ...n.fingers.distinct(), ...(n.pred ? [n.pred] : [])])
      if (r.id !== n.id && !n.failures.failed(r.id)) known.set(r.id, r);
    const order = [...known.values()].sort((a, b) => compareFrom(n.id, a.id, b.id));
    for (const r of order.slice(0, 8)) {
      const reply = await n.call(r, METHOD.PING, {});
      if (reply !== null && n.sameNode(r, reply)) return r;
    }
    return null;
  }

  /**
   * Concurrent joins can leave pockets: runs of nodes linked among
   * themselves that the rest of the ring skips, a state stabilize alone
   * never repairs (Liben-Nowell et al., PODC 2002, "loopy" rings). Routing
   * to our own id from a far node shows where everyone else thinks our
   * slot is: a live node found between us and our successor is a better
   * successor; a node found past it is told about us (notify), so its
   * predecessor's stabilize links us in.
   */
  async checkFromAfar(): Promise<void> {
    const n = this.node;
    const far = n.fingers.distinct().filter((r) => r.id !== n.successor.id);
    if (far.length === 0) return;
    const via = far[n.random.int(far.length)];
    const res = await iterativeLookup(n.lookupContext(), n.id, {
      start: [via],
      confirm: false,
      maxHops: n.init.maxHops,
      alpha: n.init.alpha,
    });
    const s = n.successor;
    if (!res.ok || res.owner.id === n.id || res.owner.id === s.id) return;
    const nx = await n.neighbors(res.owner, true);
    if (nx && inOpen(res.owner.id, n.id, s.id) && n.successor.id === s.id) {
      n.succs.adopt(res.owner, nx.succs);
      n.fingers.set(0, res.owner);
    }
  }

  /** Seed the finger table from the successor's routing table: close to right, fixed over time by fix_fingers. */
  async seedFingers(succ: NodeRef): Promise<void> {
    const n = this.node;
    const raw = await n.call(succ, METHOD.FINGERS, {});
    const rep = raw === null ? null : decodeRefsReply(raw);
    if (!rep?.ok) return;
    const refs = rep.value.refs.filter((r) => r.id !== n.id && n.verify(r));
    n.view.learn(refs);
    refs.sort((a, b) => compareFrom(n.id, a.id, b.id));
    // finger[i] is the first known node whose coverage reaches index i.
    let i = 0;
    for (const r of refs) {
      const last = lastFingerCovered(n.id, r.id);
      for (; i <= last && i < ID_BITS; i++) n.fingers.set(i, r);
    }
  }

  /** Hand-off on join, pulled by the joiner (section IV-E); see handOver for the successor's push. */
  async pullHandoff(succ: NodeRef): Promise<void> {
    const n = this.node;
    const raw = await n.call(succ, METHOD.HANDOFF, { from: n.self });
    const rep = raw === null ? null : decodeRecordsReply(raw);
    if (rep?.ok) for (const r of rep.value.records) n.store.put(r);
  }

  /**
   * Another node took itself for our predecessor (see ChordNode.notify): ours may have failed, so it is
   * pinged at the next tick, which comes at the short period.
   */
  predDoubted(): void {
    this.pingPred = true;
    this.pacing.wake();
  }

  /**
   * check_predecessor(): ping the predecessor unless it has been heard from
   * recently. A live predecessor notifies us once per tick of its own, which
   * at rest comes at the long period (see TickPacing): heard within two of
   * our periods is recent.
   */
  async checkPredecessor(): Promise<void> {
    const n = this.node;
    const p = n.pred;
    if (!p || p.id === n.id) return;
    const doubted = this.pingPred;
    this.pingPred = false;
    if (!doubted && n.clock.now() - n.predHeardAt < 2 * this.periodMs) return;
    const reply = await n.call(p, METHOD.PING, {});
    // Its key may answer at another id now (admitted again at the same address): that is not our predecessor.
    const ok = reply !== null && n.sameNode(p, reply) ? reply : null;
    if (ok === null && n.pred?.id === p.id) {
      // A live predecessor calls us every tick (stabilize's notify), however slowly it answers our
      // pings: it is dropped only once it has also been silent for two periods and an RPC timeout.
      const silentMs = n.clock.now() - n.predHeardAt;
      const patience = 2 * n.init.stabilizeMs + (n.init.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS);
      if (n.failures.failed(p.id) && silentMs >= patience) this.removeFailed(p, 'predecessor');
    } else if (ok !== null) n.predHeardAt = n.clock.now();
  }

  /** Drop a neighbour that failed (see FailureDetector) from every table; it stays remembered and probed. */
  private removeFailed(peer: NodeRef, as: 'successor' | 'predecessor'): void {
    const n = this.node;
    n.succs.remove(peer.id);
    n.fingers.remove(peer.id);
    if (n.pred?.id === peer.id) n.setPred(null);
    n.failures.forget(peer.id);
    n.remembered.lost(peer, n.clock.now());
    n.counters.removed++;
    const alone = n.successor.id === n.id && n.pred === null;
    n.log.warn(
      { peer: peer.id.slice(0, 8), as, successors: alone ? 0 : n.succs.entries().length },
      alone
        ? 'ring neighbour stopped answering and was removed: this node is alone now, probing the members it remembers'
        : 'ring neighbour stopped answering and was removed',
    );
  }

  /**
   * Probe the remembered members that are due (two per tick, four and
   * every one not probed lately when this node is alone); one that answers
   * at its id leads to a merge step (mergeThrough).
   */
  async probeRemembered(): Promise<void> {
    const n = this.node;
    const alone = n.successor.id === n.id;
    for (const ref of n.remembered.due(n.clock.now(), alone ? 4 : 2, alone)) {
      if (n.stopped) return;
      n.counters.probes++;
      const reply = await n.call(ref, METHOD.PING, {});
      if (reply === null) {
        this.pacing.probeMisses++;
        n.remembered.missed(ref.id, n.clock.now());
      } else if (!n.sameNode(ref, reply)) n.remembered.drop(ref.id);
      else {
        n.remembered.found(ref.id, n.clock.now());
        n.view.learn([ref]);
        this.merged();
        await this.mergeThrough(ref);
      }
    }
  }

  /**
   * One step of ring unification (after Shafaat et al., "Dealing with
   * network partitions in structured overlay networks", 2009): route to our
   * own id starting at `via`, which may belong to another ring. The owner o
   * found there is our successor in via's ring. If o lies between us and
   * our successor, it is a closer successor in the union of both rings and
   * we take it; otherwise o is told about us (notify), and if we lie between
   * o's predecessor and o, o's predecessor links us in at its next stabilize.
   *
   * Why the rings become one: a successor pointer only ever moves closer to
   * its node (here, in stabilize and in checkFromAfar) except when its
   * target fails, so it cannot oscillate. After the heal every node that
   * lost members of the other side probes them and takes its successor in
   * the other ring when that is closer; each such change is passed one node
   * back by notify and stabilize, which is how the two successor chains
   * interleave; nodes that remember nobody across are reached by that
   * propagation and by checkFromAfar, whose lookups cross into the other
   * ring as soon as any finger points there. Each node's successor reaches
   * the true one after finitely many improvements, and the rings are one.
   */
  async mergeThrough(via: NodeRef): Promise<void> {
    const n = this.node;
    const res = await iterativeLookup(n.lookupContext(), n.id, {
      start: [via],
      confirm: false,
      maxHops: n.init.maxHops,
      alpha: n.init.alpha,
    });
    if (!res.ok || res.owner.id === n.id) return;
    const o = res.owner;
    const s = n.successor;
    if (o.id === s.id) return;
    const nx = await n.neighbors(o, true);
    if (!nx) return;
    if (n.successor.id === s.id && (s.id === n.id || inOpen(o.id, n.id, s.id))) {
      n.succs.adopt(o, nx.succs);
      n.fingers.set(0, o);
      n.counters.merges++;
      this.merged();
      n.log.warn(
        { via: via.id.slice(0, 8), successor: o.id.slice(0, 8) },
        'found a closer successor through a member it had lost: merging rings',
      );
    }
  }

  /**
   * fix_fingers(): check the next finger that the successor does not cover.
   * A finger f is right when its predecessor lies before the finger's start;
   * asking f for its predecessor costs one message. Only a finger shown
   * wrong (a node between start and f), missing or dead takes a lookup.
   * A pass over the table that moved no finger settles it (see fingersSettled).
   */
  async fixFinger(): Promise<void> {
    const n = this.node;
    const f = n.fingers;
    const succ = n.successor;
    if (succ.id === n.id) return;
    let i = f.next >= ID_BITS ? 0 : f.next;
    if (i === 0) {
      this.fingersSettled = !this.sweepMoved;
      this.sweepMoved = false;
    }
    i = f.fill(i, succ);
    if (i >= ID_BITS) {
      f.next = 0;
      return;
    }
    const start = fingerStart(n.id, i);
    const finger = f.get(i);
    // A finger that does not lie at or past its start is wrong: look it up afresh.
    if (finger && inHalfOpen(start, n.id, finger.id)) {
      const nb = await n.neighbors(finger, false);
      const p = nb?.pred;
      if (nb && !(p && p.id !== n.id && (p.id === start || inOpen(p.id, start, finger.id)))) {
        const end = f.fill(i, finger);
        f.next = end > i ? end : i + 1;
        return;
      }
      if (!nb) f.remove(finger.id);
    }
    const res = await n.lookupId(start, false);
    if (res.ok && res.owner.id !== n.id) {
      const end = f.fill(i, res.owner);
      f.next = end > i ? end : i + 1;
      if (res.owner.id !== finger?.id) {
        this.sweepMoved = true;
        this.fingersSettled = false;
      }
    } else f.next = i + 1;
  }

  /**
   * Hand-off on join, pushed by the successor (Stoica et al. 2003 IV-E has
   * the joining node take its keys from its successor; the joiner's pull
   * in ChordNode.join does that). The pull alone loses records: a put whose
   * lookup named us as owner before the new node was linked (it joined an
   * instant earlier, or routing skipped it while several nodes joined side
   * by side) stores on us after the joiner's pull, and the ring then routes
   * that key to the new node, which never gets it; later joiners next to it
   * pull from it and the record is gone from every node a lookup asks.
   * So once a new predecessor p sits inside our old range, the next tick
   * (a stabilize period later, past any put still in flight) sends p every
   * record we hold outside (p, self]: what p owns and what it replicates.
   */
  async handOver(): Promise<void> {
    const n = this.node;
    const p = this.handOverTo;
    this.handOverTo = null;
    if (!p || n.pred?.id !== p.id || p.id === n.id) return;
    await this.push(p, n.store.outside(p.id, n.id), false);
  }

  /**
   * Records to their owners after the ring changed. handOver gives a new
   * predecessor p what we hold outside (p, self], which is right for a join
   * (p owns or replicates all of it) but not after a merge: a node whose
   * side was cut off owned the whole arc of the other side during the cut
   * and holds records put there meanwhile; in the merged ring they belong
   * to several nodes of that arc, not just to p, and no one else has them.
   * So every record we hold outside (pred, self] is sent to its owner and
   * the owner's r-1 successors, found by one lookup per run of records with
   * the same owner (records sorted in ring order from our id: the owner o
   * of the first one owns every next one up to o), at most `REHOME_LOOKUPS`
   * lookups per tick, beside the tick rather than in it (a lookup may wait
   * on nodes that went silent, and stabilize must not wait with it). A
   * lookup that fails puts the pass off until the ring has been quiet for
   * two stabilize periods. A store that already holds the version keeps it, so
   * sending a record twice costs only bytes. Our own range reaches our new
   * successors through replicate.
   */
  private startRehome(): void {
    if (this.rehoming !== null) return;
    if (this.rehomeQueue.length === 0 && this.node.clock.now() < this.rehomeAt) return;
    this.rehoming = this.rehome()
      .catch((e: unknown) => this.node.log.debug({ err: String(e) }, 'rehome pass failed'))
      .finally(() => {
        this.rehoming = null;
      });
  }

  async rehome(): Promise<void> {
    const n = this.node;
    const now = n.clock.now();
    if (this.rehomeQueue.length === 0) {
      if (now < this.rehomeAt) return;
      const pred = n.pred;
      if (!pred || pred.id === n.id) return;
      this.rehomeAt = Number.POSITIVE_INFINITY;
      this.rehomeFirst = null;
      this.rehomeQueue = n.store
        .outside(pred.id, n.id)
        .map((rec) => ({ rec, pos: keyPosition(rec.key) }))
        .sort((x, y) => compareFrom(n.id, x.pos, y.pos));
      n.counters.rehomes++;
    }
    for (let i = 0; i < REHOME_LOOKUPS && this.rehomeQueue.length > 0 && !n.stopped; i++) {
      const q = this.rehomeQueue;
      const res = await n.lookupId(q[0].pos, true);
      if (!res.ok) {
        // The ring is still moving: start over once it has been quiet a while.
        this.rehomeQueue = [];
        this.ringChanged();
        return;
      }
      const o = res.owner;
      let end = 1;
      if (o.id !== n.id) while (end < q.length && inHalfOpen(q[end].pos, n.id, o.id)) end++;
      const recs = q.slice(0, end).map((e) => e.rec);
      this.rehomeQueue = q.slice(end);
      const targets = res.replicas.filter((r) => r.id !== n.id);
      await Promise.all(targets.map((t) => this.push(t, recs, false)));
      n.counters.rehomed += recs.length;
    }
  }

  /** Re-replication: every successor that should hold a copy of our range gets it once. */
  async replicate(): Promise<void> {
    const n = this.node;
    const pred = n.pred;
    if (!pred) return;
    const want = n.succs
      .entries()
      .slice(0, n.r - 1)
      .filter((s) => s.id !== n.id);
    const wanted = new Set(want.map((s) => s.id));
    for (const id of this.syncedTo) if (!wanted.has(id)) this.syncedTo.delete(id);
    const todo = want.filter((s) => !this.syncedTo.has(s.id));
    if (todo.length === 0) return;
    const recs = n.store.range(pred.id, n.id);
    await Promise.all(todo.map((t) => this.push(t, recs, true)));
  }

  private async push(to: NodeRef, recs: DhtRecord[], synced: boolean): Promise<void> {
    for (let i = 0; i < recs.length; i += CHUNK) {
      const ok = await this.node.call(to, METHOD.STORE, { records: recs.slice(i, i + CHUNK) });
      if (ok === null) return;
    }
    if (synced) this.syncedTo.add(to.id);
  }

  /**
   * Republish what this node put, a few records per tick, each with a fresh
   * creation time. Records due again soon (a put no owner was confirmed for,
   * or more due than one tick republishes) keep the tick at the short period.
   */
  async republish(): Promise<void> {
    const n = this.node;
    const now = n.clock.now();
    const soon = now + 4 * n.init.stabilizeMs;
    let budget = 16;
    this.republishSoon = false;
    for (const [key, p] of this.published) {
      if (p.nextAt <= soon) this.republishSoon = true;
      if (budget === 0) break;
      if (p.nextAt > now) continue;
      budget--;
      const rec: DhtRecord = { ...p.record, created: n.clock.wallNow(), seq: p.record.seq + 1 };
      p.record = rec;
      p.nextAt = now + n.init.republishMs;
      if (this.published.get(key) !== p) continue;
      const res = await n.storeRecord(rec);
      // No owner confirmed yet (nodes joining around it): try again in two periods, not a republish period.
      if (!res.ok && res.error === 'DHT_LOOKUP_FAILED') {
        p.nextAt = n.clock.now() + 2 * n.init.stabilizeMs;
        this.republishSoon = true;
      }
    }
  }
}
