import { ChordNode } from '../dht/chord/chord-node.ts';
import type { ChordInit } from '../dht/chord/chord-types.ts';
import { fingerStart, ID_BITS, lastFingerCovered, sha1Id } from '../dht/store/ring-id.ts';
import { MemoryNetwork, type MemoryNetworkInit } from '../rpc/memory-network.ts';
import type { NodeRef } from '../rpc/types.ts';
import { SimClock } from '../util/clock.ts';
import { SeededRandom } from '../util/random.ts';

export interface ChordTestnetInit {
  seed: number;
  chord?: ChordInit;
  network?: MemoryNetworkInit;
}

/**
 * A Chord ring on the in-memory network, built through the real join
 * protocol, plus the ground truth the simulator and tests check against:
 * the sorted ids of the live, joined nodes.
 */
export class ChordTestnet {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: MemoryNetwork;
  readonly nodes = new Map<string, ChordNode>();
  /** Sorted ids of nodes that are alive and have finished joining. */
  private ring: string[] = [];
  private counter = 0;
  /** Joins that failed once and were tried again. */
  joinRetries = 0;
  lastJoinError = '';
  private readonly init: ChordTestnetInit;

  constructor(init: ChordTestnetInit) {
    this.init = init;
    this.random = new SeededRandom(init.seed);
    this.net = new MemoryNetwork(
      { clock: this.clock, random: this.random.fork() },
      { latencyMs: 10, jitterMs: 5, timeoutMs: 1000, copy: 'none', resolutionMs: 5, ...init.network },
    );
  }

  /** A ring of n nodes, joined in waves that grow it by half, then left to stabilize for `settleMs`. */
  static async create(n: number, init: ChordTestnetInit, settleMs = 20_000): Promise<ChordTestnet> {
    const t = new ChordTestnet(init);
    await t.grow(n);
    await t.run(settleMs);
    return t;
  }

  /**
   * A ring of n nodes warm-started from the converged state (successor
   * lists, predecessors and fingers computed from the true ring) instead of
   * n protocol joins; from then on every node runs the protocol.
   */
  static warm(n: number, init: ChordTestnetInit): ChordTestnet {
    const t = new ChordTestnet(init);
    const nodes = Array.from({ length: n }, () => t.createNode());
    for (const node of nodes) t.markJoined(node);
    const ref = (id: string) => (t.nodes.get(id) as ChordNode).self;
    const r = init.chord?.replicas ?? 3;
    for (const node of nodes) {
      const succs: NodeRef[] = [];
      let id = node.id;
      for (let k = 0; k < r && k < n - 1; k++) succs.push(ref((id = t.successorOf(id))));
      const fingers: (NodeRef | undefined)[] = new Array(ID_BITS);
      for (let i = 0; i < ID_BITS; ) {
        const f = t.ownerOf(fingerStart(node.id, i));
        const last = f === node.id ? i : lastFingerCovered(node.id, f);
        for (let j = i; j <= last && j < ID_BITS; j++) if (f !== node.id) fingers[j] = ref(f);
        i = Math.max(i + 1, last + 1);
      }
      const predId = t.ring[(t.insertAt(node.id) - 1 + n) % n];
      node.warmStart(n > 1 ? ref(predId) : null, succs, fingers);
    }
    return t;
  }

  get size(): number {
    return this.ring.length;
  }

  liveIds(): readonly string[] {
    return this.ring;
  }

  liveNodes(): ChordNode[] {
    return this.ring.map((id) => this.nodes.get(id) as ChordNode);
  }

  /** Create a node with a seeded key (id = SHA-1 of the key); not yet joined. */
  createNode(): ChordNode {
    const key = this.random.bytes(32);
    const ref: NodeRef = { id: sha1Id(key), addr: `mem-${this.counter++}`, key };
    const node = ChordNode.create(
      { endpoint: this.net.endpoint(ref), clock: this.clock, random: this.random.fork() },
      this.init.chord,
    );
    this.nodes.set(ref.id, node);
    return node;
  }

  /** Join `count` new nodes in waves (each at most half the current size), stabilizing between waves. */
  async grow(count: number, onProgress?: (joined: number) => void): Promise<void> {
    let left = count;
    if (this.ring.length === 0 && left > 0) {
      const first = this.createNode();
      await first.join(undefined);
      this.markJoined(first);
      left--;
    }
    while (left > 0) {
      const batch = Math.min(left, Math.ceil(this.ring.length / 2));
      const joins = Array.from({ length: batch }, () => this.addNode());
      await this.settle(Promise.all(joins), 120_000);
      left -= batch;
      onProgress?.(this.ring.length);
      await this.run(3 * (this.init.chord?.stabilizeMs ?? 1000));
    }
  }

  /** One new node joining through a random live member; resolves once it has joined (or failed). */
  async addNode(): Promise<ChordNode | null> {
    const node = this.createNode();
    // Like a daemon, retry a failed join a few times through other members.
    for (let attempt = 0; attempt < 4; attempt++) {
      const via = this.pickMember();
      try {
        await node.join(via.self);
        this.markJoined(node);
        return node;
      } catch (e) {
        this.joinRetries++;
        this.lastJoinError = (e as Error).message;
        await new Promise<void>((r) => this.clock.setTimer(1000 + this.random.int(1000), r));
      }
    }
    node.stop();
    this.net.kill(node.self.addr);
    this.nodes.delete(node.id);
    return null;
  }

  /** A random live member that is linked into the ring (it has a predecessor), as a bootstrap would hand out. */
  private pickMember(): ChordNode {
    for (let i = 0; i < 8; i++) {
      const n = this.nodes.get(this.ring[this.random.int(this.ring.length)]) as ChordNode;
      if (n.pred !== null || this.ring.length === 1) return n;
    }
    return this.nodes.get(this.ring[this.random.int(this.ring.length)]) as ChordNode;
  }

  /** Crash a node: it stops answering and its timers stop. */
  kill(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    node.stop();
    this.net.kill(node.self.addr);
    this.unmark(id);
  }

  /** Graceful leave through the protocol. */
  async leave(id: string): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) return;
    this.unmark(id);
    await this.settle(node.leave());
    this.net.kill(node.self.addr);
  }

  /** The live joined node responsible for ring position `pos`: the first id at or after it. */
  ownerOf(pos: string): string {
    const r = this.ring;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid] < pos) lo = mid + 1;
      else hi = mid;
    }
    return r[lo % r.length];
  }

  /**
   * The first live joined node at or after `pos` that some live node names
   * as its successor: a node that has joined but is not linked in yet is
   * skipped, as the ring's own routing skips it until stabilize runs. A
   * successor list whose first entries crashed names its first live entry
   * (Stoica et al. 2003, section V-B: that is the successor it routes to),
   * so a node whose only links were crashed nodes is not linked either.
   */
  linkedOwnerOf(pos: string): string {
    let id = this.ownerOf(pos);
    // The common case, without a pass over every node: the owner's own predecessor links it.
    const pred = this.ring[(this.insertAt(id) - 1 + this.ring.length) % this.ring.length];
    if (this.firstLiveSuccessor(pred) === id) return id;
    const linked = new Set<string>();
    for (const n of this.ring) {
      const first = this.firstLiveSuccessor(n);
      if (first) linked.add(first);
    }
    for (let i = 0; i < this.ring.length && !linked.has(id); i++) id = this.successorOf(id);
    return id;
  }

  private firstLiveSuccessor(id: string): string | undefined {
    return (this.nodes.get(id) as ChordNode).successors.find((s) => this.ring[this.insertAt(s.id)] === s.id)?.id;
  }

  /** The next live joined id after `id` (the right successor). */
  successorOf(id: string, k = 1): string {
    const r = this.ring;
    const i = this.indexAfter(id);
    return r[(i + k - 1) % r.length];
  }

  /** Run simulated time. */
  run(ms: number): Promise<void> {
    return this.net.run(ms);
  }

  /** Drive the clock until `p` settles (or `limitMs` of simulated time pass) and return its outcome. */
  settle<T>(p: Promise<T>, limitMs = 60_000): Promise<T> {
    return this.net.settle(p, limitMs);
  }

  private indexAfter(id: string): number {
    const r = this.ring;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid] <= id) lo = mid + 1;
      else hi = mid;
    }
    return lo % r.length;
  }

  private markJoined(node: ChordNode): void {
    const i = this.ring.length === 0 ? 0 : this.insertAt(node.id);
    this.ring.splice(i, 0, node.id);
  }

  private insertAt(id: string): number {
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ring[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private unmark(id: string): void {
    const i = this.insertAt(id);
    if (this.ring[i] === id) this.ring.splice(i, 1);
  }
}

/** Oracle for liars: what the true ring looks like right now. */
export function testnetOracle(t: ChordTestnet, random: { int(n: number): number }) {
  const refOf = (id: string): NodeRef => (t.nodes.get(id) as ChordNode).self;
  return {
    successorsOf(pos: string, count: number): NodeRef[] {
      const out: NodeRef[] = [];
      let id = t.ownerOf(pos);
      for (let i = 0; i < count && i < t.size; i++) {
        out.push(refOf(id));
        id = t.successorOf(id);
      }
      return out;
    },
    randomRefs(count: number): NodeRef[] {
      const ids = t.liveIds();
      return Array.from({ length: Math.min(count, ids.length) }, () => refOf(ids[random.int(ids.length)]));
    },
  };
}
