/**
 * WhanauSIP lookups (seed 003 chapter 5: 3,000 virtual nodes, 300 routing
 * table entries per node, "the majority of resource lookups return within
 * 5 seconds"), with 0 %, 10 % and 20 % of the nodes offline.
 *
 * MEASURED on real nodes (bench/whanau-tls.ts): every node is a WhanauSIP DHT
 * node with its own Ed25519 key and TLS 1.3 listener on loopback, a few worker
 * processes host them, a preferential-attachment social graph links them, one
 * SETUP builds the tables, then lookups run from random online nodes for
 * random online nodes' records. Full run: 3,000 nodes; --quick: 300 nodes
 * (stated in the rows). Nodes taken offline after SETUP stay in the others'
 * tables, as under churn. Loopback has no wide-area delay: the latencies are
 * the protocol's own cost on this machine, not PlanetLab's network.
 */
import { runWhanauTls } from '../whanau-tls.ts';
import type { FigureContext, FigureOutput } from '../lib/context.ts';
import type { Row } from '../lib/schema.ts';
import { summarize } from '../lib/summary.ts';
import { renderChart } from '../lib/svg.ts';

export const SEED_WHANAU = { nodes: 3000, tableEntries: 300, goalMs: 5000 };

export async function runWhanau(ctx: FigureContext): Promise<FigureOutput> {
  const t0 = performance.now();
  const nodes = ctx.quick ? 300 : SEED_WHANAU.nodes;
  const lookups = ctx.quick ? 300 : 1000;
  // r_d = r_f = r_s = 60, t = 3, l = 1: 60 + 60 + 3 x 60 = 300 entries, the seed's 300.
  const table = 60;
  const res = await runWhanauTls(
    { nodes, table, layers: 1, lookups, maxOutgoing: 2, idleMs: 300_000, seed: 1 },
    (msg) => ctx.say(`whanau: ${msg}`),
  );
  const rows: Row[] = [];
  const cdfs: { name: string; ms: number[] }[] = [];
  const setupParams = { nodes, processes: res.processes, table: res.tableEntries, socialLinks: res.socialLinks };
  rows.push(
    {
      measurement: `SETUP wall time, ${nodes} TLS nodes at once`,
      unit: 'ms',
      seed: null,
      ours: summarize([res.setupWallMs]),
      status: 'measured',
      params: { ...setupParams, cpuSeconds: Math.round(res.setupCpuSeconds), linksDialed: res.tlsLinksDialedInSetup },
    },
    {
      measurement: `SETUP complete, ${nodes} TLS nodes`,
      unit: '%',
      seed: null,
      ours: summarize([(100 * res.setupsComplete) / nodes]),
      status: 'measured',
      higherIsBetter: true,
      params: setupParams,
    },
  );
  for (const s of res.scenarios) {
    const pct = `${s.offlinePercent} % offline`;
    const params0 = { nodes, offline: s.offlinePercent / 100, lookups: s.lookups, table: res.tableEntries };
    rows.push(
      {
        measurement: `lookup latency, ${nodes} TLS nodes, ${pct}`,
        unit: 'ms',
        seed: SEED_WHANAU.goalMs,
        seedNote: 'most lookups under',
        ours: summarize(s.foundMs),
        status: 'measured',
        params: params0,
      },
      {
        measurement: `lookups answered under 5 s, ${pct}`,
        unit: '%',
        seed: null,
        seedNote: 'the majority',
        ours: summarize([s.under5sPercent]),
        status: 'measured',
        higherIsBetter: true,
        params: params0,
      },
      {
        measurement: `lookups that found the record, ${pct}`,
        unit: '%',
        seed: null,
        ours: summarize([s.successPercent]),
        status: 'measured',
        higherIsBetter: true,
        params: params0,
      },
      {
        measurement: `messages per lookup, ${pct}`,
        unit: 'messages',
        seed: null,
        ours: summarize(s.messages),
        status: 'measured',
        params: params0,
      },
    );
    cdfs.push({ name: pct, ms: s.foundMs });
  }
  const notes = [
    `MEASURED on ${nodes} real WhanauSIP DHT nodes (TLS 1.3 on loopback, ${res.processes} worker processes on ${res.machine.cores} cores, load ${res.machine.loadStart} -> ${res.machine.loadEnd})${ctx.quick ? "; --quick: 300 nodes instead of the seed's 3,000" : ''}.`,
    `Preferential-attachment social graph (${res.socialLinks} links), r_d = r_f = r_s = ${table}, t = ${res.params.t}, l = ${res.params.l}, w = ${res.params.w}: ${res.tableEntries} table entries per node (seed: 300). SETUP walks carry their questions over the social links: ${res.tlsLinksDialedInSetup} TLS links dialed in SETUP, ${Math.round(res.setupCpuSeconds)} CPU-seconds.`,
    `Nodes offline after SETUP stay in the others' tables; ${lookups} lookups per case between online nodes, 4 at a time per worker process. Loopback has no wide-area delay.`,
  ];
  return {
    figure: {
      id: 'whanau',
      title: `WhanauSIP: lookup latency on ${nodes} TLS nodes, with nodes offline`,
      source: 'seed 003 chapter 5 (3,000 virtual nodes on PlanetLab, 300 entries; most lookups within 5 s)',
      notes,
      rows,
      plot: 'whanau.svg',
      elapsedMs: performance.now() - t0,
    },
    charts: [{ file: 'whanau.svg', svg: cdfChart(cdfs) }],
  };
}

/** Cumulative distribution: share of lookups finished by time x. */
function cdfChart(cdfs: { name: string; ms: number[] }[]): string {
  const xs = [50, 100, 200, 300, 500, 750, 1000, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000];
  return renderChart({
    title: 'WhanauSIP lookups on real TLS nodes: share finished within a time',
    xLabel: 'time (ms), log-spaced points',
    yLabel: 'lookups finished (%)',
    kind: 'bar',
    yScale: 'linear',
    categories: xs.map(String),
    series: cdfs.map((c) => ({
      name: `ours, ${c.name}`,
      points: xs.map((x) => ({ x: String(x), y: (100 * c.ms.filter((v) => v <= x).length) / c.ms.length })),
    })),
    refLines: [{ y: 50, label: 'seed 003: the majority within 5 s' }],
    width: 980,
  });
}
