/**
 * The servers bench/peers/kamailio.ts and bench/peers/overload.ts compare, each in its own process on its own
 * port on 127.0.0.1, and the measurements taken of them: CPU time (user + system, all processes of the server:
 * Kamailio forks a UDP worker, timers and a main process) and memory (RSS and PSS summed over those processes),
 * plus one sipp run of a fixture scenario against a server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSippWithStats } from '../lib/sipp.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const FIX = join(ROOT, 'test/fixtures/sipp');
const KAMAILIO = '/usr/sbin/kamailio';

/** 'baseline' is our registrar from another checkout (--baseline DIR), to measure a change in the same run. */
export type ServerKind = 'ours' | 'baseline' | 'kamailio-stateless' | 'kamailio-stateful';
export const KINDS: readonly ServerKind[] = ['ours', 'kamailio-stateless', 'kamailio-stateful'];

export interface RunningServer {
  kind: ServerKind;
  port: number;
  pid: number;
  /** The server's processes: the main one and its children. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Linux clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on every common build). */
const USER_HZ = 100;

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process and every descendant, from the parent pid field of /proc/<pid>/stat. */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid)) continue;
    const f = statFields(pid);
    if (f) parent.set(pid, Number(f[1]));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of parent) if (pp === out[i]) out.push(p);
  return out;
}

/** CPU seconds (user + system) used so far by these processes (stat(5) fields 14 and 15). */
export function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) t += (Number(f[11]) + Number(f[12])) / USER_HZ;
  }
  return t;
}

/** Resident and proportional set sizes summed over the processes, MB (smaps_rollup). */
export function memoryMb(pids: number[]): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return { rss: Math.round(rss / 102.4) / 10, pss: Math.round(pss / 102.4) / 10 };
}

export function cpuModel(): string {
  const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return (m?.[1] ?? 'unknown').replace(/\s+/g, ' ').trim();
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((res) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return res();
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => {
        clearTimeout(kill);
        res();
      });
      proc.kill('SIGTERM');
    });
}

/** `secp2psip registrar` on a free UDP port of 127.0.0.1; `extra` are further CLI options. */
function startOurs(extra: string[], nodeArgs: string[], root = ROOT): Promise<RunningServer> {
  const proc = spawn(
    process.execPath,
    [...nodeArgs, join(root, 'bin/secp2psip.mjs'), 'registrar', '--listen', '127.0.0.1:0', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: root },
  );
  let err = '';
  return new Promise((resolve, reject) => {
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"port":(\d+)/.exec(err);
      if (m && proc.pid !== undefined) {
        const pid = proc.pid;
        proc.stderr?.removeAllListeners('data');
        proc.stderr?.resume();
        const kind = root === ROOT ? 'ours' : 'baseline';
        resolve({ kind, port: Number(m[1]), pid, pids: () => [pid], stop: stopper(proc) });
      }
    });
    proc.once('exit', (code) => reject(new Error(`registrar exited (${code}): ${err.slice(-2000)}`)));
  });
}

let nextKamailioPort = 25060 + (process.pid % 2000) * 2;

/** Kamailio with bench/peers/kamailio.cfg, one UDP worker, in the foreground. */
async function startKamailio(stateful: boolean): Promise<RunningServer> {
  const run = mkdtempSync(join(tmpdir(), 'bench-kamailio-'));
  for (let attempt = 0; ; attempt++) {
    const port = nextKamailioPort++;
    const args = [
      '-f',
      join(ROOT, 'bench/peers/kamailio.cfg'),
      '-DD',
      '-E',
      '-n',
      '1',
      '-l',
      `udp:127.0.0.1:${port}`,
      '-Y',
      run,
      '-w',
      run,
      '-P',
      join(run, 'kamailio.pid'),
      // Shared memory for usrloc and (stateful) the transaction table; private memory per process.
      '-m',
      '512',
      '-M',
      '16',
      ...(stateful ? ['-A', 'STATEFUL'] : []),
    ];
    // Kamailio prints its listening addresses on stdout, errors on stderr.
    const proc = spawn(KAMAILIO, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const ok = await new Promise<boolean>((resolve) => {
      const read = (d: Buffer): void => {
        err += d.toString();
        if (err.includes('Aliases:')) resolve(true);
      };
      proc.stdout?.on('data', read);
      proc.stderr?.on('data', read);
      proc.once('exit', () => resolve(false));
      setTimeout(() => resolve(false), 10_000);
    });
    if (ok && proc.pid !== undefined) {
      const pid = proc.pid;
      for (const s of [proc.stdout, proc.stderr]) {
        s?.removeAllListeners('data');
        s?.resume();
      }
      // Give the forked workers a moment to settle before the first measurement reads their stat files.
      await new Promise((r) => setTimeout(r, 300));
      const stop = stopper(proc);
      return {
        kind: stateful ? 'kamailio-stateful' : 'kamailio-stateless',
        port,
        pid,
        pids: () => processTree(pid),
        stop: async () => {
          await stop();
          rmSync(run, { recursive: true, force: true });
        },
      };
    }
    await stopper(proc)();
    if (attempt >= 5) throw new Error(`kamailio did not start: ${err.slice(-2000)}`);
  }
}

export function startServer(
  kind: ServerKind,
  opts: { ours?: string[]; nodeArgs?: string[]; baseline?: string } = {},
): Promise<RunningServer> {
  if (kind === 'ours') return startOurs(opts.ours ?? ['--log-level', 'info'], opts.nodeArgs ?? []);
  if (kind === 'baseline') {
    if (!opts.baseline) throw new Error('the baseline server needs --baseline DIR');
    return startOurs(['--log-level', 'info'], opts.nodeArgs ?? [], opts.baseline);
  }
  return startKamailio(kind === 'kamailio-stateful');
}

export interface SippResult {
  successful: number;
  failed: number;
  retransmissions: number;
  seconds: number;
  /** Successful transactions per second of wall time. */
  goodput: number;
  /** Calls sipp started (what it managed to offer). */
  offered: number;
  /** Successful calls in each second of the run (sipp's periodic statistics, -fd 1). */
  perSecond: number[];
}

/** The users file sipp reads: user0..user{n-1}, in order. */
export function usersCsv(dir: string, users: number): string {
  const csv = join(dir, 'users.csv');
  writeFileSync(csv, `SEQUENTIAL\n${Array.from({ length: users }, (_, i) => `user${i}`).join('\n')}\n`);
  return csv;
}

export function workDir(): string {
  return mkdtempSync(join(tmpdir(), 'bench-peers-'));
}

/** One sipp UAC run of a fixture scenario (register.xml or invite-302.xml) at `rate` calls/s for `seconds`. */
export async function sipp(
  scenario: string,
  csv: string,
  port: number,
  rate: number,
  seconds: number,
  dir: string,
  opts: { timeoutS?: number } = {},
): Promise<SippResult> {
  const calls = Math.max(1, Math.round(rate * seconds));
  const stf = join(dir, `${scenario}-${Date.now()}.csv`);
  const args = [
    ...['-sf', join(FIX, `${scenario}.xml`), '-inf', csv],
    ...['-r', String(rate), '-rp', '1000', '-m', String(calls), '-l', String(Math.max(2000, rate * 4))],
    ...['-i', '127.0.0.1', '-p', '0', '-t', 'u1', '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1'],
    `127.0.0.1:${port}`,
  ];
  const run = await runSippWithStats(args, stf, dir, opts.timeoutS);
  const successful = run.col('SuccessfulCall(C)');
  const lines = readFileSync(stf, 'utf8').trim().split('\n');
  const col = lines[0].split(';').indexOf('SuccessfulCall(P)');
  return {
    offered: run.col('OutgoingCall(C)'),
    perSecond: col < 0 ? [] : lines.slice(1).map((l) => Number(l.split(';')[col] ?? 0)),
    successful,
    failed: run.col('FailedCall(C)'),
    retransmissions: run.col('Retransmissions(C)'),
    seconds: Math.round(run.seconds * 100) / 100,
    goodput: Math.round(successful / run.seconds),
  };
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
