/**
 * The servers bench/peers/kamailio.ts and bench/peers/overload.ts compare, each in its own process on its own
 * port on 127.0.0.1, and the measurements taken of them: CPU time (user + system, all processes of the server:
 * Kamailio forks a UDP worker, timers and a main process) and memory (RSS and PSS summed over those processes),
 * plus one sipp run of a fixture scenario against a server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpuQuota } from '../lib/cpu-quota.ts';
import { track, untrack } from '../lib/reaper.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export { type SippResult, sipp, usersCsv } from './sipp-load.ts';
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
      if (proc.exitCode !== null || proc.signalCode !== null) {
        untrack(proc.pid);
        return res();
      }
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => {
        clearTimeout(kill);
        untrack(proc.pid);
        res();
      });
      proc.kill('SIGTERM');
    });
}

/**
 * Spawn `cmd args`, inside the CPU quota group when one is given: a shell writes its own pid into the group and
 * then becomes the command (exec keeps the pid), so the server and every process it forks start under the quota.
 * The process is killed if the benchmark ends while it runs (reaper.ts).
 */
function spawnServer(
  cmd: string,
  args: string[],
  opts: { cwd?: string; stdio: Array<'ignore' | 'pipe'> },
  quota?: CpuQuota,
): ChildProcess {
  const proc = quota
    ? spawn('/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', join(quota.path, 'cgroup.procs'), cmd, ...args], opts)
    : spawn(cmd, args, opts);
  track(proc.pid);
  return proc;
}

/** `secp2psip registrar` on a free UDP port of 127.0.0.1; `extra` are further CLI options. */
function startOurs(extra: string[], nodeArgs: string[], root = ROOT, quota?: CpuQuota): Promise<RunningServer> {
  const proc = spawnServer(
    process.execPath,
    [...nodeArgs, join(root, 'bin/secp2psip.mjs'), 'registrar', '--listen', '127.0.0.1:0', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: root },
    quota,
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
async function startKamailio(stateful: boolean, quota?: CpuQuota): Promise<RunningServer> {
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
    const proc = spawnServer(KAMAILIO, args, { stdio: ['ignore', 'pipe', 'pipe'] }, quota);
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
  opts: { ours?: string[]; nodeArgs?: string[]; baseline?: string; quota?: CpuQuota } = {},
): Promise<RunningServer> {
  if (kind === 'ours') return startOurs(opts.ours ?? ['--log-level', 'info'], opts.nodeArgs ?? [], ROOT, opts.quota);
  if (kind === 'baseline') {
    if (!opts.baseline) throw new Error('the baseline server needs --baseline DIR');
    return startOurs(['--log-level', 'info'], opts.nodeArgs ?? [], opts.baseline, opts.quota);
  }
  return startKamailio(kind === 'kamailio-stateful', opts.quota);
}

export function workDir(): string {
  return mkdtempSync(join(tmpdir(), 'bench-peers-'));
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
