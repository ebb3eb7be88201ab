/**
 * Whanau at scale: `node --import tsx bench/whanau-sim.ts [--honest N] [--points G1,G2,...] [--lookups K] [--seed S]`.
 *
 * One synthetic social network of N honest nodes (preferential attachment,
 * mean degree about 10), a Sybil region of N/10 identities running the
 * key-clustering attack, and the number of attack edges G swept from 0 to N/10
 * (the Whanau paper, NSDI 2010, figure 7: lookups keep succeeding until about
 * m/10 attack edges). For each G: one SETUP with the default parameters (see
 * src/dht/whanau/params.ts: w = ceil(ln N), r_d = r_f = r_s = ceil(sqrt(3N)),
 * t = 3, l = 2), then K lookups of the attacked keys from random honest nodes.
 * Prints a table, writes bench/results/whanau-sim.json and whanau-sim.svg.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simulateWhanau, type WhanauSimResult } from '../src/sim/whanau.ts';
import { intOption, parseArgs } from '../src/util/args.ts';
import { OverlayError } from '../src/util/errors.ts';
import { renderChart } from './lib/svg.ts';

interface Row extends WhanauSimResult {
  wallSeconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2), {
    honest: { type: 'string', default: '100000' },
    points: { type: 'string' },
    lookups: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '1' },
    layers: { type: 'string', default: '2' },
  });
  const honest = intOption(args, 'honest', 100, 2_000_000);
  const lookups = intOption(args, 'lookups', 1, 1_000_000);
  const seed = intOption(args, 'seed', 0, 2 ** 32 - 1);
  const layers = intOption(args, 'layers', 1, 16);
  const points =
    typeof args.points === 'string'
      ? args.points.split(',').map((s) => {
          const v = Number(s);
          if (!Number.isInteger(v) || v < 0) throw new OverlayError('BAD_ARGUMENT', `--points: bad value '${s}'`);
          return v;
        })
      : [0, honest / 100, honest / 30, honest / 10].map(Math.round);

  const rows: Row[] = [];
  for (const g of points) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    process.stderr.write(`G = ${g}\n`);
    const r = simulateWhanau({
      honest,
      attackEdges: g,
      sybils: Math.max(1, Math.ceil(honest / 10)),
      attack: 'cluster',
      layers,
      lookups,
      seed,
    });
    const c = process.cpuUsage(c0);
    rows.push({
      ...r,
      wallSeconds: Math.round((performance.now() - t0) / 100) / 10,
      cpuSeconds: Math.round((c.user + c.system) / 1e5) / 10,
      maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    });
  }

  const head = ['G', 'G/n', 'escaped walks', 'success', 'median msgs', 'p99 msgs', 'table', 'held', 'wall s', 'cpu s'];
  const lines = [head.join(' | '), head.map(() => '---').join(' | ')];
  for (const r of rows)
    lines.push(
      [
        r.attackEdges,
        (r.attackEdges / r.honest).toFixed(3),
        `${(r.escapedWalks * 100).toFixed(1)}%`,
        `${(r.successRate * 100).toFixed(1)}%`,
        r.medianMessages,
        r.p99Messages,
        r.tableEntries,
        r.storedEntries,
        r.wallSeconds,
        r.cpuSeconds,
      ].join(' | '),
    );
  process.stdout.write(`Whanau, ${honest} honest nodes, key-clustering attack, l = ${layers}\n${lines.join('\n')}\n`);

  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'whanau-sim.json'), `${JSON.stringify({ honest, lookups, seed, layers, rows }, null, 2)}\n`);
  const svg = renderChart({
    title: `Whanau lookups under the key-clustering attack (${honest} honest nodes, l = ${layers})`,
    xLabel: 'attack edges G',
    yLabel: 'lookups that succeed (%)',
    kind: 'line',
    yScale: 'linear',
    series: [{ name: 'success %', points: rows.map((r) => ({ x: r.attackEdges, y: r.successRate * 100 })) }],
  });
  writeFileSync(join(out, 'whanau-sim.svg'), svg);
}

main();
