/**
 * secp2psip registrar against Kamailio 5.6 on the same workload, side by side in one run: sipp over UDP on
 * 127.0.0.1 with test/fixtures/sipp/register.xml and invite-302.xml, 1,000 users. Three servers, each a fresh
 * process per round, in alternating order (ours, Kamailio stateless, Kamailio transaction-stateful, ours, ...):
 *
 *   ours                 `secp2psip registrar` (RFC 3261 transactions, bindings in memory)
 *   kamailio-stateless   bench/peers/kamailio.cfg: usrloc in memory, one UDP worker, sl_send_reply 302
 *   kamailio-stateful    the same with t_newtran(): 100 Trying + 302, retransmissions from transaction state
 *
 * Each round registers the 1,000 users once (warm-up, not measured), then measures REGISTER and INVITE->302
 * at the offered rate: CPU time per successful transaction (user + system of every process of the server,
 * from /proc/<pid>/stat), and RSS and PSS after the INVITE phase. The machine may be shared, so the figures
 * that count are the ratios ours / Kamailio within each round, and their medians over the rounds.
 *
 * Writes bench/results/peers-kamailio.json and prints a table.
 *
 * Run: node --import tsx bench/peers/kamailio.ts [--quick] [--rounds N] [--seconds N] [--rate N]
 *      [--node-args "--cpu-prof --cpu-prof-dir=DIR"]   (profile our registrar under the same load)
 *      [--baseline DIR]   (also our registrar from another checkout, e.g. the previous release, in each round)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  cpuModel,
  cpuSeconds,
  KINDS,
  median,
  memoryMb,
  ROOT,
  type ServerKind,
  sipp,
  startServer,
  usersCsv,
  workDir,
} from './kamailio-servers.ts';
import { numberOption, stringOption } from '../lib/args.ts';

const quick = process.argv.includes('--quick');
const rounds = numberOption('rounds', quick ? 2 : 5);
const seconds = numberOption('seconds', quick ? 3 : 10);
const rate = numberOption('rate', quick ? 1500 : 2000);
const only = stringOption('only')?.split(',') as ServerKind[] | undefined;
const nodeArgs = stringOption('node-args')?.split(' ').filter(Boolean) ?? [];
const baseline = stringOption('baseline');
/** Servers of each round, in this order: with --baseline, our registrar from that checkout right after ours. */
const SERVERS: ServerKind[] = baseline ? ['ours', 'baseline', ...KINDS.slice(1)] : [...KINDS];
const USERS = 1000;
const SCENARIOS = ['register', 'invite-302'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Measured {
  round: number;
  server: ServerKind;
  scenario: Scenario;
  offered: number;
  successful: number;
  failed: number;
  retransmissions: number;
  goodput: number;
  cpuUsPerTx: number;
  /** Memory of the server after this scenario, MB. */
  rssMb: number;
  pssMb: number;
  load: number;
}

const load1 = (): number => Math.round(loadavg()[0] * 100) / 100;

async function round(n: number, csv: string, dir: string): Promise<Measured[]> {
  const out: Measured[] = [];
  for (const kind of SERVERS) {
    if (only && !only.includes(kind)) continue;
    const server = await startServer(kind, { nodeArgs, baseline });
    try {
      // Every user registered once, so that each INVITE finds a binding; not measured.
      await sipp('register', csv, server.port, Math.min(rate, 2000), USERS / Math.min(rate, 2000), dir);
      for (const scenario of SCENARIOS) {
        const pids = server.pids();
        const c0 = cpuSeconds(pids);
        const r = await sipp(scenario, csv, server.port, rate, seconds, dir);
        const c1 = cpuSeconds(server.pids());
        const mem = memoryMb(server.pids());
        out.push({
          round: n,
          server: kind,
          scenario,
          offered: rate,
          successful: r.successful,
          failed: r.failed,
          retransmissions: r.retransmissions,
          goodput: r.goodput,
          cpuUsPerTx: r.successful > 0 ? Math.round(((c1 - c0) / r.successful) * 1e7) / 10 : Number.NaN,
          rssMb: mem.rss,
          pssMb: mem.pss,
          load: load1(),
        });
        const m = out[out.length - 1];
        process.stderr.write(
          `round ${n} ${kind} ${scenario}: ${m.successful} ok, ${m.failed} failed, ${m.cpuUsPerTx} us/tx, ${m.pssMb} MB PSS, load ${m.load}\n`,
        );
      }
    } finally {
      await server.stop();
    }
  }
  return out;
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main(): Promise<void> {
  const dir = workDir();
  const csv = usersCsv(dir, USERS);
  const started = new Date().toISOString();
  const loadStart = load1();
  const all: Measured[] = [];
  try {
    for (let i = 1; i <= rounds; i++) all.push(...(await round(i, csv, dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pick = (r: number, s: ServerKind, sc: Scenario) =>
    all.find((m) => m.round === r && m.server === s && m.scenario === sc);
  const summary = SCENARIOS.map((scenario) => {
    const per = (server: ServerKind) => all.filter((m) => m.server === server && m.scenario === scenario);
    const ratios = (peer: ServerKind, field: 'cpuUsPerTx' | 'pssMb') =>
      Array.from({ length: rounds }, (_, i) => {
        const a = pick(i + 1, 'ours', scenario);
        const b = pick(i + 1, peer, scenario);
        return a && b ? Math.round((a[field] / b[field]) * 100) / 100 : Number.NaN;
      });
    const cpuVsBaseline = baseline ? ratios('baseline', 'cpuUsPerTx') : [];
    const cpuVsStateless = ratios('kamailio-stateless', 'cpuUsPerTx');
    const cpuVsStateful = ratios('kamailio-stateful', 'cpuUsPerTx');
    const pssVsStateless = ratios('kamailio-stateless', 'pssMb');
    const pssVsStateful = ratios('kamailio-stateful', 'pssMb');
    return {
      scenario,
      medianCpuUsPerTx: Object.fromEntries(SERVERS.map((k) => [k, median(per(k).map((m) => m.cpuUsPerTx))])),
      medianPssMb: Object.fromEntries(SERVERS.map((k) => [k, median(per(k).map((m) => m.pssMb))])),
      medianRssMb: Object.fromEntries(SERVERS.map((k) => [k, median(per(k).map((m) => m.rssMb))])),
      failed: Object.fromEntries(SERVERS.map((k) => [k, per(k).reduce((s, m) => s + m.failed, 0)])),
      cpuVsBaseline,
      medianCpuVsBaseline: median(cpuVsBaseline),
      cpuVsStateless,
      cpuVsStateful,
      pssVsStateless,
      pssVsStateful,
      medianCpuVsStateless: median(cpuVsStateless),
      medianCpuVsStateful: median(cpuVsStateful),
      medianPssVsStateless: median(pssVsStateless),
      medianPssVsStateful: median(pssVsStateful),
    };
  });
  const result = {
    bench: 'peers-kamailio',
    date: started,
    cpu: cpuModel(),
    node: process.version,
    users: USERS,
    offeredPerSecond: rate,
    seconds,
    rounds,
    quick,
    baseline: baseline ?? null,
    loadStart,
    loadEnd: load1(),
    measurements: all,
    summary,
  };
  const file = join(ROOT, 'bench/results/peers-kamailio.json');
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

  const w = process.stdout.write.bind(process.stdout);
  w(`\nsecp2psip registrar vs Kamailio 5.6, sipp over UDP on 127.0.0.1, ${USERS} users, ${rate}/s offered, `);
  w(`${seconds} s per scenario, ${rounds} rounds\nCPU: ${result.cpu}; load ${loadStart} -> ${result.loadEnd}\n\n`);
  w('round | scenario   | server             | ok     | failed | retrans | us CPU/tx | RSS MB | PSS MB | load\n');
  w('------|------------|--------------------|--------|--------|---------|-----------|--------|--------|-----\n');
  for (const m of all)
    w(
      `${String(m.round).padStart(5)} | ${m.scenario.padEnd(10)} | ${m.server.padEnd(18)} | ${String(m.successful).padStart(6)} | ${String(m.failed).padStart(6)} | ${String(m.retransmissions).padStart(7)} | ${fmt(m.cpuUsPerTx, 1).padStart(9)} | ${fmt(m.rssMb, 1).padStart(6)} | ${fmt(m.pssMb, 1).padStart(6)} | ${m.load}\n`,
    );
  w('\nratios ours / Kamailio per round (median):\n');
  for (const s of summary) {
    w(
      `${s.scenario.padEnd(10)} CPU/tx vs stateless ${s.cpuVsStateless.map((x) => fmt(x)).join(' ')} (median ${fmt(s.medianCpuVsStateless)}); vs stateful ${s.cpuVsStateful.map((x) => fmt(x)).join(' ')} (median ${fmt(s.medianCpuVsStateful)})\n`,
    );
    w(
      `${''.padEnd(10)} PSS vs stateless median ${fmt(s.medianPssVsStateless)}, vs stateful ${fmt(s.medianPssVsStateful)}; median us CPU/tx ${SERVERS.map((k) => `${k} ${fmt(s.medianCpuUsPerTx[k], 1)}`).join(', ')}\n`,
    );
    if (baseline)
      w(
        `${''.padEnd(10)} CPU/tx ours / baseline ${s.cpuVsBaseline.map((x) => fmt(x)).join(' ')} (median ${fmt(s.medianCpuVsBaseline)})\n`,
      );
  }
  w(`\nwrote ${file}\n`);
}

await main();
