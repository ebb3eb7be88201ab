import type { NodeRef } from '../../rpc/types.ts';
import { compareFrom, fingerStart, ID_BITS, inHalfOpen, inOpen, lastFingerCovered } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import { DEFAULT_RPC_TIMEOUT_MS } from './chord-types.ts';
import { decodeRefsReply, METHOD } from './messages.ts';
import { keepLinks, TickPacing } from './pacing.ts';
import { RecordUpkeep } from './record-upkeep.ts';
import { checkFromAfar, closestLiveAfterSelf, probeRemembered } from './ring-merge.ts';

/**
 * The periodic work of a Chord node, batched into one jittered tick
 * (Stoica et al. 2003, Fig. 7 and section V): stabilize, check_predecessor,
 * fix_fingers (one finger per tick), the ring-merge probes after a partition,
 * and the records' upkeep (record-upkeep.ts).
 */
export class Maintenance {
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
  /** Ping the predecessor at the next tick, however lately it was heard from (see predDoubted). */
  private pingPred = false;
  /** Ticks in a row without a predecessor: nobody links to us. */
  private orphanTicks = 0;

  /** The tick period (adaptive stabilization, pacing.ts). */
  readonly pacing: TickPacing;

  /** Where the records go: hand-off, re-replication, rehome after ring changes, republish (record-upkeep.ts). */
  readonly records: RecordUpkeep;

  constructor(private readonly node: ChordNode) {
    this.pacing = new TickPacing(node);
    this.records = new RecordUpkeep(node);
  }

  /** The period until the next tick: stabilizeMs, doubled after each calm tick up to maxStabilizeMs. */
  get periodMs(): number {
    return this.pacing.periodMs;
  }

  rangeGrew(): void {
    this.records.rangeGrew();
    this.pacing.wake();
  }

  rangeShrank(pred: NodeRef): void {
    this.records.rangeShrank(pred);
    this.pacing.wake();
  }

  /** Records this node put and republishes (batch-put.ts adds to them). */
  get published(): RecordUpkeep['published'] {
    return this.records.published;
  }

  /** A record this node put is due for republishing within a few short periods (see RecordUpkeep.republish). */
  get republishSoon(): boolean {
    return this.records.republishSoon;
  }

  set republishSoon(v: boolean) {
    this.records.republishSoon = v;
  }

  /** A merge step took place, or a lost member answers again (see RecordUpkeep.merged). */
  merged(): void {
    this.records.merged();
  }

  /** Hand-off on join, pulled by the joiner (see RecordUpkeep.pullHandoff). */
  pullHandoff(succ: NodeRef): Promise<void> {
    return this.records.pullHandoff(succ);
  }

  /** Republish what this node put that is due (see RecordUpkeep.republish). */
  republish(): Promise<void> {
    return this.records.republish();
  }

  async tick(): Promise<void> {
    const n = this.node;
    if (n.stopped) return;
    this.ticks++;
    await this.stabilize();
    if (n.stopped) return;
    await probeRemembered(n);
    if (n.stopped) return;
    if (n.pred === null) this.orphanTicks++;
    else this.orphanTicks = 0;
    if (this.joinChecks > 0) this.joinChecks--;
    if (this.joinChecks > 0 || this.ticks % 16 === 0 || this.orphanTicks >= 2) await checkFromAfar(n);
    await this.checkPredecessor();
    await this.fixFinger();
    await this.records.tick();
    if (this.ticks % 16 === 0) n.store.sweep();
    // By now stabilize has dropped crashed nodes from successor lists: the view may hear of muted ones again.
    if (this.ticks % 8 === 0) n.view.unmute();
    keepLinks(n);
    const pending = !this.fingersSettled || this.records.pending || this.joinChecks > 0 || this.orphanTicks > 0;
    this.pacing.adapt(pending);
  }

  /** stabilize() of Fig. 7 with the successor list of section V-B; a dead successor is replaced by the next. */
  async stabilize(): Promise<void> {
    const n = this.node;
    for (let attempt = 0; attempt < n.r + 1; attempt++) {
      const s = n.successor;
      if (s.id === n.id) {
        const next = await closestLiveAfterSelf(n);
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
    if (n.pred?.id === peer.id) {
      n.setPred(null);
      this.records.predFailed();
    }
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
}
