/**
 * bench/whanau-tls.ts: seed 003 section 5.1's testbed on one machine. N
 * WhanauSIP DHT nodes (default 3,000), each with its own Ed25519 key and TLS
 * 1.3 listener, spread over a few worker processes; a preferential-attachment
 * social graph (mean degree about 10) whose both ends add each other; one
 * SETUP with about 300 routing-table entries per node; then lookups of random
 * nodes' records from random nodes, with 0 %, 10 % and 20 % of the nodes
 * taken offline after SETUP (their tables elsewhere are stale, as under churn).
 *
 *   node --import tsx bench/whanau-tls.ts [--nodes 3000] [--procs 4] [--table 60] [--layers 1]
 *        [--lookups 1000] [--concurrency 4] [--max-outgoing 2] [--idle-ms 300000] [--seed 1]
 *
 * Prints a table and writes bench/results/whanau-tls.json. With WHANAU_TRACE=1
 * the workers log the steps of every lookup over 2 s (walks taken, calls sent,
 * each with its ms) and how many walks the walk caches requested per scenario.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { currentLoad, machineInfo } from './lib/machine.ts';
import { defaultParams, tableEntries, type WhanauParams } from '../src/dht/whanau/params.ts';
import { preferentialAttachment } from '../src/sim/social-graph.ts';
import { intOption, parseArgs } from '../src/util/args.ts';
import { SeededRandom, shuffle } from '../src/util/random.ts';
import { percentile } from '../src/util/stats.ts';
import { runWorker, type WorkerReply, type WorkerRequest } from './whanau-tls-worker.ts';

const SPEC = {
  nodes: { type: 'string', default: '3000' },
  procs: { type: 'string' },
  table: { type: 'string', default: '60' },
  layers: { type: 'string', default: '1' },
  lookups: { type: 'string', default: '1000' },
  concurrency: { type: 'string', default: '4' },
  'max-outgoing': { type: 'string', default: '2' },
  'idle-ms': { type: 'string' },
  seed: { type: 'string', default: '1' },
  worker: { type: 'boolean' },
} as const;

interface Worker {
  proc: ChildProcess;
  first: number;
  count: number;
  pending: Map<number, (r: WorkerReply) => void>;
}

let seq = 0;
function ask(w: Worker, req: Omit<WorkerRequest, 'id'>): Promise<WorkerReply> {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    w.pending.set(id, (r) => (r.error ? reject(new Error(r.error)) : resolve(r)));
    w.proc.send({ ...req, id });
  });
}

function spawnWorker(first: number, count: number): Worker {
  const proc = fork(new URL(import.meta.url).pathname, ['--worker'], {
    execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const w: Worker = { proc, first, count, pending: new Map() };
  proc.on('exit', (code) => {
    for (const f of w.pending.values()) f({ id: 0, error: `worker exited with ${code}` });
    w.pending.clear();
  });
  proc.on('message', (m: WorkerReply) => {
    const f = w.pending.get(m.id);
    w.pending.delete(m.id);
    f?.(m);
  });
  return w;
}

function ms(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(0)} ms` : '-';
}

export interface WhanauTlsOptions {
  nodes: number;
  procs?: number;
  /** r_d = r_f = r_s. */
  table: number;
  layers: number;
  lookups: number;
  /** Lookups in flight at once per worker process: more measures queueing for the CPU, not the protocol. */
  concurrency?: number;
  maxOutgoing: number;
  idleMs: number;
  seed: number;
}

export interface WhanauTlsScenario {
  offlinePercent: number;
  lookups: number;
  found: number;
  successPercent: number;
  p50Ms: number;
  p99Ms: number;
  under5sPercent: number;
  medianMessages: number;
  /** Latency of every lookup that found its record (ms). */
  foundMs: number[];
  messages: number[];
}

/** Start the nodes in worker processes, run one SETUP and the lookups; the result as written to JSON. */
export async function runWhanauTls(o: WhanauTlsOptions, say: (msg: string) => void = () => {}) {
  const n = o.nodes;
  const procs = o.procs ?? Math.max(1, Math.ceil(n / 750));
  const r = o.table;
  // Patient timeouts: thousands of nodes share two cores, and a slow answer is not a lost node.
  const params: WhanauParams = {
    ...defaultParams(n, { rd: r, rf: r, rs: r, layers: o.layers, periodMs: 3600_000, rpcTimeoutMs: 60_000 }),
    skewMs: 600_000,
    inactiveMs: 5_000,
  };
  const machine = machineInfo();
  const t0 = performance.now();
  const workers: Worker[] = [];
  for (let p = 0, first = 0; p < procs; p++) {
    const count = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
    workers.push(spawnWorker(first, count));
    first += count;
  }
  say(`starting ${n} TLS nodes in ${procs} processes...`);
  const refs = (
    await Promise.all(
      workers.map((w) => ask(w, { op: 'start', count: w.count, params, maxOutgoing: o.maxOutgoing, idleMs: o.idleMs })),
    )
  ).flatMap((x) => x.refs ?? []);
  const startMs = performance.now() - t0;
  const rnd = new SeededRandom(o.seed);
  const e = preferentialAttachment(n, 5, rnd);
  // Graph vertex v is node label[v]: the oldest vertices of preferential attachment are its hubs, and
  // relabelling spreads them over the workers instead of crowding one worker's file descriptors.
  const label = shuffle(
    Array.from({ length: n }, (_, i) => i),
    rnd,
  );
  const adj: number[][] = Array.from({ length: n }, () => []);
  for (let k = 0; k < e.count; k++) {
    adj[label[e.a[k]]].push(label[e.b[k]]);
    adj[label[e.b[k]]].push(label[e.a[k]]);
  }
  await Promise.all(
    workers.map((w) =>
      ask(w, {
        op: 'peers',
        peers: adj.slice(w.first, w.first + w.count).map((list) => list.map((j) => refs[j])),
      }),
    ),
  );
  say(`social graph: ${e.count} links; SETUP...`);
  const epoch = Math.ceil(Date.now() / params.periodMs);
  const s0 = performance.now();
  const setups = await Promise.all(workers.map((w) => ask(w, { op: 'setup', epoch })));
  const setupMs = performance.now() - s0;
  const setupNodeMs = setups.flatMap((x) => x.setupMs ?? []);
  const dialedInSetup = setups.reduce((s, x) => s + (x.dialed ?? 0), 0);
  const setupCpuS = setups.reduce((s, x) => s + (x.cpuS ?? 0), 0);
  const tableSizes = setups.flatMap((x) => x.tables ?? []);

  const scenarios: WhanauTlsScenario[] = [];
  const offline = new Set<number>();
  const order = shuffle(
    Array.from({ length: n }, (_, i) => i),
    rnd,
  );
  for (const frac of [0, 0.1, 0.2]) {
    while (offline.size < Math.round(frac * n)) offline.add(order[offline.size]);
    await Promise.all(
      workers.map((w) =>
        ask(w, {
          op: 'offline',
          indices: [...offline].filter((i) => i >= w.first && i < w.first + w.count).map((i) => i - w.first),
        }),
      ),
    );
    const online = order.filter((i) => !offline.has(i));
    const jobs: { from: number; key: string }[] = [];
    for (let k = 0; k < o.lookups; k++) {
      const from = online[rnd.int(online.length)];
      let to = online[rnd.int(online.length)];
      while (to === from) to = online[rnd.int(online.length)];
      jobs.push({ from, key: refs[to].id });
    }
    say(`${Math.round(frac * 100)} % offline: ${o.lookups} lookups...`);
    const res = await Promise.all(
      workers.map((w) =>
        ask(w, {
          op: 'lookup',
          width: o.concurrency ?? 4,
          jobs: jobs
            .filter((j) => j.from >= w.first && j.from < w.first + w.count)
            .map((j) => ({ ...j, from: j.from - w.first })),
        }),
      ),
    );
    const all = res.flatMap((x) => x.results ?? []);
    const foundMs = all.filter((x) => x.found).map((x) => x.ms);
    const messages = all.map((x) => x.messages);
    scenarios.push({
      offlinePercent: Math.round(frac * 100),
      lookups: all.length,
      found: foundMs.length,
      successPercent: (100 * foundMs.length) / all.length,
      p50Ms: percentile(foundMs, 50),
      p99Ms: percentile(foundMs, 99),
      under5sPercent: (100 * foundMs.filter((x) => x < 5000).length) / all.length,
      medianMessages: percentile(messages, 50),
      foundMs,
      messages,
    });
  }
  const stops = await Promise.all(workers.map((w) => ask(w, { op: 'stop' })));
  for (const w of workers) if (w.proc.connected) w.proc.disconnect();
  return {
    bench: 'whanau-tls',
    date: new Date().toISOString(),
    machine: { ...machine, loadEnd: currentLoad() },
    nodes: n,
    processes: procs,
    socialLinks: e.count,
    params: { w: params.w, rd: params.rd, rf: params.rf, rs: params.rs, t: params.t, l: params.layers },
    tableEntries: tableEntries(params),
    tableEntriesP50: percentile(tableSizes, 50),
    maxOutgoingPerNode: o.maxOutgoing,
    lookupsInFlightPerWorker: o.concurrency ?? 4,
    startMs,
    setupWallMs: setupMs,
    setupCpuSeconds: setupCpuS,
    setupNodeP50Ms: percentile(setupNodeMs, 50),
    setupNodeMaxMs: Math.max(...setupNodeMs),
    setupsComplete: setupNodeMs.length,
    tlsLinksDialedInSetup: dialedInSetup,
    tlsLinksDialedTotal: stops.reduce((s, x) => s + (x.dialed ?? 0), 0),
    workerPeakRssMiB: stops.map((m) => Math.round((m.rss ?? 0) / 2 ** 20)),
    scenarios,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), SPEC);
  if (args.worker) return runWorker();
  const n = intOption(args, 'nodes', 10, 20_000);
  const result = await runWhanauTls(
    {
      nodes: n,
      procs: args.procs === undefined ? undefined : intOption(args, 'procs', 1, 64),
      table: intOption(args, 'table', 1, 10_000),
      layers: intOption(args, 'layers', 1, 8),
      lookups: intOption(args, 'lookups', 1, 1_000_000),
      concurrency: intOption(args, 'concurrency', 1, 10_000),
      maxOutgoing: intOption(args, 'max-outgoing', 1, 10_000),
      idleMs: args['idle-ms'] === undefined ? 300_000 : intOption(args, 'idle-ms', 100, 3600_000),
      seed: intOption(args, 'seed', 0, 2 ** 31),
    },
    (msg) => process.stderr.write(`${msg}\n`),
  );
  mkdirSync('bench/results', { recursive: true });
  const scenarios = result.scenarios.map(({ foundMs: _f, messages: _m, ...s }) => s);
  writeFileSync('bench/results/whanau-tls.json', `${JSON.stringify({ ...result, scenarios }, null, 2)}\n`);
  const out = [
    `WhanauSIP DHT over TLS: ${n} nodes in ${result.processes} processes, ${result.socialLinks} social links, ${result.tableEntries} table entries/node (p50 held ${result.tableEntriesP50})`,
    `start ${ms(result.startMs)}; SETUP wall ${ms(result.setupWallMs)}, ${result.setupCpuSeconds.toFixed(0)} CPU-s (per node p50 ${ms(result.setupNodeP50Ms)}, max ${ms(result.setupNodeMaxMs)}), ${result.setupsComplete}/${n} complete`,
    `TLS links dialed: ${result.tlsLinksDialedInSetup} in SETUP, ${result.tlsLinksDialedTotal} in all`,
    '',
    `lookups: ${result.lookupsInFlightPerWorker} in flight per worker process`,
    'offline | lookups | found     | p50      | p99      | < 5 s   | median msgs',
    '--------|---------|-----------|----------|----------|---------|------------',
  ];
  for (const s of result.scenarios)
    out.push(
      `${String(s.offlinePercent).padStart(5)} % | ${String(s.lookups).padStart(7)} | ${s.successPercent.toFixed(2).padStart(7)} % | ${ms(s.p50Ms).padStart(8)} | ${ms(s.p99Ms).padStart(8)} | ${s.under5sPercent.toFixed(1).padStart(5)} % | ${s.medianMessages}`,
    );
  out.push(
    '',
    `worker peak RSS: ${result.workerPeakRssMiB.join(', ')} MiB; load ${result.machine.loadStart} -> ${result.machine.loadEnd}`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  main().catch((e) => {
    process.stderr.write(`whanau-tls: ${(e as Error).stack}\n`);
    process.exit(1);
  });
