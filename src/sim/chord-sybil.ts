import { type LookupContext, iterativeLookup } from '../dht/chord/lookup.ts';
import type { FindReply, NeighborsReply } from '../dht/chord/messages.ts';
import { lowerBound } from '../dht/whanau/ring.ts';
import { FingerTable } from '../dht/chord/routing-table.ts';
import { fingerStart, ID_BITS, inHalfOpen } from '../dht/store/ring-id.ts';
import type { NodeRef } from '../rpc/types.ts';
import { SeededRandom } from '../util/random.ts';
import { mean, percentile } from '../util/stats.ts';

/**
 * Chord under the Sybil attack, the counterpart of `sim whanau`'s attack
 * (issue 5). Chord has no social graph: an attacker is simply a set of S
 * identities it may create freely (with ids bound to keys by SHA-1, picking
 * an id in a given arc of width 2^160/n costs about n key generations).
 *
 * The ring is the converged state of n honest nodes plus S Sybils (successor
 * lists of r, fingers successor(id + 2^i), as ChordTestnet.warm builds it);
 * Sybils keep the ring going, so honest tables name them like anyone else.
 * Lookups run the real iterative, checked lookup (dht/chord/lookup.ts) from
 * random honest nodes; each FIND and NEIGHBORS is answered from the ring:
 *  - an honest node answers truthfully (localStep of chord-node.ts);
 *  - answer 'lie': the Sybils collude and pretend the ring holds only them:
 *    a FIND gets the next r Sybils as successors and the Sybil closest before
 *    the target as next hop; a NEIGHBORS names the previous Sybil as
 *    predecessor and the next r Sybils as successors;
 *  - answer 'drop': Sybils never answer (timeouts).
 * Placement 'cluster' puts S/T Sybil ids just after each of T target keys, so
 * they are the keys' first successors and hold their replicas (the classic
 * Sybil attack on a DHT); lookups then ask for the target keys. Placement
 * 'random' gives Sybils uniform ids; lookups ask for uniform keys.
 * A record lives on the first r nodes at or after its key; Sybils holding it
 * serve nothing. A lookup succeeds when the get (fetch from the owner, then
 * from the other replicas) reaches an honest holder. Messages: FINDs and
 * NEIGHBORS of the lookup plus the fetches.
 */

export type SybilPlacement = 'cluster' | 'random';
export type SybilAnswer = 'lie' | 'drop';

export interface ChordSybilOptions {
  nodes: number;
  sybils: number;
  placement?: SybilPlacement;
  answer?: SybilAnswer;
  lookups?: number;
  /** Keys the clustering attack aims at (default 5, as in sim whanau). */
  targets?: number;
  replicas?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ChordSybilResult {
  nodes: number;
  sybils: number;
  placement: SybilPlacement;
  answer: SybilAnswer;
  targets: number;
  replicas: number;
  seed: number;
  lookups: number;
  succeeded: number;
  failed: number;
  successRate: number;
  /** Lookups that ended without an owner (no live node left, hop limit). */
  lookupFailed: number;
  /** Lookups that accepted a Sybil as the owner. */
  sybilOwner: number;
  medianMessages: number;
  p99Messages: number;
  meanMessages: number;
  meanHops: number;
}

const NO_KEY = new Uint8Array(32);
const MOD = 1n << 160n;

function hexId(x: bigint): string {
  return ((x + MOD) % MOD).toString(16).padStart(40, '0');
}

/** The converged ring: ids sorted, which ones are Sybils, and the answers each kind of node gives. */
export class SybilRing {
  readonly ids: string[];
  readonly sybil: Uint8Array;
  /** Ranks of the Sybils, in ring order. */
  readonly sybilRanks: Int32Array;
  private readonly sybilIndex: Int32Array;
  private readonly refs: (NodeRef | undefined)[];
  private readonly tables = new Map<number, FingerTable>();

  constructor(
    honestIds: string[],
    sybilIds: string[],
    readonly r: number,
    readonly answer: SybilAnswer,
  ) {
    const all = [...honestIds.map((id) => ({ id, s: 0 })), ...sybilIds.map((id) => ({ id, s: 1 }))];
    all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.ids = all.map((x) => x.id);
    this.sybil = Uint8Array.from(all, (x) => x.s);
    const sr: number[] = [];
    this.sybilIndex = new Int32Array(all.length).fill(-1);
    for (let k = 0; k < all.length; k++)
      if (all[k].s) {
        this.sybilIndex[k] = sr.length;
        sr.push(k);
      }
    this.sybilRanks = Int32Array.from(sr);
    this.refs = new Array(all.length);
  }

  get size(): number {
    return this.ids.length;
  }

  ref(rank: number): NodeRef {
    let r = this.refs[rank];
    if (!r) {
      r = { id: this.ids[rank], addr: `n${rank}`, key: NO_KEY };
      this.refs[rank] = r;
    }
    return r;
  }

  rankOf(id: string): number {
    const k = lowerBound(this.ids, id);
    return k < this.ids.length && this.ids[k] === id ? k : -1;
  }

  /** The first node at or after position x: the owner of key x. */
  ownerRank(x: string): number {
    return lowerBound(this.ids, x) % this.ids.length;
  }

  /** The r nodes after rank a, in ring order. */
  private successors(a: number): NodeRef[] {
    const out: NodeRef[] = [];
    for (let k = 1; k <= this.r && k < this.size; k++) out.push(this.ref((a + k) % this.size));
    return out;
  }

  private fingers(a: number): FingerTable {
    let t = this.tables.get(a);
    if (t) return t;
    t = new FingerTable(this.ref(a));
    const id = this.ids[a];
    for (let i = 0; i < ID_BITS; ) {
      const f = this.ownerRank(fingerStart(id, i));
      if (f === a) {
        i++;
        continue;
      }
      i = t.fill(i, this.ref(f));
    }
    this.tables.set(a, t);
    return t;
  }

  /** An honest node's FIND answer: localStep of chord-node.ts on the converged tables. */
  honestFind(a: number, target: string): FindReply {
    const succs = this.successors(a);
    const s = succs[0];
    const next = s && inHalfOpen(target, this.ids[a], s.id) ? [] : this.fingers(a).closestPreceding(target, succs, 3);
    return { succs, next };
  }

  /** The Sybil at Sybil-ring index j (wrapping). */
  private sybilAt(j: number): NodeRef {
    const n = this.sybilRanks.length;
    return this.ref(this.sybilRanks[((j % n) + n) % n]);
  }

  private sybilSuccessors(j: number): NodeRef[] {
    const out: NodeRef[] = [];
    for (let k = 1; k <= this.r && k < this.sybilRanks.length; k++) out.push(this.sybilAt(j + k));
    return out;
  }

  /** FIND(target) at the node of this rank, as it answers; null for no answer (or no such node). */
  find(rank: number, target: string): FindReply | null {
    if (rank < 0) return null;
    if (!this.sybil[rank]) return this.honestFind(rank, target);
    if (this.answer === 'drop') return null;
    const j = this.sybilIndex[rank];
    const succs = this.sybilSuccessors(j);
    if (succs.length === 0 || inHalfOpen(target, this.ids[rank], succs[0].id)) return { succs, next: [] };
    // The Sybil closest before the target: the last Sybil rank before the target's owner.
    const o = lowerBound(this.ids, target);
    return { succs, next: [this.sybilAt(lowerBound(this.sybilRanks, o) - 1)] };
  }

  neighbors(rank: number): NeighborsReply | null {
    if (rank < 0) return null;
    if (!this.sybil[rank])
      return {
        pred: this.size > 1 ? this.ref((rank - 1 + this.size) % this.size) : null,
        succs: this.successors(rank),
      };
    if (this.answer === 'drop') return null;
    const j = this.sybilIndex[rank];
    return { pred: this.sybilAt(j - 1), succs: this.sybilSuccessors(j) };
  }

  /** A lookup context for honest node q: every remote answer comes straight from the ring. */
  context(q: number): LookupContext {
    return {
      self: this.ref(q),
      localStep: (target) => this.honestFind(q, target),
      find: (to, target) => Promise.resolve(this.find(this.rankOf(to.id), target)),
      neighbors: (to) => Promise.resolve(this.neighbors(this.rankOf(to.id))),
    };
  }
}

export async function simulateChordSybils(opts: ChordSybilOptions): Promise<ChordSybilResult> {
  const placement = opts.placement ?? 'cluster';
  const answer = opts.answer ?? 'lie';
  const seed = opts.seed ?? 1;
  const replicas = opts.replicas ?? 3;
  const lookups = opts.lookups ?? 1000;
  const nTargets = Math.max(1, opts.targets ?? 5);
  const root = new SeededRandom(seed);
  const idRnd = root.fork();
  const lookupRnd = root.fork();
  const randomId = (): string => Buffer.from(idRnd.bytes(20)).toString('hex');

  const honestIds = Array.from({ length: opts.nodes }, randomId);
  const targets = Array.from({ length: nTargets }, randomId);
  const sybilIds: string[] = [];
  for (let k = 0; k < opts.sybils; k++) {
    if (placement === 'random') sybilIds.push(randomId());
    else {
      // Sybil k sits just after target k mod T: the keys' first successors.
      const t = BigInt(`0x${targets[k % nTargets]}`);
      sybilIds.push(hexId(t + BigInt(1 + Math.floor(k / nTargets))));
    }
  }
  const ring = new SybilRing(honestIds, sybilIds, replicas, answer);
  const honestRanks: number[] = [];
  for (let k = 0; k < ring.size; k++) if (!ring.sybil[k]) honestRanks.push(k);

  const messages: number[] = [];
  const hops: number[] = [];
  let succeeded = 0;
  let lookupFailed = 0;
  let sybilOwner = 0;
  for (let i = 0; i < lookups; i++) {
    const q = honestRanks[lookupRnd.int(honestRanks.length)];
    const target =
      placement === 'cluster' ? targets[lookupRnd.int(nTargets)] : Buffer.from(lookupRnd.bytes(20)).toString('hex');
    const res = await iterativeLookup(ring.context(q), target);
    let msgs = res.queries;
    hops.push(res.hops);
    if (!res.ok) lookupFailed++;
    else {
      // The record's holders: the first r nodes at or after the key.
      const first = ring.ownerRank(target);
      const holds = (ref: NodeRef): boolean => {
        const k = ring.rankOf(ref.id);
        if (k < 0 || ring.sybil[k]) return false;
        return (k - first + ring.size) % ring.size < replicas;
      };
      if (ring.sybil[ring.rankOf(res.owner.id)]) sybilOwner++;
      // get(): the owner first, then the other replicas at once (ChordNode.get).
      const holders = [res.owner, ...res.succs].slice(0, replicas);
      msgs++;
      let ok = holds(holders[0]);
      if (!ok) {
        msgs += holders.length - 1;
        ok = holders.slice(1).some(holds);
      }
      if (ok) succeeded++;
    }
    messages.push(msgs);
    if (i % 64 === 0) opts.onProgress?.(i, lookups);
  }
  opts.onProgress?.(lookups, lookups);

  return {
    nodes: opts.nodes,
    sybils: opts.sybils,
    placement,
    answer,
    targets: nTargets,
    replicas,
    seed,
    lookups,
    succeeded,
    failed: lookups - succeeded,
    successRate: lookups > 0 ? succeeded / lookups : 0,
    lookupFailed,
    sybilOwner,
    medianMessages: lookups > 0 ? percentile(messages, 50) : 0,
    p99Messages: lookups > 0 ? percentile(messages, 99) : 0,
    meanMessages: lookups > 0 ? Math.round(mean(messages) * 1000) / 1000 : 0,
    meanHops: lookups > 0 ? Math.round(mean(hops) * 1000) / 1000 : 0,
  };
}
