import type { Caller, NodeRef, Payload, RpcEndpoint } from '../../rpc/types.ts';
import type { Clock } from '../../util/clock.ts';
import { OverlayError } from '../../util/errors.ts';
import { type Logger, silentLogger } from '../../util/log.ts';
import type { Random } from '../../util/random.ts';
import { type Metrics, noMetrics } from '../../util/metrics.ts';
import type { DhtRecord } from '../store/record.ts';
import { RecordStore } from '../store/record-store.ts';
import { inHalfOpen, inOpen, keyPosition } from '../store/ring-id.ts';
import { type PutEntry, type PutManyOptions, publish, putMany, retrySoon } from './batch-put.ts';
import { type DirectFetch, type DirectFetchOptions, getManyDirect } from './direct-fetch.ts';
import { handleChordRequest } from './handlers.ts';
import { answeredAsItself, askNeighbors, callPeer, lookupContextOf } from './peer-calls.ts';
import { getFrom, getMany, getReplicas, storeRecord } from './record-ops.ts';
import { findPlaceAsClient, handOverPlace, joinThrough, settleAmong } from './joining.ts';
import { iterativeLookup, LookupBatch, type LookupContext, type LookupResult } from './lookup.ts';
import { FailureDetector } from './failure-detector.ts';
import { Maintenance } from './maintenance.ts';
import { type FindReply, METHOD, type NeighborsReply } from './messages.ts';
import { RememberedMembers } from './remembered-members.ts';
import { FingerTable, RingView, SuccessorList } from './routing-table.ts';
import { TickTimer } from './tick-timer.ts';
import {
  type ChordComponents,
  type ChordInit,
  type GetResult,
  idBoundToKey,
  type LookupOutcome,
  MAX_STABILIZE_FACTOR,
  type PutResult,
} from './chord-types.ts';
import { bytesEqual } from '../../util/bytes.ts';

/**
 * One Chord node (Stoica et al., IEEE/ACM ToN 2003). Protocol state lives
 * here; the endpoint is its only I/O and the clock its only timer source.
 */
export class ChordNode {
  readonly self: NodeRef;
  readonly id: string;
  readonly succs: SuccessorList;
  readonly fingers: FingerTable;
  readonly store: RecordStore;
  /** Nodes heard of lately (see RingView); only reads that check what they get use it. */
  readonly view: RingView;
  readonly r: number;
  pred: NodeRef | null = null;
  stopped = false;
  /**
   * A client holds no ring range (a node behind a NAT, docs/design.md "Adapters behind NAT"): it never notifies,
   * so no member puts it in a successor list or finger table, stores nothing, and only looks up, fetches and puts
   * through the members it knows.
   */
  client = false;
  readonly counters = {
    malformed: 0,
    refusedRefs: 0,
    rpcFailures: 0,
    lookups: 0,
    staleRefs: 0,
    /** Neighbours removed after they failed (see FailureDetector). */
    removed: 0,
    /** Probes of remembered members, and merges with another ring they led to. */
    probes: 0,
    merges: 0,
    /** Hand-off requests from a node that is not becoming our predecessor: answered with no records. */
    handoffsDenied: 0,
    /** Passes sending the records held outside our range to their owners after a ring change, and records sent. */
    rehomes: 0,
    rehomed: 0,
  };
  /** Suspicion before removal, and the RPC timeout that follows observed round trips. */
  readonly failures: FailureDetector;
  /** Members lost and anchors (bootstraps), probed until they answer: the way back after a partition. */
  readonly remembered: RememberedMembers;
  /** Smoothed round-trip time of this node's answered RPCs (ms; 0 before the first): the failure detector's SRTT. */
  get rttMs(): number {
    return this.failures.srtt;
  }
  /** @internal */ readonly endpoint: RpcEndpoint;
  /** @internal */ readonly clock: Clock;
  /** @internal */ readonly random: Random;
  /** @internal */ readonly log: Logger;
  /** @internal */ readonly metrics: Metrics;
  /** @internal */ readonly init: Required<Omit<ChordInit, 'store' | 'verifyRef' | 'rpcTimeoutMs' | 'viewSize'>> & {
    rpcTimeoutMs?: number;
  };
  /** @internal */ predHeardAt = 0;
  /** @internal When this node last told a peer that a neighbour of it did not answer (LookupContext.report). */
  readonly reportedAt = new Map<string, number>();
  /** @internal */ readonly maintenance: Maintenance;
  private readonly verifyPolicy: (ref: NodeRef) => boolean;
  private readonly verified = new Map<string, Uint8Array>();
  private readonly ticks = new TickTimer(this);

  static create(components: ChordComponents, init: ChordInit = {}): ChordNode {
    return new ChordNode(components, init);
  }

  constructor(components: ChordComponents, init: ChordInit = {}) {
    this.endpoint = components.endpoint;
    this.clock = components.clock;
    this.random = components.random;
    this.metrics = components.metrics ?? noMetrics;
    this.self = components.endpoint.self;
    this.id = this.self.id;
    this.init = {
      replicas: init.replicas ?? 3,
      stabilizeMs: init.stabilizeMs ?? 1000,
      maxStabilizeMs: Math.max(
        init.maxStabilizeMs ?? MAX_STABILIZE_FACTOR * (init.stabilizeMs ?? 1000),
        init.stabilizeMs ?? 1000,
      ),
      jitter: init.jitter ?? 0.25,
      rpcTimeoutMs: init.rpcTimeoutMs,
      maxHops: init.maxHops ?? 32,
      alpha: init.alpha ?? 3,
      republishMs: init.republishMs ?? 600_000,
      installHandler: init.installHandler ?? true,
    };
    if (!Number.isInteger(this.init.replicas) || this.init.replicas < 1 || this.init.replicas > 32)
      throw new OverlayError('BAD_CONFIG', 'replicas must be an integer in 1..32');
    this.r = this.init.replicas;
    this.verifyPolicy = init.verifyRef ?? idBoundToKey;
    this.log = (components.logger ?? silentLogger).child({ component: 'chord', node: this.id.slice(0, 8) });
    this.succs = new SuccessorList(this.self, this.r);
    this.fingers = new FingerTable(this.self);
    this.view = new RingView(this.self, init.viewSize ?? 256);
    this.store = new RecordStore({ clock: this.clock }, init.store);
    const period = this.init.stabilizeMs;
    this.failures = new FailureDetector(this.clock, 2, 2 * period);
    this.remembered = new RememberedMembers(this.random, 2 * period, 10 * period);
    this.maintenance = new Maintenance(this);
    if (!this.verifyPolicy(this.self)) throw new OverlayError('IDENTITY_BAD_KEY', 'own id is not bound to own key');
    if (this.init.installHandler) this.endpoint.onRequest((m, p, c) => this.handleRequest(m, p, c));
  }

  /** Answer one Chord RPC (for callers that share the endpoint with other protocols). */
  handleRequest(method: string, payload: Payload, caller: Caller): Payload {
    // A peer that calls us is alive, however late its answers reach us; one we lost is reachable again.
    const from = caller.ref?.id;
    if (from !== undefined && from !== this.id) {
      this.failures.alive(from);
      // A member we had lost calls again (a partition healed): probe it and run the merge at the short period.
      if (this.remembered.wake(from, this.clock.now())) this.maintenance.pacing.wake();
    }
    return handleChordRequest(this, method, payload, caller);
  }

  /**
   * Nodes to find the ring through whenever this node is cut off from it
   * (the bootstraps): probed with backoff forever, see RememberedMembers.
   */
  remember(refs: readonly NodeRef[]): void {
    for (const r of refs) if (r.id !== this.id && this.verify(r)) this.remembered.anchor(r, this.clock.now());
  }

  get successor(): NodeRef {
    return this.succs.first;
  }

  /**
   * Join the ring through any known node (section IV-E, see joining.ts), or
   * create a new ring when `bootstrap` is undefined.
   */
  async join(bootstrap: NodeRef | undefined): Promise<void> {
    if (bootstrap && bootstrap.id !== this.id) await joinThrough(this, bootstrap);
    this.stopped = false;
    this.ticks.schedule();
  }

  /**
   * Join as a client (see `client`): the successor of our id, through the first contact that answers, gives
   * routing hints, kept fresh without ever notifying anyone.
   */
  async joinAsClient(contacts: readonly NodeRef[]): Promise<void> {
    this.client = true;
    this.ticks.clientContacts = contacts.filter((c) => c.id !== this.id);
    await findPlaceAsClient(this, contacts);
    this.stopped = false;
    this.ticks.scheduleClient();
  }

  /**
   * Simulator warm start: take a converged routing state (predecessor,
   * successor list, fingers by index) instead of joining, and start the
   * periodic work. For measuring lookups on rings too large to build
   * join by join; everything after this runs the normal protocol.
   */
  warmStart(pred: NodeRef | null, succs: NodeRef[], fingers: (NodeRef | undefined)[]): void {
    if (succs.length > 0) this.succs.adopt(succs[0], succs.slice(1));
    this.pred = pred;
    fingers.forEach((f, i) => {
      if (f) this.fingers.set(i, f);
    });
    this.maintenance.joinChecks = 0;
    this.stopped = false;
    this.ticks.schedule();
  }

  /**
   * Take up this node's place again after a crash, among the members it knows (see settleAmong). False when
   * none answers (maintenance still starts, with the list as given).
   */
  async rejoin(known: readonly NodeRef[]): Promise<boolean> {
    const pulled = await settleAmong(this, known);
    // Unlike warmStart, the first ticks check the place from afar, as after a join.
    this.stopped = false;
    this.ticks.schedule();
    return pulled;
  }

  /** Leave gracefully: records and neighbours go to the successor, the successor to the predecessor. */
  async leave(): Promise<void> {
    this.ticks.cancel();
    if (!this.client) await handOverPlace(this);
    this.stop();
  }

  /** Stop all timers; the node answers nothing more. The endpoint stays open (its owner closes it). */
  stop(): void {
    this.stopped = true;
    this.ticks.cancel();
  }

  /** Find the node responsible for a DHT key (its ring position is SHA-1 of the key). */
  lookup(key: string): Promise<LookupOutcome> {
    return this.lookupId(keyPosition(key));
  }

  async lookupId(target: string, confirm = true, batch?: LookupBatch): Promise<LookupOutcome> {
    this.counters.lookups++;
    const res: LookupResult = await iterativeLookup(this.lookupContext(), target, {
      confirm,
      maxHops: this.init.maxHops,
      alpha: this.init.alpha,
      batch,
    });
    if (!res.ok) return res;
    this.metrics.observe('chord_lookup_hops', res.hops);
    const replicas = [res.owner, ...res.succs.filter((s) => s.id !== res.owner.id)].slice(0, this.r);
    return { ok: true, owner: res.owner, replicas, hops: res.hops, queries: res.queries };
  }

  /** Store a record at the key's owner and its r-1 successors; this node republishes it until `unpublish`. */
  async put(key: string, value: Uint8Array | string, ttlMs: number): Promise<PutResult> {
    const p = publish(this, key, value, ttlMs);
    if (!p.ok) return p;
    const { entry } = p;
    const res = await this.storeRecord(entry.record);
    // Not stored (no owner could be confirmed while nodes join): the maintenance tick tries again soon.
    if (!res.ok && res.error === 'DHT_LOOKUP_FAILED') retrySoon(this, entry);
    return res;
  }

  /**
   * Several puts at once, each as `put` would do it alone, sharing one lookup batch and sending each holder
   * one STORE with all its records (batch-put.ts); results in the order of `entries`. `opts.storeAfter`: the
   * STOREs wait for it, the lookups do not.
   */
  putMany(entries: readonly PutEntry[], ttlMs: number, opts?: PutManyOptions): Promise<PutResult[]> {
    return putMany(this, entries, ttlMs, opts);
  }

  unpublish(key: string): void {
    this.maintenance.published.delete(key);
  }

  /** @internal Lookup the owner, then store on it and its successors. */
  storeRecord(rec: DhtRecord): Promise<PutResult> {
    return storeRecord(this, rec);
  }

  /** Fetch a key from its owner, falling back to the replicas; the validator picks among what they return. */
  async get(key: string): Promise<GetResult> {
    return getFrom(this, key, await this.lookup(key));
  }

  /**
   * Every replica's copy of each key (those this node's validator accepts), the lookups sharing one batch: for
   * a reader that must not take one holder's word, since a holder can hide a record or hand back an older one,
   * while all r replicas would have to collude to do so. A key whose lookup failed is left out of the map
   * (so a reader can tell "no record" from "not read").
   */
  getReplicas(keys: readonly string[]): Promise<Map<string, DhtRecord[]>> {
    return getReplicas(this, keys);
  }

  /**
   * Several ring positions at once, the lookups sharing their replies (a
   * node's successor list serves every target it covers, see LookupBatch);
   * each answer passes the same checks as a single lookup. `avoid`: ids
   * not to ask.
   */
  lookupMany(targets: readonly string[], confirm = true, avoid: Iterable<string> = []): Promise<LookupOutcome[]> {
    const batch = new LookupBatch();
    // Nodes the caller already found silent: treated as dead from the start.
    for (const id of avoid) batch.dead.add(id);
    return Promise.all(targets.map((t) => this.lookupId(t, confirm, batch)));
  }

  /** Parallel multi-get: every key is looked up (one shared batch) and fetched at once. */
  getMany(keys: readonly string[]): Promise<Map<string, GetResult>> {
    return getMany(this, keys);
  }

  /**
   * Read keys straight from their likely holders, without confirming the
   * owner (direct-fetch.ts): only records this node's validator accepts, and
   * sound only for keys whose validator authenticates the value; keys it
   * does not return are the caller's to read with `getMany`.
   */
  getManyDirect(keys: readonly string[], opts?: DirectFetchOptions): Promise<DirectFetch> {
    return getManyDirect(this, keys, opts);
  }

  /** The successor list, nearest first. */
  get successors(): readonly NodeRef[] {
    return this.succs.entries();
  }

  /**
   * The first `count` nodes this node knows at or after ring position `pos`
   * (its guess of the owner and the next replicas, see RingView); the
   * first call starts the view from the routing table.
   */
  guessHolders(pos: string, count: number): NodeRef[] {
    if (!this.view.started)
      this.view.activate([...this.succs.entries(), ...this.fingers.distinct(), ...(this.pred ? [this.pred] : [])]);
    return this.view.holders(pos, count);
  }

  /** Is this ref's id bound to its key under the node's policy? (Cached per id.) */
  verify(ref: NodeRef): boolean {
    if (this.verifyPolicy === idBoundToKey) return idBoundToKey(ref);
    const hit = this.verified.get(ref.id);
    if (hit && bytesEqual(hit, ref.key)) return true;
    if (!this.verifyPolicy(ref)) return false;
    if (this.verified.size > 4096) this.verified.clear();
    this.verified.set(ref.id, ref.key);
    return true;
  }

  /** FIND as answered by this node: its successor list and closest preceding nodes for `target`. */
  localStep(target: string): FindReply {
    const succs = this.succs.entries();
    const s = succs[0];
    const next = s && inHalfOpen(target, this.id, s.id) ? [] : this.fingers.closestPreceding(target, succs, 3);
    return { succs: succs as NodeRef[], next };
  }

  /** @internal */
  setPred(p: NodeRef | null): void {
    const old = this.pred;
    this.pred = p;
    // The first predecessor after one failed (see RecordUpkeep.predFailed) gets our records outside our range.
    if (p && !old) this.maintenance.records.predFound(p);
    // Our key range (pred, self] grew: every replica must get the new records.
    if (p && (!old || (p.id !== old.id && !inOpen(p.id, old.id, this.id)))) this.maintenance.rangeGrew();
    // It shrank: a node came in between (a join, or one that routing skipped until now); it gets our records.
    else if (p && old && p.id !== old.id) {
      this.maintenance.rangeShrank(p);
      // The old predecessor still takes us for its successor: tell it (a `changed` ping, see TickPacing) so
      // that its stabilize links the newcomer at the short period, not after a long one. Without it a node
      // that a crash left unlinked and that then notified us stays outside the ring for a long period.
      if (old.id !== this.id) void this.call(old, METHOD.PING, { changed: true });
    }
    if (p) this.predHeardAt = this.clock.now();
  }

  /** @internal An RPC that never throws: null on timeout, refusal or a closed peer (peer-calls.ts). */
  call(to: NodeRef, method: string, payload: Payload): Promise<Payload | null> {
    return callPeer(this, to, method, payload);
  }

  /** @internal Did `to` answer as itself? (See answeredAsItself.) */
  sameNode(to: NodeRef, reply: Payload): boolean {
    return answeredAsItself(this, to, reply);
  }

  /** @internal */
  neighbors(to: NodeRef, notify: boolean): Promise<NeighborsReply | null> {
    return askNeighbors(this, to, notify);
  }

  /** @internal */
  lookupContext(): LookupContext {
    return lookupContextOf(this);
  }

  /** @internal The tick period dropped back to the short one (Maintenance.wake): a tick due later comes sooner. */
  hurry(): void {
    this.ticks.hurry();
  }
}
