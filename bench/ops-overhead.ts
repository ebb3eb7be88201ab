/**
 * What the operator surface costs: call setup throughput (phone INVITE to
 * verified 302, CONCURRENCY calls in flight) of one overlay on loopback (a
 * bootstrap and ADAPTERS adapters in this process), plain (A) and with
 * metrics and the dashboard served (B). In B every daemon reports into a
 * prom-client registry, and a scraper reads /metrics every second while a
 * dashboard client stays subscribed to /events (both in this process, so
 * their own CPU counts against B too). The same overlay serves both, so
 * ring shape and record placement are alike; in A its metrics port is
 * switched off (nothing is kept) and nobody polls. Rounds alternate
 * A B, B A, A B ... (each pair listed A first) so that the machine's load
 * and what one round leaves to the next (garbage, caches) fall on both alike.
 *
 *   node --import tsx bench/ops-overhead.ts [--quick]
 *
 * Writes bench/results/ops-overhead.json and prints a table.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalOverlay } from '../src/harness/local-overlay.ts';
import type { CallObserver } from '../src/secp2psip/call-record.ts';
import type { Metrics } from '../src/util/metrics.ts';
import { callObserver } from '../src/ops/call-metrics.ts';
import { type RunningOps, startOps } from '../src/ops/ops-options.ts';
import { overlayTarget } from '../src/ops/overlay-target.ts';
import { percentile } from '../src/util/stats.ts';
import { currentLoad, machineInfo } from './lib/machine.ts';

const quick = process.argv.includes('--quick');
const ADAPTERS = 4;
const CONCURRENCY = 8;
const CALLS = quick ? 100 : 1000;
const ROUNDS = quick ? 2 : 8;
const SCRAPE_MS = 1000;

interface Round {
  variant: 'A' | 'B';
  calls: number;
  failed: number;
  callsPerS: number;
  /** CPU time of this process per call (user + system): what a loaded machine's wall clock hides. */
  cpuMsPerCall: number;
  scrapes: number;
  events: number;
}

/** A Prometheus scraper (every SCRAPE_MS) and a dashboard client on /events, until stopped. */
function observers(url: string): { stop(): Promise<{ scrapes: number; events: number }> } {
  let scrapes = 0;
  let events = 0;
  const ac = new AbortController();
  const scraping = (async () => {
    while (!ac.signal.aborted) {
      const t0 = performance.now();
      try {
        const r = await fetch(`${url}metrics`, { signal: ac.signal });
        await r.text();
        scrapes++;
      } catch {
        if (ac.signal.aborted) break;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, SCRAPE_MS - (performance.now() - t0))));
    }
  })();
  const watching = (async () => {
    try {
      const r = await fetch(`${url}events`, { signal: ac.signal });
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        events += (
          Buffer.from(value)
            .toString()
            .match(/^data: /gm) ?? []
        ).length;
      }
    } catch {
      // aborted
    }
  })();
  return {
    async stop() {
      ac.abort();
      await Promise.all([scraping, watching]);
      return { scrapes, events };
    },
  };
}

async function round(variant: 'A' | 'B', overlay: LocalOverlay, ops?: RunningOps): Promise<Round> {
  const watch = variant === 'B' && ops ? observers(ops.servers[0].url) : undefined;
  // The dashboard client's first state and the first scrape land before the timed calls start.
  if (watch) await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const samples = await overlay.placeCalls(CALLS, CONCURRENCY);
  const cpu = process.cpuUsage(cpu0);
  const s = (performance.now() - t0) / 1000;
  const seen = (await watch?.stop()) ?? { scrapes: 0, events: 0 };
  const failed = samples.filter((x) => x.status !== 302).length;
  const cpuMsPerCall = (cpu.user + cpu.system) / 1000 / samples.length;
  return { variant, calls: samples.length, failed, callsPerS: samples.length / s, cpuMsPerCall, ...seen };
}

/**
 * The same cost measured directly, which the load of a shared machine does not blur: metric updates per call
 * (read back from B's registry) times the CPU of one update, and the CPU of one scrape and of one dashboard
 * push (each happens once a second). At saturation a core loses the per-second share to them, and each call
 * pays its updates.
 */
async function directCosts(ops: RunningOps, cpuMsPerCall: number) {
  const m = ops.metrics as NonNullable<RunningOps['metrics']>;
  const text = await m.exposition();
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const updates =
    sum('sip_requests_total') +
    sum('sip_responses_total') +
    sum('chord_rpc_seconds_count') +
    sum('chord_lookup_hops_count') +
    sum('secp2psip_call_setup_seconds_count');
  const calls = sum('secp2psip_call_setup_seconds_count');
  const N = 200_000;
  let c0 = process.cpuUsage();
  for (let i = 0; i < N; i++)
    m.observe('chord_rpc_seconds', 0.001, { method: 'chord.fetch', result: i % 50 === 0 ? 'failed' : 'ok' });
  let c = process.cpuUsage(c0);
  const nsPerMetricOp = ((c.user + c.system) * 1000) / N;
  const url = ops.servers[0].url;
  const S = 50;
  c0 = process.cpuUsage();
  for (let i = 0; i < S; i++) await (await fetch(`${url}metrics`)).text();
  c = process.cpuUsage(c0);
  const cpuMsPerScrape = (c.user + c.system) / 1000 / S;
  c0 = process.cpuUsage();
  for (let i = 0; i < S; i++) JSON.stringify(await ops.servers[0].state());
  c = process.cpuUsage(c0);
  const cpuMsPerPush = (c.user + c.system) / 1000 / S;
  const metricOpsPerCall = updates / Math.max(1, calls);
  const perCallPercent = (100 * metricOpsPerCall * nsPerMetricOp) / 1e6 / cpuMsPerCall;
  const perSecondPercent = ((cpuMsPerScrape + cpuMsPerPush) / 1000) * 100;
  const estimatedRatio = (1 - perSecondPercent / 100) / (1 + perCallPercent / 100);
  return {
    metricOpsPerCall,
    nsPerMetricOp,
    perCallPercent,
    cpuMsPerScrape,
    cpuMsPerPush,
    perSecondPercent,
    estimatedRatio,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-ops-bench-'));
  const ops = await startOps({ http: { host: '127.0.0.1', port: 0 } }, 'demo');
  const prom = ops.metrics as Metrics;
  const observe = callObserver(prom) as CallObserver;
  const sw = { on: false };
  const metrics: Metrics = {
    count: (name, labels, by) => sw.on && prom.count(name, labels, by),
    observe: (name, value, labels) => sw.on && prom.observe(name, value, labels),
  };
  const overlay = await LocalOverlay.start({
    adapters: ADAPTERS,
    dataDir: join(dir, 'overlay'),
    metrics,
    onCall: (_i, c) => sw.on && observe(c),
  });
  ops.attach(overlayTarget(overlay), undefined);
  const reg = await overlay.registerPhones();
  if (reg.failed > 0) throw new Error(`${reg.failed} phones not registered`);
  // Warm-up: every caller has verified its callee once (the verified-user cache).
  await overlay.placeCalls(ADAPTERS * 2, 1);
  const loadBefore = currentLoad();
  const rounds: Round[] = [];
  const plain = () => round('A', overlay);
  const served = async () => {
    sw.on = true;
    const r = await round('B', overlay, ops);
    sw.on = false;
    return r;
  };
  // A B B A A B ...: what a round leaves behind (garbage to collect, cooled caches) falls on both variants alike.
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2 === 0) rounds.push(await plain(), await served());
    else {
      const b = await served();
      rounds.push(await plain(), b);
    }
  }
  const mean = (v: 'A' | 'B', of: (r: Round) => number) => {
    const xs = rounds.filter((r) => r.variant === v).map(of);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const a = mean('A', (r) => r.callsPerS);
  const b = mean('B', (r) => r.callsPerS);
  const cpuA = mean('A', (r) => r.cpuMsPerCall);
  const cpuB = mean('B', (r) => r.cpuMsPerCall);
  // Each B against the A just before it: the machine's load drifts less within a pair than across the run.
  const pairs: number[] = [];
  for (let i = 0; i + 1 < rounds.length; i += 2) pairs.push(rounds[i + 1].callsPerS / rounds[i].callsPerS);
  const medianPair = percentile(pairs, 50);
  const result = {
    date: new Date().toISOString(),
    quick,
    machine: machineInfo(),
    load: { before: loadBefore, after: currentLoad() },
    adapters: ADAPTERS,
    concurrency: CONCURRENCY,
    callsPerRound: CALLS,
    rounds,
    callsPerSPlain: Number(a.toFixed(1)),
    callsPerSServed: Number(b.toFixed(1)),
    ratio: Number((b / a).toFixed(4)),
    overheadPercent: Number((100 * (1 - b / a)).toFixed(2)),
    pairRatios: pairs.map((x) => Number(x.toFixed(4))),
    cpuMsPerCallPlain: Number(cpuA.toFixed(3)),
    cpuMsPerCallServed: Number(cpuB.toFixed(3)),
    /** Throughput a CPU-bound adapter keeps with metrics and the dashboard served (CPU per call, A over B). */
    cpuRatio: Number((cpuA / cpuB).toFixed(4)),
    medianPairRatio: Number(medianPair.toFixed(4)),
  };
  const direct = await directCosts(ops, cpuB);
  Object.assign(result, { direct });
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'ops-overhead.json'), `${JSON.stringify(result, null, 1)}\n`);
  const out = process.stdout;
  out.write('| round | variant | calls | failed | calls/s | CPU ms/call | scrapes | dashboard events |\n');
  out.write('| --- | --- | --- | --- | --- | --- | --- | --- |\n');
  rounds.forEach((r, i) => {
    const name = r.variant === 'A' ? 'A plain' : 'B metrics + dashboard';
    out.write(
      `| ${Math.floor(i / 2) + 1} | ${name} | ${r.calls} | ${r.failed} | ${r.callsPerS.toFixed(1)} | ${r.cpuMsPerCall.toFixed(2)} | ${r.scrapes} | ${r.events} |\n`,
    );
  });
  out.write(
    `\nmean calls/s: plain ${a.toFixed(1)}, served ${b.toFixed(1)}; ratio ${result.ratio} (overhead ${result.overheadPercent} %); ` +
      `median ratio of the pairs ${result.medianPairRatio}\n` +
      `CPU per call: plain ${cpuA.toFixed(2)} ms, served ${cpuB.toFixed(2)} ms; throughput ratio on CPU ${result.cpuRatio}; load ${loadBefore.toFixed(2)} -> ${result.load.after.toFixed(2)}\n`,
  );
  out.write(
    `\ndirect cost: ${direct.metricOpsPerCall.toFixed(1)} metric updates per call at ${direct.nsPerMetricOp.toFixed(0)} ns ` +
      `(${direct.perCallPercent.toFixed(2)} % of a call's CPU); a scrape ${direct.cpuMsPerScrape.toFixed(2)} ms and a dashboard ` +
      `push ${direct.cpuMsPerPush.toFixed(2)} ms of CPU each second (${direct.perSecondPercent.toFixed(2)} % of a core); ` +
      `estimated throughput ratio at saturation ${direct.estimatedRatio.toFixed(4)}\n`,
  );
  await ops.close();
  await overlay.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
