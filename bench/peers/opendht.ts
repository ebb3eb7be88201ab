/**
 * Chord over TLS against OpenDHT 2.4, side by side on this machine:
 *
 *   node --import tsx bench/peers/opendht.ts [--quick] [--pairs 5] [--nodes 50] [--values 100] [--gets 500]
 *     [--stabilize-ms 100] [--max-stabilize-ms 1600]
 *
 * Each run is one process of N nodes on 127.0.0.1: ours (this program re-run
 * with `ours`: N ChordNodes, each on its own TLS 1.3 endpoint, stabilize
 * period --stabilize-ms (default 100), backing off to --max-stabilize-ms while
 * the ring is at rest (default 1600; equal to the period for a fixed one; the
 * daemons run 1000 backing off to 8000)) or OpenDHT's (opendht_bench.py under /usr/bin/python3, which
 * has the Debian python3-opendht module). Both put V values from random nodes,
 * then G gets one at a time, each by a node that does not hold the value and
 * has not asked for that key before, timed to the first value. Runs
 * alternate (ours, OpenDHT, ours, OpenDHT, ...); each pair gives the ratios
 * ours/OpenDHT of p50 and p99, and the medians of those ratios are the result.
 * Also per run: requests per get (every request in the network during the
 * gets, less the background rate measured in an idle window before), the CPU
 * of the process while idle and while getting, and for ours the event-loop
 * utilisation while idle. Prints a table, writes bench/results/peers-opendht.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { intOption, parseArgs } from '../../src/util/args.ts';
import { mean, percentile } from '../../src/util/stats.ts';
import { TlsRing } from '../lib/tls-ring.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';

interface RunResult {
  system: 'ours' | 'opendht';
  nodes: number;
  values: number;
  putFailed: number;
  gets: number;
  failed: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  requestsPerGet: number;
  requestsPerGetGross: number;
  idleSeconds: number;
  idleCpuPercent: number;
  idleRequestsPerSecond: number;
  getPhaseSeconds: number;
  getPhaseCpuPercent: number;
  cpuSecondsTotal: number;
  wallSecondsTotal: number;
  /** Ours only. */
  idleElu?: number;
  getPhaseElu?: number;
  dialsDuringGets?: number;
  /** Gets during which some node of the process dialed, and the p99 of the others. */
  getsWithDial?: number;
  p99MsNoDial?: number;
  /** Open TLS links in the process (each counted once) and mean view size, after the gets. */
  links?: number;
  viewSize?: number;
  load?: number;
}

/** A small seeded generator (mulberry32), so both systems' runs of one seed pick alike. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** One run of ours in this process; the result goes to stdout as one JSON line. */
async function ours(args: {
  nodes: number;
  values: number;
  gets: number;
  seed: number;
  settle: number;
  idle: number;
  stabilizeMs: number;
  maxStabilizeMs: number;
}) {
  const t00 = performance.now();
  const cpu00 = cpuSeconds();
  const rnd = seeded(args.seed);
  const ring = new TlsRing(args.stabilizeMs, args.maxStabilizeMs);
  await ring.growTo(args.nodes);
  await sleep(args.settle * 1000);
  const requests = () => ring.endpoints.reduce((s, e) => s + e.stats.requestsSent, 0);
  const dials = () => ring.endpoints.reduce((s, e) => s + e.stats.connectionsDialed, 0);

  let req0 = requests();
  let cpu0 = cpuSeconds();
  let t0 = performance.now();
  const elu0 = performance.eventLoopUtilization();
  await sleep(args.idle * 1000);
  const idleElu = performance.eventLoopUtilization(elu0).utilization;
  const idleS = (performance.now() - t0) / 1000;
  const idleCpu = cpuSeconds() - cpu0;
  const idleReqs = requests() - req0;

  const keys = Array.from({ length: args.values }, (_, i) => `peer-bench-${args.seed}-${i}`);
  let putFailed = 0;
  for (const k of keys) {
    const from = ring.nodes[Math.floor(rnd() * ring.nodes.length)];
    const r = await from.put(k, new Uint8Array(64).fill(118), 600_000);
    if (!r.ok) putFailed++;
  }
  await sleep(1000);
  const pairs: [number, number][] = [];
  for (let k = 0; k < keys.length; k++)
    for (let n = 0; n < ring.nodes.length; n++) if (!ring.nodes[n].store.has(keys[k])) pairs.push([n, k]);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  const chosen = pairs.slice(0, args.gets);
  const holders = ring.nodes.reduce((s, n) => s + keys.filter((k) => n.store.has(k)).length, 0) / keys.length;

  const ms: number[] = [];
  let failed = 0;
  req0 = requests();
  const dial0 = dials();
  cpu0 = cpuSeconds();
  t0 = performance.now();
  const elu1 = performance.eventLoopUtilization();
  // Gets during which some node of the process dialed (a handshake on the path, or one stalling the loop).
  const msNoDial: number[] = [];
  for (const [ni, k] of chosen) {
    const node = ring.nodes[ni];
    const d0 = dials();
    const began = performance.now();
    const r = await node.get(keys[k]);
    const dt = performance.now() - began;
    if (r.ok) {
      ms.push(dt);
      if (dials() === d0) msNoDial.push(dt);
    } else failed++;
  }
  const getElu = performance.eventLoopUtilization(elu1).utilization;
  const getS = (performance.now() - t0) / 1000;
  const getCpu = cpuSeconds() - cpu0;
  const getReqs = requests() - req0;
  const background = idleS > 0 ? (idleReqs / idleS) * getS : 0;
  const n = Math.max(1, chosen.length);
  const out: RunResult = {
    system: 'ours',
    nodes: args.nodes,
    values: args.values,
    putFailed,
    gets: chosen.length,
    failed,
    p50Ms: percentile(ms, 50),
    p90Ms: percentile(ms, 90),
    p99Ms: percentile(ms, 99),
    meanMs: mean(ms),
    requestsPerGetGross: getReqs / n,
    requestsPerGet: Math.max(0, (getReqs - background) / n),
    idleSeconds: idleS,
    idleCpuPercent: (100 * idleCpu) / idleS,
    idleRequestsPerSecond: idleReqs / idleS,
    getPhaseSeconds: getS,
    getPhaseCpuPercent: (100 * getCpu) / getS,
    cpuSecondsTotal: cpuSeconds() - cpu00,
    wallSecondsTotal: (performance.now() - t00) / 1000,
    idleElu,
    getPhaseElu: getElu,
    dialsDuringGets: dials() - dial0,
    getsWithDial: ms.length - msNoDial.length,
    p99MsNoDial: percentile(msNoDial, 99),
    links: ring.endpoints.reduce((s, e) => s + e.connectionCount, 0) / 2,
    viewSize: mean(ring.nodes.map((x) => x.view.size)),
  };
  (out as RunResult & { holdersPerValue: number }).holdersPerValue = holders;
  await ring.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runChild(cmd: string, argv: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code}`));
      try {
        resolve(JSON.parse(line) as RunResult);
      } catch {
        reject(new Error(`no result from ${cmd}: ${line.slice(0, 200)}`));
      }
    });
  });
}

function cpuModel(): string {
  const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return m ? m[1].trim() : 'unknown';
}

const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : x);
const r3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x);

function table(head: string[], rows: (string | number)[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => r.map((c, i) => String(c).padStart(w[i])).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const sub = argv[0] === 'ours' ? argv.shift() : undefined;
  const args = parseArgs(argv, {
    quick: { type: 'boolean' },
    pairs: { type: 'string' },
    nodes: { type: 'string', default: '50' },
    values: { type: 'string', default: '100' },
    gets: { type: 'string', default: '500' },
    seed: { type: 'string', default: '1' },
    settle: { type: 'string' },
    idle: { type: 'string' },
    'stabilize-ms': { type: 'string', default: '100' },
    'max-stabilize-ms': { type: 'string', default: '1600' },
  });
  const quick = args.quick === true;
  const nodes = intOption(args, 'nodes', 2, 500);
  const values = intOption(args, 'values', 1, 10_000);
  const gets = intOption(args, 'gets', 1, 100_000);
  const seed = intOption(args, 'seed', 0, 2 ** 31);
  const settle = args.settle !== undefined ? intOption(args, 'settle', 1, 600) : quick ? 5 : 10;
  const idle = args.idle !== undefined ? intOption(args, 'idle', 1, 600) : quick ? 3 : 5;
  const stabilizeMs = intOption(args, 'stabilize-ms', 10, 60_000);
  const maxStabilizeMs = Math.max(stabilizeMs, intOption(args, 'max-stabilize-ms', 10, 600_000));
  if (sub === 'ours') return ours({ nodes, values, gets, seed, settle, idle, stabilizeMs, maxStabilizeMs });

  const pairs = args.pairs !== undefined ? intOption(args, 'pairs', 1, 100) : quick ? 2 : 5;
  const common = ['--nodes', `${nodes}`, '--values', `${values}`, '--gets', `${gets}`];
  const timing = ['--settle', `${settle}`, '--idle', `${idle}`];
  const runs: { pair: number; ours: RunResult; opendht: RunResult }[] = [];
  const started = new Date().toISOString();
  const loadStart = loadavg()[0];
  for (let p = 0; p < pairs; p++) {
    const s = `${seed + p}`;
    const load = loadavg()[0];
    process.stderr.write(`pair ${p + 1}/${pairs}: ours ... `);
    const a = await runChild(process.execPath, [
      '--import',
      'tsx',
      join(here, 'opendht.ts'),
      'ours',
      '--stabilize-ms',
      `${stabilizeMs}`,
      '--max-stabilize-ms',
      `${maxStabilizeMs}`,
      ...common,
      ...timing,
      '--seed',
      s,
    ]);
    a.load = r2(load);
    process.stderr.write(`p50 ${r3(a.p50Ms)} ms; opendht ... `);
    const load2 = loadavg()[0];
    const b = await runChild(PYTHON, [join(here, 'opendht_bench.py'), ...common, ...timing, '--seed', s]);
    b.load = r2(load2);
    process.stderr.write(`p50 ${r3(b.p50Ms)} ms\n`);
    runs.push({ pair: p + 1, ours: a, opendht: b });
  }
  const ratio = (f: (r: RunResult) => number) => runs.map((r) => f(r.ours) / f(r.opendht));
  const p50 = ratio((r) => r.p50Ms);
  const p99 = ratio((r) => r.p99Ms);
  const msgs = ratio((r) => r.requestsPerGet);
  const idleCpu = ratio((r) => r.idleCpuPercent);
  const summary = {
    p50RatioMedian: r3(percentile(p50, 50)),
    p99RatioMedian: r3(percentile(p99, 50)),
    requestsRatioMedian: r3(percentile(msgs, 50)),
    idleCpuRatioMedian: r3(percentile(idleCpu, 50)),
    p50Ratios: p50.map(r3),
    p99Ratios: p99.map(r3),
  };
  const rows: (string | number)[][] = [];
  for (const r of runs)
    for (const x of [r.ours, r.opendht])
      rows.push([
        r.pair,
        x.system,
        x.load ?? '',
        `${x.gets - x.failed}/${x.gets}`,
        r3(x.p50Ms),
        r3(x.p90Ms),
        r3(x.p99Ms),
        r2(x.requestsPerGet),
        r2(x.idleCpuPercent),
        x.idleElu === undefined ? '-' : r3(x.idleElu),
        r2(x.getPhaseCpuPercent),
        x.dialsDuringGets ?? '-',
        x.getsWithDial ?? '-',
        x.p99MsNoDial === undefined ? '-' : r3(x.p99MsNoDial),
      ]);
  process.stdout.write(
    `\nChord over TLS vs OpenDHT 2.4: ${nodes} nodes per process, ${values} values, ${gets} gets from non-holders\n`,
  );
  process.stdout.write(`CPU: ${cpuModel()} (load at start ${r2(loadStart)})\n\n`);
  process.stdout.write(
    `${table(
      [
        'pair',
        'system',
        'load',
        'ok',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'req/get',
        'idle CPU %',
        'idle ELU',
        'get CPU %',
        'dials',
        'gets w/ dial',
        'p99 w/o dial',
      ],
      rows,
    )}\n\n`,
  );
  process.stdout.write(
    `${table(
      ['', 'p50 ours/OpenDHT', 'p99 ours/OpenDHT', 'req/get ours/OpenDHT', 'idle CPU ours/OpenDHT'],
      [
        ...runs.map((r, i) => [`pair ${r.pair}`, r3(p50[i]), r3(p99[i]), r3(msgs[i]), r3(idleCpu[i])]),
        [
          'median',
          summary.p50RatioMedian,
          summary.p99RatioMedian,
          summary.requestsRatioMedian,
          summary.idleCpuRatioMedian,
        ],
      ],
    )}\n`,
  );
  const dir = join(here, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const out = {
    bench: 'peers-opendht',
    date: started,
    quick,
    cpu: cpuModel(),
    node: process.version,
    loadStart: r2(loadStart),
    loadEnd: r2(loadavg()[0]),
    params: { nodes, values, gets, settle, idle, pairs, seed, stabilizeMs, maxStabilizeMs },
    summary,
    runs,
  };
  writeFileSync(join(dir, 'peers-opendht.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\nwrote bench/results/peers-opendht.json\n`);
}

await main();
