/**
 * Chord under churn, seed by seed: `node --import tsx bench/chord-seeds.ts [--from 1] [--to 90] [--liars 0.1]
 * [--nodes 60]`. Runs the `sim chord` scenario (N nodes, 300 lookups, churn 0.1 in a 10 s window) for every seed
 * in the range, prints the seeds where a lookup accepted a wrong owner or a record was lost, then the totals,
 * and writes bench/results/chord-seeds[-liars-F].json. Simulated time: the figures are the same on any machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChordSim } from '../src/sim/chord.ts';
import { parseArgs } from '../src/util/args.ts';

const args = parseArgs(process.argv.slice(2), {
  from: { type: 'string', default: '1' },
  to: { type: 'string', default: '90' },
  liars: { type: 'string', default: '0' },
  nodes: { type: 'string', default: '60' },
});
const num = (k: string): number => {
  const v = Number(args[k]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`--${k}: not a number: ${String(args[k])}\n`);
    process.exit(2);
  }
  return v;
};
const from = num('from');
const to = num('to');
const liars = num('liars');
const nodes = num('nodes');

const bad: { seed: number; wrong: number; lost: number; failed: number }[] = [];
let lookups = 0;
let failed = 0;
for (let seed = from; seed <= to; seed++) {
  const r = await runChordSim({ nodes, lookups: 300, churn: 0.1, windowMs: 10_000, seed, liars });
  lookups += r.lookups;
  failed += r.failed;
  if (r.wrong > 0 || r.recordsLost > 0) {
    bad.push({ seed, wrong: r.wrong, lost: r.recordsLost, failed: r.failed });
    process.stdout.write(`seed ${seed}: wrong ${r.wrong}, records lost ${r.recordsLost}, failed ${r.failed}\n`);
  }
}
const summary = {
  nodes,
  liars,
  seeds: [from, to],
  lookups,
  failed,
  seedsWithWrongOwner: bad.filter((b) => b.wrong > 0).length,
  wrongOwners: bad.reduce((a, b) => a + b.wrong, 0),
  seedsWithLostRecords: bad.filter((b) => b.lost > 0).length,
  recordsLost: bad.reduce((a, b) => a + b.lost, 0),
  bad,
};
process.stdout.write(
  `\n| seeds | liars | lookups | failed | wrong owners (seeds) | records lost (seeds) |\n|---|---|---|---|---|---|\n` +
    `| ${from}-${to} | ${liars} | ${lookups} | ${failed} | ${summary.wrongOwners} (${summary.seedsWithWrongOwner}) | ` +
    `${summary.recordsLost} (${summary.seedsWithLostRecords}) |\n`,
);
const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
const file = `chord-seeds${liars > 0 ? `-liars-${liars}` : ''}.json`;
writeFileSync(join(dir, file), `${JSON.stringify(summary, null, 2)}\n`);
process.stdout.write(`wrote bench/results/${file}\n`);
