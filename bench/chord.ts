/**
 * Chord benchmark: `node --import tsx bench/chord.ts [--quick] [--skip-tls]`.
 *  - In memory (simulated clock, 10 ms +- 5 ms one-way latency): path length
 *    for N = 1,000 and 10,000 against (1/2) log2 N (Stoica et al. 2003,
 *    section V-A), and the wall time of 100,000 lookups on 10,000 nodes.
 *  - Over real TLS 1.3 on loopback: 50 nodes, lookup latency against the
 *    seed's 169.53 ms (seed 000 section VI).
 * Prints a table and writes bench/results/chord.json.
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChordNode } from '../src/dht/chord/chord-node.ts';
import { keyPosition } from '../src/dht/store/ring-id.ts';
import { ChordTestnet } from '../src/sim/chord-testnet.ts';
import { parseArgs } from '../src/util/args.ts';
import { ProgressBar } from '../src/util/progress.ts';
import { mean, percentile } from '../src/util/stats.ts';
import { TlsRing } from './lib/tls-ring.ts';

const SEED_LOOKUP_MS = 169.53;

interface MemoryRow {
  nodes: number;
  /** 'joins': built through the join protocol; 'warm': started from the converged ring. */
  start: 'joins' | 'warm';
  lookups: number;
  right: number;
  failed: number;
  wrong: number;
  meanHops: number;
  halfLog2N: number;
  p99Hops: number;
  meanMessages: number;
  buildWallMs: number;
  lookupWallMs: number;
  lookupsPerSecond: number;
}

interface TlsRow {
  nodes: number;
  lookups: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  meanHops: number;
  seedMs: number;
  speedup: number;
}

async function memoryRun(nodes: number, lookups: number, warm: boolean): Promise<MemoryRow> {
  const bar = new ProgressBar(`build ${nodes}`.padEnd(12), nodes);
  const t0 = performance.now();
  // A longer maintenance period keeps background traffic small next to the lookups measured.
  const init = { seed: nodes, chord: { stabilizeMs: 2000 } };
  let t: ChordTestnet;
  if (warm) {
    // Warm start from the converged ring: building 10,000 nodes join by join takes minutes.
    t = ChordTestnet.warm(nodes, init);
    await t.run(4000);
  } else {
    t = new ChordTestnet(init);
    await t.grow(nodes, (n) => bar.update(n));
    await t.run(30_000);
  }
  bar.done();
  const buildWallMs = performance.now() - t0;
  const ids = t.liveIds();
  const hops: number[] = [];
  const msgs: number[] = [];
  let right = 0;
  let failed = 0;
  let wrong = 0;
  let done = 0;
  const lbar = new ProgressBar(`lookups`.padEnd(12), lookups);
  const t1 = performance.now();
  // All lookups start within 5 s of simulated time, from random nodes.
  for (let i = 0; i < lookups; i++) {
    t.clock.setTimer(t.random.next() * 5000, () => {
      const key = `user${i}`;
      const from = t.nodes.get(ids[t.random.int(ids.length)]) as ChordNode;
      void from.lookup(key).then((r) => {
        done++;
        if (done % 1000 === 0) lbar.update(done);
        if (!r.ok) failed++;
        else if (r.owner.id !== t.ownerOf(keyPosition(key))) wrong++;
        else {
          right++;
          hops.push(r.hops);
          msgs.push(r.queries);
        }
      });
    });
  }
  await t.net.runUntil(() => done >= lookups, 600_000);
  lbar.done();
  const lookupWallMs = performance.now() - t1;
  return {
    nodes,
    start: warm ? 'warm' : 'joins',
    lookups,
    right,
    failed,
    wrong,
    meanHops: round(mean(hops)),
    halfLog2N: round(0.5 * Math.log2(nodes)),
    p99Hops: percentile(hops, 99),
    meanMessages: round(mean(msgs)),
    buildWallMs: Math.round(buildWallMs),
    lookupWallMs: Math.round(lookupWallMs),
    lookupsPerSecond: Math.round(lookups / (lookupWallMs / 1000)),
  };
}

async function tlsRun(nodes: number, lookups: number): Promise<TlsRow> {
  const ring = new TlsRing(100);
  const bar = new ProgressBar('tls ring'.padEnd(12), nodes);
  try {
    await ring.growTo(nodes, () => bar.update(ring.nodes.length));
    bar.done();
    await ring.settle(30);
    const ms: number[] = [];
    const hops: number[] = [];
    let failed = 0;
    for (let i = 0; i < lookups; i++) {
      const from = ring.nodes[i % nodes];
      const t0 = performance.now();
      const r = await from.lookup(`callee${i}`);
      const dt = performance.now() - t0;
      if (r.ok) {
        ms.push(dt);
        hops.push(r.hops);
      } else failed++;
    }
    const p50 = percentile(ms, 50);
    return {
      nodes,
      lookups,
      failed,
      p50Ms: round(p50),
      p99Ms: round(percentile(ms, 99)),
      meanMs: round(mean(ms)),
      meanHops: round(mean(hops)),
      seedMs: SEED_LOOKUP_MS,
      speedup: Math.round(SEED_LOOKUP_MS / p50),
    };
  } finally {
    await ring.close();
  }
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0;
}

function table(head: string[], rows: (string | number)[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c).padStart(w[i])).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), { quick: { type: 'boolean' }, 'skip-tls': { type: 'boolean' } });
  const quick = args.quick === true;
  const plan: [number, number, boolean][] = quick
    ? [
        [1000, 10_000, false],
        [3000, 20_000, true],
      ]
    : [
        [1000, 20_000, false],
        [10_000, 100_000, true],
      ];
  const memory: MemoryRow[] = [];
  for (const [n, l, warm] of plan) memory.push(await memoryRun(n, l, warm));
  const tls = args['skip-tls'] ? null : await tlsRun(50, quick ? 200 : 1000);

  process.stdout.write('\nChord in memory (simulated 10 +- 5 ms links)\n');
  process.stdout.write(
    `${table(
      [
        'nodes',
        'start',
        'lookups',
        'right',
        'failed',
        'wrong',
        'mean hops',
        '(1/2)log2N',
        'p99 hops',
        'msgs/lookup',
        'build s',
        'lookups s',
        'lookups/s',
      ],
      memory.map((r) => [
        r.nodes,
        r.start,
        r.lookups,
        r.right,
        r.failed,
        r.wrong,
        r.meanHops,
        r.halfLog2N,
        r.p99Hops,
        r.meanMessages,
        (r.buildWallMs / 1000).toFixed(1),
        (r.lookupWallMs / 1000).toFixed(1),
        r.lookupsPerSecond,
      ]),
    )}\n`,
  );
  if (tls) {
    process.stdout.write('\nChord over TLS 1.3 on loopback\n');
    process.stdout.write(
      `${table(
        ['nodes', 'lookups', 'failed', 'p50 ms', 'p99 ms', 'mean ms', 'mean hops', 'seed ms', 'seed/p50'],
        [[tls.nodes, tls.lookups, tls.failed, tls.p50Ms, tls.p99Ms, tls.meanMs, tls.meanHops, tls.seedMs, tls.speedup]],
      )}\n`,
    );
  }
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const out = { bench: 'chord', date: new Date().toISOString(), quick, node: process.version, memory, tls };
  writeFileSync(join(dir, 'chord.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\nwrote bench/results/chord.json\n`);
}

await main();
