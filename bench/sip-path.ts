/**
 * CPU per transaction of the registrar/redirect server's request path, two checkouts side by side: each runs in
 * its own process (bench/sip-path-worker.ts), built as `secp2psip registrar` builds it, and is fed REGISTERs and
 * INVITE->302->ACK in process through the transport stack's `inject` (parsing, admission, transactions, the
 * registrar, the response and its bytes: all but the socket calls, which cost both sides the same), paced at the
 * rate sipp offers in bench/peers/kamailio.ts so that the tables of completed transactions hold as many. The two
 * take turns batch by batch (A B, then B A), so load from elsewhere on a shared machine falls on both alike; the
 * figures are the per-pair ratios and their median. The driver's own work (writing the ACKs) counts on both sides.
 *
 * A lower-noise complement to bench/peers/kamailio.ts for changes to our own code (that one measures against
 * Kamailio through real sockets and sipp).
 *
 * Run: node --import tsx bench/sip-path.ts --baseline DIR [--rounds 10] [--batch 6000] [--rate 2000]
 * (DIR: another checkout of the project with node_modules, e.g. the main branch; the current tree is "ours").
 * Writes bench/results/sip-path.json and prints a table.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numberOption, stringOption } from './lib/args.ts';
import { cpuModel, median } from './peers/kamailio-servers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const baseline = stringOption('baseline');
if (baseline === undefined) {
  process.stderr.write('usage: node --import tsx bench/sip-path.ts --baseline DIR [--rounds N] [--batch N]\n');
  process.exit(2);
}
const rounds = numberOption('rounds', 10);
const batchSize = numberOption('batch', 6000);
/** Transactions offered per second, as sipp offers them in bench/peers/kamailio.ts. */
const rate = numberOption('rate', 2000);
const SCENARIOS = ['register', 'invite-302'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Worker {
  proc: ChildProcess;
  run(scenario: Scenario, n: number): Promise<{ cpuUs: number; answered: number }>;
}

function start(root: string): Promise<Worker> {
  const proc = fork(join(ROOT, 'bench/sip-path-worker.ts'), [root], {
    execArgv: ['--import', 'tsx'],
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`worker for ${root} exited (${code})`)));
    proc.once('message', () =>
      resolve({
        proc,
        run: (scenario, n) =>
          new Promise((res) => {
            proc.once('message', (m) => res(m as { cpuUs: number; answered: number }));
            proc.send({ scenario, n, rate });
          }),
      }),
    );
  });
}

const load1 = (): number => Math.round(loadavg()[0] * 100) / 100;

async function main(): Promise<void> {
  const ours = await start(ROOT);
  const base = await start(baseline as string);
  const loadStart = load1();
  // Warm-up: both sides' code optimised and their tables of completed transactions filled (Timer J is 32 s).
  await Promise.all(
    [ours, base].map(async (w) => {
      for (const s of SCENARIOS) await w.run(s, rate * 16);
    }),
  );
  const rows: Array<{
    round: number;
    scenario: Scenario;
    ours: number;
    baseline: number;
    ratio: number;
    load: number;
  }> = [];
  for (let r = 1; r <= rounds; r++)
    for (const scenario of SCENARIOS) {
      const order = r % 2 === 1 ? [ours, base] : [base, ours];
      const got = new Map<Worker, number>();
      for (const w of order) {
        const m = await w.run(scenario, batchSize);
        got.set(w, m.cpuUs / m.answered);
      }
      const a = got.get(ours) as number;
      const b = got.get(base) as number;
      rows.push({ round: r, scenario, ours: a, baseline: b, ratio: a / b, load: load1() });
      process.stderr.write(
        `round ${r} ${scenario}: ours ${a.toFixed(1)} us/tx, baseline ${b.toFixed(1)}, ratio ${(a / b).toFixed(3)}\n`,
      );
    }
  for (const w of [ours, base]) w.proc.send('exit');
  const summary = SCENARIOS.map((scenario) => {
    const per = rows.filter((x) => x.scenario === scenario);
    return {
      scenario,
      medianOursUs: median(per.map((x) => x.ours)),
      medianBaselineUs: median(per.map((x) => x.baseline)),
      medianRatio: median(per.map((x) => x.ratio)),
    };
  });
  const result = {
    bench: 'sip-path',
    date: new Date().toISOString(),
    cpu: cpuModel(),
    node: process.version,
    baseline,
    rounds,
    batch: batchSize,
    rate,
    loadStart,
    loadEnd: load1(),
    rows,
    summary,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results/sip-path.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const w = process.stdout.write.bind(process.stdout);
  w(
    `\nregistrar request path in process, ours vs ${baseline}, ${rounds} rounds of ${batchSize} transactions at ${rate}/s\n`,
  );
  w(`CPU: ${result.cpu}; load ${loadStart} -> ${result.loadEnd}\n\n`);
  w('scenario   | us CPU/tx ours | us CPU/tx baseline | ratio ours/baseline (median of pairs)\n');
  w('-----------|----------------|--------------------|-------------------------------------\n');
  for (const s of summary)
    w(
      `${s.scenario.padEnd(10)} | ${s.medianOursUs.toFixed(1).padStart(14)} | ${s.medianBaselineUs.toFixed(1).padStart(18)} | ${s.medianRatio.toFixed(3)}\n`,
    );
  w(`\nwrote ${file}\n`);
}

await main();
