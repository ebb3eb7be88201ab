/**
 * Goodput against offered load, ours against Kamailio 5.6: sipp offers INVITE->302 (test/fixtures/sipp/
 * invite-302.xml, 1,000 registered users) at 0.5x, 1x, 2x and 4x our capacity, then 0.5x again to see the
 * recovery. Capacity is the highest rate our registrar serves cleanly on this machine in this run (a ramp, see
 * calibrate), or given with --capacity. Kamailio (stateless and transaction-stateful, see
 * bench/peers/kamailio.cfg) gets the same absolute rates.
 *
 * Goodput is successful calls per second of the phase (calls answered within a grace period after it ends);
 * what sipp managed to offer is reported beside it (on a shared machine it may fall short of the target at 4x).
 * A server whose overload is metastable shows low goodput at 2x and 4x, and in the recovery phase too.
 *
 * Writes bench/results/peers-overload.json and bench/results/peers-overload.svg and prints a table.
 *
 * Run: node --import tsx bench/peers/overload.ts [--quick] [--seconds N] [--capacity N] [--only ours,...]
 *      [--baseline DIR]   (also our registrar from another checkout, e.g. one without admission control)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { renderChart } from '../lib/svg.ts';
import {
  cpuModel,
  cpuSeconds,
  KINDS,
  ROOT,
  type ServerKind,
  sipp,
  startServer,
  usersCsv,
  workDir,
} from './kamailio-servers.ts';
import { numberOption, stringOption } from '../lib/args.ts';

const quick = process.argv.includes('--quick');
const seconds = numberOption('seconds', quick ? 4 : 10) as number;
const only = stringOption('only')?.split(',') as ServerKind[] | undefined;
const MULTIPLES = [0.5, 1, 2, 4, 0.5];
const USERS = 1000;
/** Calls answered this long after the end of a phase still count for it; later ones are cut off. */
const GRACE_S = 3;
const load1 = (): number => Math.round(loadavg()[0] * 100) / 100;

interface Phase {
  server: ServerKind;
  multiple: number;
  target: number;
  offered: number;
  successful: number;
  failed: number;
  retransmissions: number;
  goodput: number;
  /** Goodput as a share of our capacity. */
  goodputShare: number;
  perSecond: number[];
  load: number;
}

const baselineArg = process.argv.indexOf('--baseline');
const baseline = baselineArg < 0 ? undefined : process.argv[baselineArg + 1];
/** With --baseline DIR, our registrar from that checkout (e.g. before admission control) right after ours. */
const SERVERS: ServerKind[] = baseline ? ['ours', 'baseline', ...KINDS.slice(1)] : [...KINDS];

async function withServer<T>(kind: ServerKind, fn: (port: number, pids: () => number[]) => Promise<T>): Promise<T> {
  const s = await startServer(kind, { baseline });
  try {
    return await fn(s.port, s.pids);
  } finally {
    await s.stop();
  }
}

/**
 * Our capacity on this machine now: the highest rate of a ramp (1,000/s steps, 3 s each) that a fresh registrar
 * serves cleanly (every call successful, retransmissions for at most 0.5 % of them), with its CPU per INVITE for reference. A figure from
 * CPU time alone would overstate it on a shared machine, where sipp and other work take the other core.
 */
async function calibrate(csv: string, dir: string): Promise<number> {
  return withServer('ours', async (port, pids) => {
    await sipp('register', csv, port, 1000, 1, dir);
    let clean = 500;
    for (let rate = 1000; rate <= 12_000; rate += 1000) {
      const c0 = cpuSeconds(pids());
      const r = await sipp('invite-302', csv, port, rate, 3, dir, { timeoutS: 3 + GRACE_S });
      const us = ((cpuSeconds(pids()) - c0) / Math.max(1, r.successful)) * 1e6;
      // Clean: every call answered, retransmissions (a late answer) for at most 0.5 % of them.
      const ok = r.failed === 0 && r.retransmissions <= r.offered * 0.005 && r.successful >= r.offered;
      process.stderr.write(
        `calibration ${rate}/s: ${r.successful}/${r.offered} ok, ${r.retransmissions} retransmissions, ${us.toFixed(1)} us CPU/INVITE\n`,
      );
      if (!ok) break;
      clean = rate;
      await new Promise((res) => setTimeout(res, 500));
    }
    process.stderr.write(`capacity: ${clean}/s\n`);
    return clean;
  });
}

async function main(): Promise<void> {
  const dir = workDir();
  const csv = usersCsv(dir, USERS);
  const started = new Date().toISOString();
  const loadStart = load1();
  const phases: Phase[] = [];
  let capacity = numberOption('capacity', undefined);
  try {
    capacity ??= await calibrate(csv, dir);
    for (const kind of SERVERS) {
      if (only && !only.includes(kind)) continue;
      await withServer(kind, async (port) => {
        await sipp('register', csv, port, 1000, USERS / 1000, dir);
        for (const m of MULTIPLES) {
          const target = Math.round((capacity as number) * m);
          const r = await sipp('invite-302', csv, port, target, seconds, dir, { timeoutS: seconds + GRACE_S });
          const goodput = Math.round(r.successful / seconds);
          phases.push({
            server: kind,
            multiple: m,
            target,
            offered: Math.round(r.offered / seconds),
            successful: r.successful,
            failed: r.failed,
            retransmissions: r.retransmissions,
            goodput,
            goodputShare: Math.round((goodput / (capacity as number)) * 1000) / 10,
            perSecond: r.perSecond,
            load: load1(),
          });
          const p = phases[phases.length - 1];
          process.stderr.write(
            `${kind} ${m}x (${target}/s, offered ${p.offered}/s): goodput ${goodput}/s = ${p.goodputShare} %, ${p.failed} failed, per second ${p.perSecond.join(' ')}\n`,
          );
          // Let the previous phase's stragglers (Timer B, retransmissions) fade before the next.
          await new Promise((res) => setTimeout(res, 1000));
        }
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    bench: 'peers-overload',
    date: started,
    cpu: cpuModel(),
    node: process.version,
    capacity,
    seconds,
    graceSeconds: GRACE_S,
    loadStart,
    loadEnd: load1(),
    phases,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results/peers-overload.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const servers = [...new Set(phases.map((p) => p.server))];
  const svg = renderChart({
    title: `INVITE->302 goodput against offered load (capacity ${capacity}/s: ours, clean, this run)`,
    xLabel: 'offered load, multiple of capacity',
    yLabel: 'goodput, % of capacity',
    kind: 'line',
    yScale: 'linear',
    xScale: 'even',
    series: servers.flatMap((s) => {
      const own = phases.filter((p) => p.server === s);
      return [
        {
          name: s,
          dashed: s.startsWith('kamailio'),
          points: own.slice(0, -1).map((p) => ({ x: p.multiple, y: p.goodputShare })),
        },
        {
          name: `${s}: 0.5x after 4x`,
          dashed: s.startsWith('kamailio'),
          points: own.slice(-1).map((p) => ({ x: p.multiple, y: p.goodputShare })),
        },
      ];
    }),
    refLines: [{ y: 90, label: '90 % of capacity' }],
  });
  const svgFile = join(ROOT, 'bench/results/peers-overload.svg');
  writeFileSync(svgFile, svg);

  const w = process.stdout.write.bind(process.stdout);
  w(`\nINVITE->302 under overload, sipp over UDP on 127.0.0.1, capacity ${capacity}/s (ours, clean), `);
  w(`${seconds} s per phase\nCPU: ${result.cpu}; load ${loadStart} -> ${result.loadEnd}\n\n`);
  w('server             | load x | target/s | offered/s | goodput/s | % capacity | failed | retrans | load\n');
  w('-------------------|--------|----------|-----------|-----------|------------|--------|---------|-----\n');
  for (const p of phases)
    w(
      `${p.server.padEnd(18)} | ${String(p.multiple).padStart(6)} | ${String(p.target).padStart(8)} | ${String(p.offered).padStart(9)} | ${String(p.goodput).padStart(9)} | ${String(p.goodputShare).padStart(10)} | ${String(p.failed).padStart(6)} | ${String(p.retransmissions).padStart(7)} | ${p.load}\n`,
    );
  w(`\nwrote ${file}\nwrote ${svgFile}\n`);
}

await main();
