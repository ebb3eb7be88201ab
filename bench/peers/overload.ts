/**
 * Goodput against offered load, ours against Kamailio 5.6 (stateless and transaction-stateful, see
 * bench/peers/kamailio.cfg): sipp offers INVITE->302 (test/fixtures/sipp/invite-302.xml, 1,000 registered users)
 * at 0.5x, 1x, 2x and 4x of each server's own capacity, then 0.5x again to see the recovery.
 *
 * Every server runs under the same CPU quota (a cgroup, bench/lib/cpu-quota.ts; default a quarter of a core), so
 * its capacity is a fraction of a core's and sipp, outside the group on the remaining cores, can offer four times
 * that. Without the quota our registrar's capacity on one core is close to the most one sipp can offer, and the
 * overload phases never happened. Capacity is measured in the run (calibrate: a ramp on a fresh process), or given
 * with --capacity. Rates one sipp cannot reach are split over two sipp processes (sipp-load.ts); the rate sipp
 * actually offered is reported beside the target.
 *
 * Before the phases, a fresh process of each server gets 1x for --soak-seconds (default 40 s) with per-second
 * goodput and retransmissions: a retransmission storm while a fresh process warms up, or when the first
 * transactions' 32 s timers (Timer B/F/H/J, RFC 3261 17) expire, would show there.
 *
 * Goodput is calls answered 302 within the phase, per second of it; answers in the 3 s after it are counted apart
 * (a backlog served late is not goodput of the phase).
 *
 * Writes bench/results/peers-overload.json and .svg (goodput vs offered) and peers-overload-soak.svg, and prints
 * tables. The CPU quota group is removed and every kamailio and sipp process killed on exit, Ctrl-C included.
 *
 * Run: node --import tsx bench/peers/overload.ts [--cpu-quota 0.25 | --no-quota] [--cpu-period-ms 10]
 *      [--seconds 10] [--soak-seconds 40 | --no-soak] [--capacity N] [--only ours,kamailio-stateless,...]
 *      [--sipp-rate 6000] [--cpu-shares 4096] [--node-args '...'] [--quick] [--baseline DIR [--baseline-name NAME] [--shared-capacity]] [--out NAME]
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { numberOption, stringOption } from '../lib/args.ts';
import { type CpuQuota, createCpuQuota } from '../lib/cpu-quota.ts';
import { renderChart } from '../lib/svg.ts';
import { cpuModel, KINDS, ROOT, type ServerKind, sipp, startServer, usersCsv, workDir } from './kamailio-servers.ts';
import { calibrate, GRACE_S, type Phase, runPhase, type Soak, soak } from './overload-phases.ts';

const flag = (name: string): boolean => process.argv.includes(`--${name}`);
const quick = flag('quick');
const seconds = numberOption('seconds', quick ? 5 : 10);
const soakSeconds = flag('no-soak') ? 0 : numberOption('soak-seconds', quick ? 12 : 40);
const share = flag('no-quota') ? undefined : numberOption('cpu-quota', 0.25);
const periodMs = numberOption('cpu-period-ms', 10);
/** cgroup cpu.shares of the servers' group: on a shared machine it gets its quota before other work does. */
const cpuShares = numberOption('cpu-shares', 4096);
/** The most one sipp process is asked to offer; above it the load is split over two. */
const sippRate = numberOption('sipp-rate', 6000);
const fixedCapacity = numberOption('capacity', undefined);
const only = stringOption('only')?.split(',') as ServerKind[] | undefined;
const out = stringOption('out') ?? 'peers-overload';
const baseline = stringOption('baseline');
/** How the tables and the chart name the registrar from --baseline. */
const baselineName = stringOption('baseline-name') ?? 'baseline';
/** Extra node options for our registrar's process (e.g. `--cpu-prof --cpu-prof-dir=DIR`), split on spaces. */
const nodeArgs = stringOption('node-args')
  ?.split(' ')
  .filter((a) => a !== '');
const label = (k: ServerKind): string => (k === 'baseline' ? baselineName : k);
const MULTIPLES = [0.5, 1, 2, 4, 0.5];
const USERS = 1000;
const load1 = (): number => Math.round(loadavg()[0] * 100) / 100;

/** With --baseline DIR, our registrar from that checkout (e.g. before a change) right after ours. */
const SERVERS: ServerKind[] = (
  baseline ? (['ours', 'baseline', ...KINDS.slice(1)] as ServerKind[]) : [...KINDS]
).filter((k) => !only || only.includes(k));

interface ServerResult {
  server: ServerKind;
  capacity: number;
  calibration: Awaited<ReturnType<typeof calibrate>>['steps'];
  soak?: Soak;
  phases: Phase[];
}

/** With --shared-capacity the registrar from --baseline is offered multiples of ours' capacity (same hot path). */
const sharedCapacity = flag('shared-capacity');

async function measure(kind: ServerKind, csv: string, dir: string, quota: CpuQuota | undefined, oursCapacity?: number) {
  const start = () => startServer(kind, { baseline, quota, nodeArgs });
  const instancesFor = (rate: number): number => Math.min(2, Math.ceil(rate / sippRate));
  let capacity = fixedCapacity ?? (kind === 'baseline' && sharedCapacity ? oursCapacity : undefined);
  let steps: ServerResult['calibration'] = [];
  if (capacity === undefined) {
    const c = await calibrate(kind, start, csv, dir, { share: share ?? 1, instancesFor });
    capacity = c.capacity;
    steps = c.steps;
  }
  const result: ServerResult = { server: kind, capacity, calibration: steps, phases: [] };
  const s = await start();
  try {
    await registerAll(csv, s.port, dir);
    if (soakSeconds > 0) result.soak = await soak(kind, s, csv, dir, capacity, soakSeconds, instancesFor);
    for (const m of MULTIPLES) {
      const p = await runPhase(kind, s, csv, dir, capacity, m, seconds, instancesFor);
      p.load = load1();
      result.phases.push(p);
      // Let the previous phase's stragglers (Timer B, retransmissions) fade before the next.
      await new Promise((res) => setTimeout(res, 1000));
    }
  } finally {
    await s.stop();
  }
  return result;
}

async function registerAll(csv: string, port: number, dir: string): Promise<void> {
  const r = await sipp('register', csv, port, 1000, USERS / 1000, dir, { timeoutS: USERS / 1000 + 10 });
  if (r.successful < USERS) throw new Error(`only ${r.successful} of ${USERS} users registered`);
}

async function main(): Promise<void> {
  const dir = workDir();
  const csv = usersCsv(dir, USERS);
  const started = new Date().toISOString();
  const loadStart = load1();
  let quota: CpuQuota | undefined;
  try {
    quota = share === undefined ? undefined : createCpuQuota(share, Math.round(periodMs * 1000), cpuShares);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  if (quota)
    process.stderr.write(
      `CPU quota: ${quota.quotaUs} us per ${quota.periodUs} us (${quota.share} of a core) for every server\n`,
    );
  const servers: ServerResult[] = [];
  try {
    for (const kind of SERVERS)
      servers.push(await measure(kind, csv, dir, quota, servers.find((r) => r.server === 'ours')?.capacity));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    quota?.remove();
  }
  const result = {
    bench: 'peers-overload',
    date: started,
    cpu: cpuModel(),
    node: process.version,
    cpuQuota: quota
      ? { share: quota.share, periodUs: quota.periodUs, quotaUs: quota.quotaUs, shares: cpuShares }
      : null,
    baselineName: baseline ? baselineName : undefined,
    seconds,
    soakSeconds,
    graceSeconds: GRACE_S,
    sippRatePerInstance: sippRate,
    loadStart,
    loadEnd: load1(),
    servers,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/${out}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const q = quota ? `${quota.share} core each` : 'no CPU quota';
  const svgFile = join(ROOT, `bench/results/${out}.svg`);
  writeFileSync(
    svgFile,
    renderChart({
      title: `INVITE->302 goodput against offered load, each server's own capacity (${q})`,
      xLabel: "offered load, multiple of the server's capacity",
      yLabel: "goodput, % of the server's capacity",
      kind: 'line',
      yScale: 'linear',
      xScale: 'even',
      series: servers.flatMap((s) => [
        {
          name: `${label(s.server)} (${s.capacity}/s)`,
          dashed: s.server.startsWith('kamailio'),
          points: s.phases.slice(0, -1).map((p) => ({ x: p.multiple, y: p.goodputShare })),
        },
        {
          name: `${label(s.server)}: 0.5x after 4x`,
          dashed: s.server.startsWith('kamailio'),
          points: s.phases.slice(-1).map((p) => ({ x: p.multiple, y: p.goodputShare })),
        },
      ]),
      refLines: [{ y: 90, label: '90 % of capacity' }],
    }),
  );
  const soaks = servers.filter((s) => s.soak);
  const soakFile = join(ROOT, `bench/results/${out}-soak.svg`);
  if (soaks.length > 0)
    writeFileSync(
      soakFile,
      renderChart({
        title: `A fresh process at 1x its capacity for ${soakSeconds} s: calls answered and sipp retransmissions per second (${q})`,
        xLabel: 'second of the run',
        yLabel: '% of capacity per second',
        kind: 'line',
        yScale: 'linear',
        xScale: 'linear',
        series: soaks.flatMap((s) => [
          {
            name: `${label(s.server)} goodput`,
            dashed: s.server.startsWith('kamailio'),
            points: (s.soak as Soak).perSecond.map((v, i) => ({ x: i + 1, y: (100 * v) / s.capacity })),
          },
          {
            name: `${label(s.server)} retransmissions`,
            dashed: s.server.startsWith('kamailio'),
            points: (s.soak as Soak).retransPerSecond.map((v, i) => ({ x: i + 1, y: (100 * v) / s.capacity })),
          },
        ]),
      }),
    );
  printTables(result, servers);
  process.stdout.write(`\nwrote ${file}\nwrote ${svgFile}${soaks.length > 0 ? `\nwrote ${soakFile}` : ''}\n`);
}

function printTables(
  r: { cpu: string; loadStart: number; loadEnd: number; cpuQuota: { share: number; periodUs: number } | null },
  servers: ServerResult[],
): void {
  const w = process.stdout.write.bind(process.stdout);
  const q = r.cpuQuota ? `CPU quota ${r.cpuQuota.share} core (period ${r.cpuQuota.periodUs / 1000} ms)` : 'no quota';
  w(`\nINVITE->302 under overload, sipp over UDP on 127.0.0.1, ${q}, ${seconds} s per phase\n`);
  w(`CPU: ${r.cpu}; load ${r.loadStart} -> ${r.loadEnd}\n\n`);
  w(
    'server             | capacity/s | load x | target/s | offered/s | goodput/s | % capacity | 503 or failed | retrans | recovered after | load\n',
  );
  w(
    '-------------------|------------|--------|----------|-----------|-----------|------------|---------------|---------|-----------------|-----\n',
  );
  for (const s of servers)
    for (const p of s.phases)
      w(
        `${label(s.server).padEnd(18)} | ${String(s.capacity).padStart(10)} | ${String(p.multiple).padStart(6)} | ${String(p.target).padStart(8)} | ${`${p.offeredRate}${p.instances > 1 ? ` (${p.instances} sipp)` : ''}`.padStart(9)} | ${String(p.goodput).padStart(9)} | ${String(p.goodputShare).padStart(10)} | ${String(p.failed).padStart(13)} | ${String(p.retransmissions).padStart(7)} | ${(p.recoveredAfterS === undefined ? '-' : `${p.recoveredAfterS} s`).padStart(15)} | ${p.load}\n`,
      );
  const soaks = servers.filter((s) => s.soak);
  if (soaks.length === 0) return;
  w(`\nA fresh process at 1x for ${soakSeconds} s: answered calls / sipp retransmissions, per second\n`);
  for (const s of soaks) {
    const k = s.soak as Soak;
    w(
      `${label(s.server).padEnd(18)} offered ${k.offeredRate}/s of ${k.target}/s, ${k.successful} ok, ${k.failed} failed, ${k.retransmissions} retransmissions; worst second ${k.worstSecond.second}: ${k.worstSecond.successful} ok, ${k.worstSecond.retransmissions} retrans\n`,
    );
    w(`  ok/s:      ${k.perSecond.join(' ')}\n  retrans/s: ${k.retransPerSecond.join(' ')}\n`);
  }
}

await main();
