/**
 * `secp2psip registrar` under sipp load over UDP on loopback: REGISTER/s and INVITE->302/s (the sipp UAC
 * expects the 302 and ACKs it), with failed-transaction counts. The registrar is the real CLI in its own
 * process; sipp is the load generator (Debian package sip-tester). Prints a table and writes
 * bench/results/sip-registrar.json.
 *
 * Each scenario is offered 20 % more than its target rate (6,000 REGISTER/s, 3,600 INVITE/s) unless --rate is
 * given, so that meeting the target shows in the achieved rate; the figure is successful transactions per
 * second of wall time, so a server that falls behind (and draws sipp's retransmissions) scores below the
 * offered rate.
 *
 * The machine may be shared, so the registrar's own CPU time per successful transaction is measured too
 * (from /proc: user + system time of the registrar process over the scenario, including GC and socket
 * calls); 1e6 / (CPU us per transaction) is what one core could serve. Resident memory at the end of each
 * scenario shows whether completed transactions stay bounded.
 *
 * Run: node --import tsx bench/sip-registrar.ts [--quick] [--seconds N] [--rate N]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSippWithStats } from './lib/sipp.ts';
import { numberOption } from './lib/args.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIX = join(ROOT, 'test/fixtures/sipp');

const quick = process.argv.includes('--quick');
const seconds = numberOption('seconds', quick ? 4 : 20);
const forcedRate = process.argv.includes('--rate') ? numberOption('rate', 1) : undefined;
const TARGETS: Record<string, number> = { register: 5000, 'invite-302': 3000 };
const USERS = 1000;

interface Result {
  scenario: string;
  offeredRate: number;
  seconds: number;
  successful: number;
  failed: number;
  retransmissions: number;
  perSecond: number;
  /** Registrar CPU time (user + system) per successful transaction, microseconds. */
  cpuUsPerTx?: number;
  /** Registrar resident memory at the end of the scenario, MB. */
  rssMb?: number;
}

/** Linux clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on every common build). */
const USER_HZ = 100;

/** CPU seconds (user + system) used so far by a process, from /proc; undefined elsewhere. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5) (utime, stime) are 12 and 13 after the command name.
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in MB, from /proc; undefined elsewhere. */
function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function startRegistrar(): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin/secp2psip.mjs'), 'registrar', '--listen', '127.0.0.1:0', '--log-level', 'info'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  return new Promise((resolve, reject) => {
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"port":(\d+)/.exec(err);
      if (m)
        resolve({
          port: Number(m[1]),
          pid: proc.pid ?? 0,
          stop: () =>
            new Promise((res) => {
              proc.once('exit', () => res());
              proc.kill('SIGTERM');
            }),
        });
    });
    proc.once('exit', (code) => reject(new Error(`registrar exited (${code}): ${err}`)));
  });
}

async function runSipp(scenario: string, csv: string, port: number, rate: number, dir: string): Promise<Result> {
  const calls = Math.round(rate * seconds);
  const stf = join(dir, `${scenario}.csv`);
  const args = [
    '-sf',
    join(FIX, scenario),
    '-inf',
    csv,
    '-r',
    String(rate),
    '-rp',
    '1000',
    '-m',
    String(calls),
    '-l',
    String(Math.max(1000, rate)),
    '-i',
    '127.0.0.1',
    '-p',
    '0',
    '-t',
    'u1',
    '-nostdin',
    '-trace_stat',
    '-stf',
    stf,
    '-fd',
    '1',
    '-timeout',
    `${seconds * 4 + 30}s`,
    `127.0.0.1:${port}`,
  ];
  const run = await runSippWithStats(args, stf, dir);
  const successful = run.col('SuccessfulCall(C)');
  if (!successful) throw new Error(`sipp made no successful call: ${run.stderr.slice(-2000)}`);
  return {
    scenario: scenario.replace(/\.xml$/, ''),
    offeredRate: rate,
    seconds: Number(run.seconds.toFixed(2)),
    successful,
    failed: run.col('FailedCall(C)'),
    retransmissions: run.col('Retransmissions(C)'),
    perSecond: Math.round(successful / run.seconds),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sip-'));
  const csv = join(dir, 'users.csv');
  writeFileSync(csv, `SEQUENTIAL\n${Array.from({ length: USERS }, (_, i) => `user${i}`).join('\n')}\n`);
  const reg = await startRegistrar();
  const results: Result[] = [];
  try {
    for (const name of ['register', 'invite-302']) {
      const cpu0 = cpuSeconds(reg.pid);
      const r = await runSipp(`${name}.xml`, csv, reg.port, forcedRate ?? Math.round(TARGETS[name] * 1.2), dir);
      const cpu1 = cpuSeconds(reg.pid);
      if (cpu0 !== undefined && cpu1 !== undefined && r.successful > 0)
        r.cpuUsPerTx = Math.round(((cpu1 - cpu0) / r.successful) * 1e6);
      const rss = rssMb(reg.pid);
      if (rss !== undefined) r.rssMb = Math.round(rss);
      results.push(r);
    }
  } finally {
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = results.map((r) => ({ ...r, target: TARGETS[r.scenario], met: r.perSecond >= TARGETS[r.scenario] }));
  const load = loadavg()[0].toFixed(1);
  process.stdout.write(
    `\nsecp2psip registrar under sipp, UDP loopback, ${cpus().length} cores, load average ${load}\n\n`,
  );
  process.stdout.write(
    'scenario     | offered/s | achieved/s | target | successful | failed | retrans | seconds | cpu us/tx | 1-core cap/s | rss MB\n',
  );
  process.stdout.write(
    '-------------|-----------|------------|--------|------------|--------|---------|---------|-----------|--------------|-------\n',
  );
  const opt = (v: number | undefined, w: number): string => (v === undefined ? '-' : String(v)).padStart(w);
  for (const r of rows)
    process.stdout.write(
      `${r.scenario.padEnd(12)} | ${String(r.offeredRate).padStart(9)} | ${String(r.perSecond).padStart(10)} | ${String(r.target).padStart(6)} | ${String(r.successful).padStart(10)} | ${String(r.failed).padStart(6)} | ${String(r.retransmissions).padStart(7)} | ${String(r.seconds).padStart(7)} | ${opt(r.cpuUsPerTx, 9)} | ${opt(r.cpuUsPerTx ? Math.round(1e6 / r.cpuUsPerTx) : undefined, 12)} | ${opt(r.rssMb, 6)}\n`,
    );
  const out = join(ROOT, 'bench/results/sip-registrar.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        bench: 'sip-registrar',
        date: new Date().toISOString(),
        node: process.version,
        cores: cpus().length,
        loadAverage: loadavg()[0],
        quick,
        results: rows,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`\nwrote ${out}\n`);
}

await main();
