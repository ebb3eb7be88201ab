/**
 * Whanau against Chord under the same Sybil attack (issue 5):
 * `node --import tsx bench/dht-sybil.ts [--quick] [--honest N] [--lookups K] [--seed S] [--jobs J]`.
 *
 * x axis: G, the attack edges of the Whanau social graph, in {0, n/1000,
 * n/100, n/20, n/10}; the Sybil region holds n/10 identities throughout.
 *  - Whanau: one SETUP per (G, attack) with l = 2, lookups replayed with
 *    l = 1 and l = 2 (simulateWhanauLayers); attacks: key clustering
 *    (lookups of the 5 attacked keys) and drop (lookups of random keys).
 *  - Chord has no social graph: its attacker just creates identities. Mapping
 *    S(G) = G: one Sybil per attack edge, as if every honest user fooled into
 *    a social link had vouched for one identity at admission. Sybils are free
 *    in Chord, so fixed S = n/100 and S = n/10 (the Whanau Sybil region) are
 *    shown too. Placements: next to the 5 target keys (lookups of those) or
 *    random ids (lookups of random keys); Sybils collude in lies or drop.
 * Each run is a child process (J at once, default 2) so its wall time, CPU
 * time and peak RSS are its own. Prints a markdown table and writes
 * bench/results/dht-sybil.{json,md,svg} (`--replot <json>` renders them again from a saved run).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SybilAnswer, type SybilPlacement, simulateChordSybils } from '../src/sim/chord-sybil.ts';
import { type Attack, simulateWhanauLayers } from '../src/sim/whanau.ts';
import { intOption, parseArgs } from '../src/util/args.ts';
import { machineInfo } from './lib/machine.ts';
import { renderChart, type Series } from './lib/svg.ts';

type Job =
  | { dht: 'whanau'; honest: number; g: number; attack: Attack; lookups: number; seed: number }
  | {
      dht: 'chord';
      honest: number;
      g: number;
      sybils: number;
      placement: SybilPlacement;
      answer: SybilAnswer;
      lookups: number;
      seed: number;
    };

/** One row of the table: a DHT variant at one G. */
interface Row {
  dht: 'whanau' | 'chord';
  variant: string;
  g: number;
  sybils: number;
  successRate: number;
  medianMessages: number;
  p99Messages: number;
  meanMessages: number;
  /** Of the job that produced the row (a Whanau job yields l = 1 and l = 2). */
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  load: string;
  /** A copy of a shared run at another point (left out of the list of runs). */
  copy?: boolean;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** Child side: run one job, print its rows as one JSON line. */
async function runJob(job: Job): Promise<Row[]> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const l0 = loadavg()[0];
  const parts: Omit<Row, 'wallSeconds' | 'cpuSeconds' | 'peakRssMiB' | 'load'>[] = [];
  if (job.dht === 'whanau') {
    const sybils = Math.ceil(job.honest / 10);
    const rs = simulateWhanauLayers(
      { honest: job.honest, attackEdges: job.g, sybils, attack: job.attack, lookups: job.lookups, seed: job.seed },
      [1, 2],
    );
    for (const r of rs)
      parts.push({
        dht: 'whanau',
        variant: `Whanau ${job.g === 0 ? 'no attack' : job.attack}, l=${r.params.l}`,
        g: job.g,
        sybils,
        successRate: r.successRate,
        medianMessages: r.medianMessages,
        p99Messages: r.p99Messages,
        meanMessages: r.meanMessages,
      });
  } else {
    const r = await simulateChordSybils({
      nodes: job.honest,
      sybils: job.sybils,
      placement: job.placement,
      answer: job.answer,
      lookups: job.lookups,
      seed: job.seed,
    });
    parts.push({
      dht: 'chord',
      variant: `Chord ${job.placement} ${job.answer}, S=${job.sybils === job.g ? 'G' : job.sybils}`,
      g: job.g,
      sybils: job.sybils,
      successRate: r.successRate,
      medianMessages: r.medianMessages,
      p99Messages: r.p99Messages,
      meanMessages: r.meanMessages,
    });
  }
  const c = process.cpuUsage(c0);
  const stats = {
    wallSeconds: Math.round((performance.now() - t0) / 100) / 10,
    cpuSeconds: Math.round((c.user + c.system) / 1e5) / 10,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    load: `${l0.toFixed(1)}-${loadavg()[0].toFixed(1)}`,
  };
  return parts.map((p) => ({ ...p, ...stats }));
}

function jobsFor(honest: number, lookups: number, seed: number): Job[] {
  const points = [0, honest / 1000, honest / 100, honest / 20, honest / 10].map(Math.round);
  const jobs: Job[] = [];
  for (const g of points) {
    // Without attack edges no walk reaches a Sybil: cluster and drop are one run.
    for (const attack of g === 0 ? (['cluster'] as const) : (['cluster', 'drop'] as const))
      jobs.push({ dht: 'whanau', honest, g, attack, lookups, seed });
  }
  const chord = (g: number, sybils: number, placement: SybilPlacement, answer: SybilAnswer): Job => ({
    dht: 'chord',
    honest,
    g,
    sybils,
    placement,
    answer,
    lookups,
    seed,
  });
  for (const g of points)
    for (const [p, a] of [
      ['cluster', 'lie'],
      ['random', 'lie'],
      ['random', 'drop'],
    ] as const)
      jobs.push(chord(g, g, p, a));
  // Fixed S does not depend on G: one run each, drawn across every G.
  for (const s of [honest / 100, honest / 10].map(Math.round))
    for (const [p, a] of [
      ['cluster', 'lie'],
      ['random', 'lie'],
      ['random', 'drop'],
    ] as const)
      jobs.push(chord(-1, s, p, a));
  return jobs;
}

function spawnJob(job: Job): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(HERE, 'dht-sybil.ts'), '--job', JSON.stringify(job)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`job ${JSON.stringify(job)} exited ${code}`));
      else resolve(JSON.parse(out) as Row[]);
    });
  });
}

/** Run jobs J at a time, the heaviest (Whanau at large G) first. */
async function runAll(jobs: Job[], parallel: number): Promise<Row[]> {
  const queue = [...jobs];
  const rows: Row[] = [];
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const rs = await spawnJob(job);
      rows.push(...rs);
      done++;
      const r = rs[rs.length - 1];
      process.stderr.write(
        `[${done}/${jobs.length}] ${r.variant} G=${r.g}: ${(r.successRate * 100).toFixed(1)}% ` +
          `(${r.wallSeconds} s wall, ${r.cpuSeconds} s CPU, ${r.peakRssMiB} MiB, load ${r.load})\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return rows;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function longTable(rows: Row[]): string {
  const head = [
    'DHT, attack',
    'G',
    'Sybils',
    'success',
    'msgs median',
    'p99',
    'wall s',
    'CPU s',
    'peak RSS MiB',
    'load',
  ];
  const out = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows)
    out.push(
      `| ${[r.variant, r.dht === 'chord' && r.sybils !== r.g ? 'any' : r.g, r.sybils, pct(r.successRate), r.medianMessages, r.p99Messages, r.wallSeconds, r.cpuSeconds, r.peakRssMiB, r.load].join(' | ')} |`,
    );
  return out.join('\n');
}

/** Success (median / p99 messages) per variant and G: the table docs/benchmarks.md shows. */
function wideTable(rows: Row[], points: number[], honest: number): string {
  const variants = [...new Set(rows.map((r) => r.variant))];
  const head = ['DHT, attack', ...points.map((g) => `G=${g} (${(g / honest).toFixed(3)} n)`)];
  const out = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const v of variants) {
    const cells = points.map((g) => {
      const r = rows.find((x) => x.variant === v && x.g === g) ?? rows.find((x) => x.variant === v && x.g === 0);
      if (!r) return '—';
      return `${pct(r.successRate)} (${r.medianMessages}/${r.p99Messages})`;
    });
    out.push(`| ${v} | ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

/**
 * Runs shared between points: the G = 0 Whanau run is the same for both
 * attacks, and a Chord run with a fixed S (g = -1) holds at every G.
 */
function spreadShared(rows: Row[], points: number[]): Row[] {
  const out: Row[] = [];
  for (const r of rows) {
    if (r.dht === 'whanau' && r.g === 0)
      for (const a of ['cluster', 'drop']) out.push({ ...r, variant: r.variant.replace('no attack', a) });
    else if (r.g < 0) for (const [k, g] of points.entries()) out.push({ ...r, g, copy: k > 0 });
    else out.push(r);
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), {
    job: { type: 'string' },
    replot: { type: 'string' },
    quick: { type: 'boolean' },
    honest: { type: 'string' },
    lookups: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    jobs: { type: 'string', default: '2' },
  });
  if (typeof args.job === 'string') {
    process.stdout.write(`${JSON.stringify(await runJob(JSON.parse(args.job) as Job))}\n`);
    return;
  }
  if (typeof args.replot === 'string') {
    const file = args.replot;
    writeOutputs(basename(file, '.json'), JSON.parse(readFileSync(file, 'utf8')) as Saved);
    return;
  }
  const honest =
    args.honest === undefined ? (args.quick ? 10_000 : 100_000) : intOption(args, 'honest', 1000, 2_000_000);
  const lookups = intOption(args, 'lookups', 1, 1_000_000);
  const seed = intOption(args, 'seed', 0, 2 ** 32 - 1);
  const parallel = intOption(args, 'jobs', 1, 8);
  const machine = machineInfo();
  const t0 = performance.now();
  const jobs = jobsFor(honest, lookups, seed);
  const points = [...new Set(jobs.map((j) => j.g))].filter((g) => g >= 0).sort((a, b) => a - b);
  const rows = spreadShared(await runAll(jobs, parallel), points);
  const order = [...new Set(rows.map((r) => r.variant))].sort();
  rows.sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant) || a.g - b.g);

  const head = [
    `Whanau against Chord under the Sybil attack: ${honest.toLocaleString('en-US')} honest nodes, ${lookups} lookups per run, seed ${seed}.`,
    `Machine: ${machine.cores} cores, Node ${machine.node}; load ${machine.loadStart} at start, ${loadavg()[0].toFixed(2)} at end; ${parallel} runs at once; total ${Math.round((performance.now() - t0) / 1000)} s wall.`,
    `Command: \`node --import tsx bench/dht-sybil.ts${args.quick ? ' --quick' : ''}\`; commit ${gitHead()}.`,
  ].join('\n');
  writeOutputs(args.quick ? 'dht-sybil-quick' : 'dht-sybil', { honest, lookups, seed, head, machine, rows });
}

interface Saved {
  honest: number;
  lookups: number;
  seed: number;
  head: string;
  machine: unknown;
  rows: Row[];
}

/** bench/results/<name>.{json,md,svg}; `--replot <json>` renders them again from a saved run. */
function writeOutputs(name: string, saved: Saved): void {
  const { honest, head, rows } = saved;
  const points = [...new Set(rows.map((r) => r.g))].sort((a, b) => a - b);
  const md = [
    head,
    '',
    'Success (median / p99 messages per lookup):',
    '',
    wideTable(rows, points, honest),
    '',
    'Every run (a Whanau run is one SETUP with l = 2 and the lookups replayed with l = 1 and l = 2; a Chord run with a fixed S is one run, repeated at every G):',
    '',
    longTable(rows.filter((r) => !r.copy)),
    '',
  ].join('\n');
  process.stdout.write(md);
  const out = join(HERE, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${name}.json`), `${JSON.stringify(saved, null, 2)}\n`);
  writeFileSync(join(out, `${name}.md`), md);
  // Plotted: Whanau l = 1 and 2 under both attacks (solid); Chord with S = G, and lying at random ids with S = n/10 (dashed).
  const plotted = [...new Set(rows.map((r) => r.variant))].filter(
    (v) => v.startsWith('Whanau') || v.endsWith('S=G') || v === `Chord random lie, S=${Math.round(honest / 10)}`,
  );
  const series: Series[] = plotted.map((v) => ({
    name: v,
    dashed: v.startsWith('Chord'),
    points: rows.filter((r) => r.variant === v).map((r) => ({ x: r.g, y: r.successRate * 100 })),
  }));
  writeFileSync(
    join(out, `${name}.svg`),
    renderChart({
      title: `Lookups under the Sybil attack, ${honest.toLocaleString('en-US')} honest nodes`,
      xLabel: 'attack edges G (Whanau); Chord S=G: one Sybil per attack edge',
      yLabel: 'lookups that find the record (%)',
      kind: 'line',
      yScale: 'linear',
      xScale: 'even',
      series,
      width: 900,
      height: 480,
    }),
  );
}

function gitHead(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

await main();
