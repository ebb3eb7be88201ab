import type { NodeRef } from '../../rpc/types.ts';
import type { DhtRecord } from '../store/record.ts';
import { compareFrom, inHalfOpen, keyPosition } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import { decodeRecordsReply, METHOD } from './messages.ts';

const CHUNK = 1000;
/** Owner lookups per tick when records are sent to their owners after a ring change (see rehome). */
const REHOME_LOOKUPS = 4;

/**
 * Where a node's records go, as part of its maintenance tick: the hand-off
 * to a joining predecessor (pulled by the joiner, pushed by us), copies of
 * our range to new successors (re-replication), every record we hold
 * outside our range sent to its owners after a ring change (rehome), and
 * the republish of what this node put.
 */
export class RecordUpkeep {
  readonly published = new Map<string, { record: DhtRecord; nextAt: number }>();
  /** A record this node put is due for republishing within a few short periods (see republish). */
  republishSoon = false;
  /** Successors that already hold every record of our range (pred, self]. */
  private readonly syncedTo = new Set<string>();
  /** Our predecessor failed and none has linked in since (see predFailed). */
  private orphaned = false;
  /** The last replicate sent everything we hold, not just our range (see replicate). */
  private wide = false;
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

  constructor(private readonly node: ChordNode) {}

  /** Work the next ticks must do soon: a hand-off, a rehome due or under way, a republish due. */
  get pending(): boolean {
    return (
      this.republishSoon ||
      this.handOverTo !== null ||
      this.rehomeQueue.length > 0 ||
      this.rehomeAt !== Number.POSITIVE_INFINITY
    );
  }

  async tick(): Promise<void> {
    await this.handOver();
    this.startRehome();
    await this.replicate();
    await this.republish();
  }

  /** Our range (pred, self] grew: every successor must get it again. */
  rangeGrew(): void {
    this.syncedTo.clear();
  }

  /**
   * Our predecessor failed and was dropped. We own its range now, but with no predecessor we cannot tell
   * where that range starts, and a new one links in only once the node before the failed one notices it
   * (its next tick, one long period at rest): until then every record we hold goes to our successors (see
   * replicate), so that a range whose owner crashed has r copies again within a tick or two instead of
   * waiting on the ring to relink, while the next crash nearby could take the last copy. And the node
   * that links in next may be one that only the failed predecessor knew (a node that joined just before
   * it crashed): it gets what we hold outside our new range, as a joiner would (see handOver).
   */
  predFailed(): void {
    this.orphaned = true;
    this.syncedTo.clear();
  }

  /** A predecessor links in after predFailed: it gets our records outside (pred, self] at the next tick. */
  predFound(pred: NodeRef): void {
    if (!this.orphaned) return;
    this.orphaned = false;
    this.handOverTo = pred;
  }

  /** A new predecessor inside our old range: it gets our records at the next tick. */
  rangeShrank(pred: NodeRef): void {
    this.handOverTo = pred;
    this.ringChanged();
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

  /** Hand-off on join, pulled by the joiner (section IV-E); see handOver for the successor's push. */
  async pullHandoff(succ: NodeRef): Promise<void> {
    const n = this.node;
    const raw = await n.call(succ, METHOD.HANDOFF, { from: n.self });
    const rep = raw === null ? null : decodeRecordsReply(raw);
    if (rep?.ok) for (const r of rep.value.records) n.store.put(r);
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

  /**
   * Re-replication: every successor that should hold a copy of our range gets it once. The holders are
   * our first r-1 successors that have not missed an RPC (a suspected one may be gone: the next one gets
   * the copy too, which costs bytes if it was only slow). While our predecessor is suspected and silent
   * for two periods, or was dropped and none has linked in since (see predFailed), the range we may own
   * reaches back over its range, whose start we do not know: every record we hold goes out, once per such
   * episode. Waiting for the failure to be settled (two strikes, a grace period, RPC timeouts on each tick
   * spent on the silent neighbours) takes seconds during which the next crash nearby could take the last
   * copy.
   */
  async replicate(): Promise<void> {
    const n = this.node;
    const pred = n.pred;
    if (!pred && !this.orphaned) return;
    // A predecessor that called us lately is alive, whatever one slow answer of it suggests: under load a
    // missed ping alone would send whole stores around.
    const wide = !pred || (n.failures.doubted(pred.id) && n.clock.now() - n.predHeardAt >= 2 * n.init.stabilizeMs);
    if (wide !== this.wide) {
      this.wide = wide;
      this.syncedTo.clear();
    }
    const want = n.succs
      .entries()
      .filter((s) => s.id !== n.id && !n.failures.doubted(s.id))
      .slice(0, n.r - 1);
    const wanted = new Set(want.map((s) => s.id));
    for (const id of this.syncedTo) if (!wanted.has(id)) this.syncedTo.delete(id);
    const todo = want.filter((s) => !this.syncedTo.has(s.id));
    if (todo.length === 0) return;
    const recs = pred && !wide ? n.store.range(pred.id, n.id) : n.store.all();
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
