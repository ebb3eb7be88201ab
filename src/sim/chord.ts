import type { ChordNode } from '../dht/chord/chord-node.ts';
import { keyPosition } from '../dht/store/ring-id.ts';
import { mean, percentile } from '../util/stats.ts';
import { makeLiar } from './chord-liar.ts';
import { ChordTestnet, testnetOracle } from './chord-testnet.ts';

/**
 * `secp2psip sim chord`: a Chord ring on the in-memory network. Records are
 * stored, then for a window of simulated time F*N nodes crash and F*N new
 * ones join while L lookups of stored keys run from honest nodes. Every
 * answer is checked against the true ring: the owner must be the first live
 * joined node at or after the key's position, either when the lookup
 * started or when it ended (the ring may change in between), or the first
 * such node that the ring links in (ChordTestnet.linkedOwnerOf), again when
 * it started or when it ended.
 */
export interface ChordSimOptions {
  nodes: number;
  lookups: number;
  /** Fraction of nodes that crash, and again of new nodes that join, during the lookup window. */
  churn: number;
  seed: number;
  replicas?: number;
  /** Fraction of nodes that answer lookups with wrong next hops. */
  liars?: number;
  /** Records stored before the window (default min(1000, nodes)). */
  records?: number;
  /** Length of the lookup window, simulated ms (default 30,000). */
  windowMs?: number;
  stabilizeMs?: number;
  /** Start from the converged ring instead of joining node by node (large N). */
  warmStart?: boolean;
}

export interface ChordSimResult {
  nodes: number;
  lookups: number;
  succeeded: number;
  failed: number;
  /** Lookups that accepted an owner that was not the true one: must be 0. */
  wrong: number;
  /**
   * Right answers that name the successor of a node which has joined but is
   * not yet any node's successor: until stabilize links it in, the ring
   * routes its keys to its successor, which still holds their records
   * (Stoica et al. 2003, section IV-E).
   */
  ownerNotYetLinked: number;
  meanHops: number;
  p99Hops: number;
  meanMessages: number;
  records: number;
  recordsStored: number;
  recordsLost: number;
  killed: number;
  joined: number;
  liars: number;
  replicas: number;
  seed: number;
  churn: number;
  simulatedMs: number;
  messages: number;
  /** Wall-clock figures: the only fields that differ between two runs with one seed. */
  timings: { buildMs: number; storeMs: number; lookupMs: number; totalMs: number };
}

export interface SimProgress {
  phase: 'build' | 'store' | 'lookups';
  done: number;
  total: number;
}

export async function runChordSim(
  opts: ChordSimOptions,
  onProgress?: (p: SimProgress) => void,
): Promise<ChordSimResult> {
  const t0 = performance.now();
  const replicas = opts.replicas ?? 3;
  const stabilizeMs = opts.stabilizeMs ?? 1000;
  const windowMs = opts.windowMs ?? 30_000;
  let t: ChordTestnet;
  if (opts.warmStart) {
    t = ChordTestnet.warm(opts.nodes, { seed: opts.seed, chord: { replicas, stabilizeMs } });
    await t.run(2 * stabilizeMs);
  } else {
    t = new ChordTestnet({ seed: opts.seed, chord: { replicas, stabilizeMs } });
    await t.grow(opts.nodes, (done) => onProgress?.({ phase: 'build', done, total: opts.nodes }));
    await t.run(10 * stabilizeMs);
  }
  const tBuilt = performance.now();

  // Liars: a seeded choice among the nodes; they never ask, only answer.
  const liars = new Set<string>();
  const nLiars = Math.floor((opts.liars ?? 0) * t.size);
  if (nLiars > 0) {
    const oracle = testnetOracle(t, t.random.fork());
    const ids = [...t.liveIds()];
    while (liars.size < nLiars) {
      const id = ids[t.random.int(ids.length)];
      if (liars.has(id)) continue;
      liars.add(id);
      makeLiar(t.nodes.get(id) as ChordNode, oracle, t.random.fork());
    }
  }
  const honest = (): ChordNode => {
    const ids = t.liveIds();
    for (;;) {
      const id = ids[t.random.int(ids.length)];
      if (!liars.has(id)) return t.nodes.get(id) as ChordNode;
    }
  };

  const nRecords = opts.records ?? Math.min(1000, opts.nodes);
  const keys = Array.from({ length: nRecords }, (_, i) => `user${i}`);
  let storedCount = 0;
  const puts = keys.map((k, i) =>
    honest()
      .put(k, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5060`, 24 * 3600_000)
      .then((r) => {
        if (r.ok) storedCount++;
        onProgress?.({ phase: 'store', done: storedCount, total: nRecords });
        return r.ok;
      }),
  );
  const stored = await t.settle(Promise.all(puts), 600_000);
  const storedKeys = keys.filter((_, i) => stored[i]);
  const tStored = performance.now();

  // The window: crashes, joins and lookups at seeded random times.
  const churnCount = Math.floor(opts.churn * opts.nodes);
  let killed = 0;
  let joined = 0;
  for (let i = 0; i < churnCount; i++) {
    t.clock.setTimer(t.random.next() * windowMs, () => {
      const ids = t.liveIds();
      if (ids.length <= replicas + 1) return;
      t.kill(ids[t.random.int(ids.length)]);
      killed++;
    });
    t.clock.setTimer(t.random.next() * windowMs, () => {
      void t.addNode().then((n) => {
        if (n) joined++;
      });
    });
  }
  const hops: number[] = [];
  const msgs: number[] = [];
  let succeeded = 0;
  let failed = 0;
  let wrong = 0;
  let notYetLinked = 0;
  let done = 0;
  const lookupKeys = storedKeys.length > 0 ? storedKeys : keys;
  for (let i = 0; i < opts.lookups; i++) {
    t.clock.setTimer(t.random.next() * windowMs, () => {
      const key = lookupKeys[t.random.int(lookupKeys.length)];
      const pos = keyPosition(key);
      const before = t.ownerOf(pos);
      const linkedBefore = t.linkedOwnerOf(pos);
      void honest()
        .lookup(key)
        .then((r) => {
          done++;
          if (!r.ok) failed++;
          else if (
            r.owner.id === before ||
            r.owner.id === t.ownerOf(pos) ||
            r.owner.id === linkedBefore ||
            r.owner.id === t.linkedOwnerOf(pos)
          ) {
            if (r.owner.id !== before && r.owner.id !== t.ownerOf(pos)) notYetLinked++;
            succeeded++;
            hops.push(r.hops);
            msgs.push(r.queries);
          } else wrong++;
          if (done % 64 === 0 || done === opts.lookups) onProgress?.({ phase: 'lookups', done, total: opts.lookups });
        });
    });
  }
  await t.run(windowMs);
  await t.net.runUntil(() => done >= opts.lookups, 120_000);
  // Let repair run, then count records with no live copy at all.
  await t.run(10 * stabilizeMs);
  const live = t.liveNodes();
  let recordsLost = 0;
  for (const k of storedKeys) if (!live.some((n) => n.store.has(k))) recordsLost++;
  const tEnd = performance.now();

  return {
    nodes: opts.nodes,
    lookups: opts.lookups,
    succeeded,
    failed,
    wrong,
    ownerNotYetLinked: notYetLinked,
    meanHops: round(mean(hops)),
    p99Hops: hops.length ? percentile(hops, 99) : 0,
    meanMessages: round(mean(msgs)),
    records: nRecords,
    recordsStored: storedKeys.length,
    recordsLost,
    killed,
    joined,
    liars: liars.size,
    replicas,
    seed: opts.seed,
    churn: opts.churn,
    simulatedMs: Math.round(t.clock.now()),
    messages: t.net.stats.messages,
    timings: {
      buildMs: Math.round(tBuilt - t0),
      storeMs: Math.round(tStored - tBuilt),
      lookupMs: Math.round(tEnd - tStored),
      totalMs: Math.round(tEnd - t0),
    },
  };
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0;
}
