/**
 * Two checkouts of this project side by side in one process: each one's
 * overlay (50 adapters and a bootstrap, k=6 n=10) on the same event loop,
 * so both see the same machine load at the same moments. Warm calls with no
 * reuse of verified users are placed in alternating batches (A B, then B A,
 * ...) per mode, then sipp is run through one adapter pair of each,
 * alternately, every call verified through the ring. Prints per-round
 * figures and the median of the per-round ratios B/A; writes
 * bench/results/secp2psip-ab.json.
 *
 * Run: node --import tsx bench/secp2psip-ab.ts --a <checkout> [--b <checkout>] [--rounds 8] [--batch 80]
 *   [--sipp-rounds 4] [--sipp-rate 2000] [--sipp-seconds 4]
 * (`--b` defaults to this checkout. Both overlays' ring upkeep runs on the one loop, so CPU per call includes
 * both.)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile } from '../src/util/stats.ts';
import { invite302Scenario, runSippWithStats } from './lib/sipp.ts';

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs: number[]) => percentile(xs, 50);

// The two checkouts' harnesses, each loaded from its own tree (separate module instances).
interface Overlay {
  adapters: { node: { mode: string; verified: { cacheMs: number } } }[];
  users: { name: string; adapter: unknown }[];
  registerPhones(): Promise<unknown>;
  placeCalls(n: number): Promise<{ status: number; ms: number }[]>;
  close(): Promise<void>;
}
interface Harness {
  LocalOverlay: { start(o: { adapters: number; dataDir: string; k: number; n: number }): Promise<Overlay> };
  sipPeer(a: unknown): { address: string; port: number };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, dflt: number) => {
    const v = Number(opt(name) ?? dflt);
    if (!Number.isInteger(v) || v < 0) {
      process.stderr.write(`bench/secp2psip-ab: --${name} must be a whole number\n`);
      process.exit(2);
    }
    return v;
  };
  const a = opt('a');
  if (!a) {
    process.stderr.write('bench/secp2psip-ab: --a <checkout> is required (the tree to compare this one with)\n');
    process.exit(2);
  }
  const trees = { A: resolve(a), B: resolve(opt('b') ?? join(here, '..')) };
  const rounds = num('rounds', 8);
  const batch = Math.max(1, num('batch', 80));
  const sippRounds = num('sipp-rounds', 4);
  const rate = Math.max(1, num('sipp-rate', 2000));
  const seconds = Math.max(1, num('sipp-seconds', 4));
  const dir = mkdtempSync(join(tmpdir(), 'secp2psip-ab-'));
  const ov: Record<'A' | 'B', Overlay> = {} as never;
  const mods: Record<'A' | 'B', Harness> = {} as never;
  const sides = ['A', 'B'] as const;
  const load0 = loadavg()[0];
  try {
    for (const s of sides) {
      mods[s] = (await import(join(trees[s], 'src/harness/local-overlay.ts'))) as Harness;
      ov[s] = await mods[s].LocalOverlay.start({ adapters: 50, dataDir: join(dir, s), k: 6, n: 10 });
      await ov[s].registerPhones();
      process.stderr.write(`${s} (${trees[s]}): overlay up, phones registered\n`);
    }
    const set = (s: 'A' | 'B', mode: string) => {
      for (const ad of ov[s].adapters) {
        ad.node.mode = mode;
        ad.node.verified.cacheMs = 0;
      }
    };
    type Side = { p50: number; cpuMs: number; failed: number };
    const calls: { mode: string; round: number; load: number; A: Side; B: Side }[] = [];
    for (const mode of ['signed', 'protected']) {
      for (const s of sides) {
        set(s, mode);
        await ov[s].placeCalls(60);
      }
      for (let r = 0; r < rounds; r++) {
        const row = { mode, round: r, load: loadavg()[0] } as (typeof calls)[number];
        for (const s of r % 2 ? (['B', 'A'] as const) : sides) {
          const c0 = process.cpuUsage();
          const samples = await ov[s].placeCalls(batch);
          const c = process.cpuUsage(c0);
          const ok = samples.filter((x) => x.status === 302).map((x) => x.ms);
          row[s] = { p50: percentile(ok, 50), cpuMs: (c.user + c.system) / 1000 / batch, failed: batch - ok.length };
        }
        calls.push(row);
        process.stderr.write(
          `${mode} round ${r}: p50 A ${row.A.p50.toFixed(2)} B ${row.B.p50.toFixed(2)} ms, load ${row.load}\n`,
        );
      }
    }
    const sipp: { round: number; load: number; A: { perSecond: number; failed: number }; B: (typeof sipp)[0]['A'] }[] =
      [];
    const haveSipp = spawnSync('sh', ['-c', 'command -v sipp'], { stdio: 'ignore' }).status === 0;
    for (let r = 0; haveSipp && r < sippRounds; r++) {
      const row = { round: r, load: loadavg()[0] } as (typeof sipp)[number];
      for (const s of r % 2 ? (['B', 'A'] as const) : sides) {
        set(s, 'signed');
        const [caller, callee] = ov[s].users;
        const peer = mods[s].sipPeer(caller.adapter);
        const sd = mkdtempSync(join(dir, 'sipp-'));
        writeFileSync(join(sd, 'invite-302.xml'), invite302Scenario(caller.name));
        const stf = join(sd, 'sipp.csv');
        const args = ['-sf', join(sd, 'invite-302.xml'), '-s', callee.name, '-r', String(rate), '-rp', '1000'];
        args.push('-m', String(rate * seconds), '-l', String(Math.max(1000, rate)), '-i', peer.address, '-p', '0');
        args.push('-t', 'u1', '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1', '-timeout', `${seconds * 4 + 30}s`);
        args.push(`${peer.address}:${peer.port}`);
        const run = await runSippWithStats(args, stf, sd);
        row[s] = {
          perSecond: Math.round(run.col('SuccessfulCall(C)') / run.seconds),
          failed: run.col('FailedCall(C)'),
        };
      }
      sipp.push(row);
      process.stderr.write(`sipp round ${r}: A ${row.A.perSecond}/s B ${row.B.perSecond}/s, load ${row.load}\n`);
    }
    const ratio = <T>(rows: T[], f: (x: T, s: 'A' | 'B') => number) =>
      rows.length ? median(rows.map((x) => f(x, 'B') / f(x, 'A'))) : Number.NaN;
    const of = (mode: string) => calls.filter((c) => c.mode === mode);
    const result = {
      bench: 'secp2psip-ab',
      date: new Date().toISOString(),
      trees,
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model.trim() ?? 'unknown', load0, load1: loadavg()[0] },
      calls,
      sipp,
      medianRatios: {
        signedP50: ratio(of('signed'), (x, s) => x[s].p50),
        protectedP50: ratio(of('protected'), (x, s) => x[s].p50),
        signedCpu: ratio(of('signed'), (x, s) => x[s].cpuMs),
        protectedCpu: ratio(of('protected'), (x, s) => x[s].cpuMs),
        sippPerSecond: ratio(sipp, (x, s) => x[s].perSecond),
      },
    };
    const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
    const lines = [
      `A ${trees.A}`,
      `B ${trees.B}`,
      `${cpus().length} cores (${result.machine.cpu}), load average ${load0} -> ${result.machine.load1}`,
      '',
      `signed p50 ms   A: ${list(of('signed').map((c) => c.A.p50))}`,
      `                B: ${list(of('signed').map((c) => c.B.p50))}   median B/A ${result.medianRatios.signedP50.toFixed(2)}`,
      `protected p50   A: ${list(of('protected').map((c) => c.A.p50))}`,
      `                B: ${list(of('protected').map((c) => c.B.p50))}   median B/A ${result.medianRatios.protectedP50.toFixed(2)}`,
      `CPU per call (process), median B/A: signed ${result.medianRatios.signedCpu.toFixed(2)}, protected ${result.medianRatios.protectedCpu.toFixed(2)}`,
      haveSipp
        ? `sipp set-ups/s A: ${sipp.map((x) => x.A.perSecond).join(', ')}  B: ${sipp.map((x) => x.B.perSecond).join(', ')}  median B/A ${result.medianRatios.sippPerSecond.toFixed(2)}`
        : 'sipp is not installed: no throughput figure',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const out = join(here, 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'secp2psip-ab.json'), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write('\nwrote bench/results/secp2psip-ab.json\n');
  } finally {
    for (const s of sides) await ov[s]?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench/secp2psip-ab: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
