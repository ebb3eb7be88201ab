import type { WhanauParams } from '../dht/whanau/params.ts';
import {
  chooseId,
  type FingerLayer,
  type FingerView,
  type LookupOutcome,
  lookupProcedure,
  type TryOutcome,
  tryProcedure,
} from '../dht/whanau/procedures.ts';
import { lowerBound } from '../dht/whanau/ring.ts';
import type { Random } from '../util/random.ts';
import { int32SuccessorsStart, interpolate, sortPairs } from './whanau-bulk-arrays.ts';

/**
 * SETUP and LOOKUP of seed 003 Appendix A run over a whole graph at once, with
 * every table in typed arrays: the simulator's fast path. Messages are direct
 * calls, counted; the procedures (CHOOSE-ID, SUCCESSORS-SAMPLE, TRY, LOOKUP,
 * CHOOSE-FINGER) are the same functions the protocol node runs.
 *
 * Nodes [0, protocolNodes) follow the protocol and publish one record each;
 * the others are adversarial (Sybils): a walk that reaches one ends there, and
 * what it answers is the adversary's choice.
 */

/** An undirected graph in compressed sparse rows: neighbours of u are adj[offsets[u] .. offsets[u+1]). */
export interface BulkGraph {
  nodes: number;
  offsets: Int32Array;
  adj: Int32Array;
}

export interface BulkAdversary {
  /** ids(v, i) a Sybil v reports when an honest node builds its fingers. */
  fingerId(layer: number, rnd: Random): number;
}

export interface BulkInput {
  graph: BulkGraph;
  protocolNodes: number;
  /** Ring position in [0, 1) of each protocol node's record key. */
  keyPos: Float64Array;
  params: WhanauParams;
  adversary: BulkAdversary;
  rnd: Random;
  onProgress?: (done: number, total: number) => void;
}

export class BulkWhanau {
  readonly p: WhanauParams;
  readonly n: number;
  private readonly g: BulkGraph;
  private readonly adversary: BulkAdversary;
  private readonly rnd: Random;
  private state: number;
  /** Record keys sorted; rank r is the key of owner ownerOfRank[r]. db and succ hold ranks. */
  readonly sortedPos: Float64Array;
  readonly ownerOfRank: Int32Array;
  readonly rankOf: Int32Array;
  /** db(u): up to r_d record ranks, sorted; dbCount[u] used. */
  readonly db: Int32Array;
  readonly dbCount: Int32Array;
  /** ids(u, i) at [u * l + i]. */
  readonly ids: Float64Array;
  /** fingers(u, i): r_f (id, node) pairs sorted by id at [(u * l + i) * r_f]. */
  readonly fingerIds: Float64Array;
  readonly fingerNodes: Int32Array;
  /** succ(u, i): distinct record ranks, sorted, at [(u * l + i) * r_s * t]; succCount[u * l + i] used. */
  readonly succ: Int32Array;
  readonly succCount: Int32Array;
  /** Walks that ended at an adversarial node, out of all walks made during SETUP. */
  escapedWalks = 0;
  totalWalks = 0;
  private readonly scratchEnds: Int32Array;
  private readonly scratchKeys: Float64Array;
  private readonly seen: Int32Array;
  private readonly scratchGuess: Int32Array;
  private stamp = 0;
  /** Folds the loads made only to warm the cache, so they are not optimised away. */
  private sink = 0;
  private readonly onProgress?: (done: number, total: number) => void;

  constructor(input: BulkInput) {
    this.p = input.params;
    this.g = input.graph;
    this.n = input.protocolNodes;
    this.adversary = input.adversary;
    this.rnd = input.rnd;
    this.state = (input.rnd.int(0xffffffff) | 1) >>> 0;
    this.onProgress = input.onProgress;
    const { n, p } = this;
    const l = p.layers;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => input.keyPos[a] - input.keyPos[b]);
    this.ownerOfRank = Int32Array.from(order);
    this.sortedPos = Float64Array.from(order, (o) => input.keyPos[o]);
    this.rankOf = new Int32Array(n);
    order.forEach((o, r) => {
      this.rankOf[o] = r;
    });
    this.db = new Int32Array(n * p.rd);
    this.dbCount = new Int32Array(n);
    this.ids = new Float64Array(n * l);
    this.fingerIds = new Float64Array(n * l * p.rf);
    this.fingerNodes = new Int32Array(n * l * p.rf);
    this.succ = new Int32Array(n * l * p.rs * p.t);
    this.succCount = new Int32Array(n * l);
    this.scratchEnds = new Int32Array(Math.max(p.rd, p.rs));
    this.scratchKeys = new Float64Array(p.rd);
    this.seen = new Int32Array(n);
    this.scratchGuess = new Int32Array(p.rs);
  }

  /** Uniform integer in [0, k) from a local xorshift32 seeded by the injected Random (walks dominate run time). */
  private int(k: number): number {
    let s = this.state;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.state = s >>> 0;
    return Math.floor((this.state / 0x100000000) * k);
  }

  /** RANDOM-WALK(u): w steps over social links; stops at the first adversarial node it reaches. */
  walk(u: number): number {
    const { offsets, adj } = this.g;
    let v = u;
    this.totalWalks++;
    for (let j = 0; j < this.p.w; j++) {
      const deg = offsets[v + 1] - offsets[v];
      if (deg === 0) return v;
      v = adj[offsets[v] + this.int(deg)];
      if (v >= this.n) {
        this.escapedWalks++;
        return v;
      }
    }
    return v;
  }

  /**
   * `count` independent RANDOM-WALK(u)s into out[0 .. count), advanced in
   * lockstep: the steps of different walks do not depend on each other, so
   * their memory loads overlap instead of each step waiting for the last
   * (walks dominate SETUP). Same distribution as `walk`.
   */
  private walkMany(u: number, count: number, out: Int32Array): void {
    const { offsets, adj } = this.g;
    const n = this.n;
    const w = this.p.w;
    out.fill(u, 0, count);
    this.totalWalks += count;
    let s = this.state;
    for (let j = 0; j < w; j++) {
      for (let k = 0; k < count; k++) {
        const v = out[k];
        if (v >= n) continue; // ended in the Sybil region
        const o = offsets[v];
        const deg = offsets[v + 1] - o;
        if (deg === 0) continue;
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        const x = adj[o + Math.floor(((s >>> 0) / 0x100000000) * deg)];
        out[k] = x;
        if (x >= n) this.escapedWalks++;
      }
    }
    this.state = s >>> 0;
  }

  /** SETUP (Figure A-1): db for every node, then per layer ids, fingers and successors for every node. */
  setup(): void {
    const { n, p } = this;
    const total = n * (1 + 3 * p.layers);
    let done = 0;
    const tick = () => {
      done += n;
      this.onProgress?.(done, total);
    };
    for (let u = 0; u < n; u++) this.sampleRecords(u);
    tick();
    for (let i = 0; i < p.layers; i++) {
      for (let u = 0; u < n; u++) this.chooseIdFor(u, i);
      tick();
      for (let u = 0; u < n; u++) this.fingers(u, i);
      tick();
      for (let u = 0; u < n; u++) this.successors(u, i);
      tick();
    }
  }

  /** SAMPLE-RECORDS(u, r_d): a record of each walk's end; Sybil answers fail the checker and are dropped. */
  private sampleRecords(u: number): void {
    const { rd } = this.p;
    const ends = this.scratchEnds;
    this.walkMany(u, rd, ends);
    const base = u * rd;
    let c = 0;
    for (let j = 0; j < rd; j++) {
      const v = ends[j];
      if (v < this.n) this.db[base + c++] = this.rankOf[v];
    }
    this.db.subarray(base, base + c).sort();
    this.dbCount[u] = c;
  }

  dbRanks(u: number): Int32Array {
    return this.db.subarray(u * this.p.rd, u * this.p.rd + this.dbCount[u]);
  }

  private layerIds(u: number, i: number): Float64Array {
    const off = (u * this.p.layers + i) * this.p.rf;
    return this.fingerIds.subarray(off, off + this.p.rf);
  }

  private chooseIdFor(u: number, i: number): void {
    let db: Float64Array | undefined;
    if (i === 0) {
      const c = this.dbCount[u];
      const base = u * this.p.rd;
      db = this.scratchKeys.subarray(0, c);
      for (let k = 0; k < c; k++) db[k] = this.sortedPos[this.db[base + k]];
    }
    const x = chooseId(i, db ?? EMPTY, i > 0 ? this.layerIds(u, i - 1) : undefined, this.rnd);
    this.ids[u * this.p.layers + i] = x ?? this.rnd.next();
  }

  /** FINGERS(u, i, r_f): (ids(v, i), v) for the end v of each walk, kept sorted by id. */
  private fingers(u: number, i: number): void {
    const { rf, layers } = this.p;
    const off = (u * layers + i) * rf;
    const ids = this.fingerIds.subarray(off, off + rf);
    const nodes = this.fingerNodes.subarray(off, off + rf);
    this.walkMany(u, rf, nodes);
    for (let j = 0; j < rf; j++) {
      const v = nodes[j];
      ids[j] = v < this.n ? this.ids[v * layers + i] : this.adversary.fingerId(i, this.rnd);
    }
    sortPairs(ids, nodes, 0, rf - 1);
  }

  /** SUCCESSORS(u, i, r_s): the union of SUCCESSORS-SAMPLE(v, ids(u, i)) over r_s walk ends. */
  private successors(u: number, i: number): void {
    const { rs, t, layers, rd } = this.p;
    const cap = rs * t;
    const off = (u * layers + i) * cap;
    // Ranks are order-isomorphic to keys: the first db rank at or after this one is the first key at or after x0.
    const r0 = lowerBound(this.sortedPos, this.ids[u * layers + i]) % Math.max(1, this.n);
    const ends = this.scratchEnds;
    this.walkMany(u, rs, ends);
    const { db, dbCount, succ, n, seen } = this;
    // Duplicates are dropped as they come (seen[rank] holds the last (u, i) that took it).
    const stamp = ++this.stamp;
    let c = 0;
    // First the interpolated start of each SUCCESSORS-SAMPLE, touching the cache lines around it: these
    // loads do not wait on each other, so their misses overlap; the scans below then hit the cache.
    const guess = this.scratchGuess;
    let sink = 0;
    for (let j = 0; j < rs; j++) {
      const v = ends[j];
      const len = v < n ? dbCount[v] : 0;
      if (len === 0) {
        guess[j] = -1; // a Sybil's successor records fail the checker; an empty db has none
        continue;
      }
      const lo = v * rd;
      const g = interpolate(r0, lo, len, n);
      guess[j] = g;
      sink ^= db[Math.max(lo, g - 12)] ^ db[g] ^ db[Math.min(lo + len - 1, g + 12)];
    }
    this.sink ^= sink;
    for (let j = 0; j < rs; j++) {
      const g = guess[j];
      if (g < 0) continue;
      // SUCCESSORS-SAMPLE(v, x0) on v's slice of the db array
      const v = ends[j];
      const lo = v * rd;
      const len = dbCount[v];
      const start = int32SuccessorsStart(db, r0, lo, lo + len, g);
      for (let k = 0; k < t && k < len; k++) {
        const r = db[lo + ((start + k) % len)];
        if (seen[r] === stamp) continue;
        seen[r] = stamp;
        succ[off + c++] = r;
      }
    }
    succ.subarray(off, off + c).sort();
    this.succCount[u * layers + i] = c;
  }

  /** QUERY(f, i, key) for a protocol node f: is the record of rank r in succ(f, i)? */
  query(f: number, i: number, rank: number): boolean {
    const cap = this.p.rs * this.p.t;
    const off = (f * this.p.layers + i) * cap;
    const s = this.succ.subarray(off, off + this.succCount[f * this.p.layers + i]);
    const k = lowerBound(s, rank);
    return k < s.length && s[k] === rank;
  }

  /**
   * u's fingers as LOOKUP sees them; `layers` below p.layers shows only the
   * first layers. SETUP builds layer i from layers below it and the same
   * random stream, so these are exactly the tables of a SETUP with that l.
   */
  view(u: number, layers = this.p.layers): FingerView<number, number> {
    const out: FingerLayer<number, number>[] = [];
    for (let i = 0; i < Math.min(layers, this.p.layers); i++) {
      const off = (u * this.p.layers + i) * this.p.rf;
      const nodes = this.fingerNodes;
      out.push({ ids: this.fingerIds.subarray(off, off + this.p.rf), node: (j) => nodes[off + j] });
    }
    return { layers: out };
  }

  /**
   * LOOKUP(u, key of owner) with direct, counted delivery. A QUERY to or a TRY
   * delegated to a Sybil gets no valid record (it answers nothing or garbage,
   * which the record checker drops); it still costs its message.
   */
  lookup(u: number, owner: number, rnd: Random, layers = this.p.layers): LookupOutcome<number> {
    const rank = this.rankOf[owner];
    const key = this.sortedPos[rank];
    const answer = (step: { kind: 'query'; node: number; layer: number }): number | null =>
      step.node < this.n && this.query(step.node, step.layer, rank) ? owner : null;
    const gen = lookupProcedure<number, number, number, number>(this.view(u, layers), key, this.p, rnd);
    let r = gen.next();
    while (!r.done) {
      const step = r.value;
      if (step.kind === 'query') r = gen.next(answer(step));
      else if (step.kind === 'walk') r = gen.next(this.walk(u));
      else {
        const v = step.via;
        let out: TryOutcome<number> | null = null;
        if (v < this.n) {
          const tg = tryProcedure<number, number, number>(this.view(v, layers), key, this.p.tryLimit, rnd);
          let tr = tg.next();
          while (!tr.done) tr = tg.next(answer(tr.value));
          out = tr.value;
        }
        r = gen.next(out);
      }
    }
    return r.value;
  }

  /** Restart the walk stream LOOKUP draws from, so lookups after SETUP replay from a seed. */
  reseedWalks(seed: number): void {
    this.state = (seed | 1) >>> 0;
  }

  /** Mean entries actually held per protocol node in the first `layers` layers: db + fingers + distinct successor records. */
  meanStoredEntries(layers = this.p.layers): number {
    const l = Math.min(layers, this.p.layers);
    let s = 0;
    for (let u = 0; u < this.n; u++) s += this.dbCount[u];
    for (let u = 0; u < this.n; u++) for (let i = 0; i < l; i++) s += this.succCount[u * this.p.layers + i];
    s += this.n * l * this.p.rf;
    return this.n > 0 ? s / this.n : 0;
  }
}

const EMPTY = new Float64Array(0);
