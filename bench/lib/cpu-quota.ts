/**
 * A CPU quota for the servers a benchmark measures: a cgroup (v1 `cpu` controller, CFS bandwidth control) whose
 * processes together get `share` of one core, e.g. 0.25 = 2.5 ms of CPU in every 10 ms period. Giving every
 * server the same quota makes its capacity a fraction of what a free core gives, so that a load generator on the
 * remaining cores can offer several times that capacity.
 *
 * The group is removed when the benchmark ends, however it ends: on exit, on SIGINT, SIGTERM or SIGHUP, and on an
 * uncaught error, every process still in it is killed first (a cgroup with tasks cannot be removed). Groups left
 * by a benchmark that was itself killed with SIGKILL are removed at the next start (their names carry the pid).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { atExit } from './reaper.ts';

const CPU_ROOT = '/sys/fs/cgroup/cpu';
const PREFIX = 'bench-quota-';

export interface CpuQuota {
  /** Share of one core, e.g. 0.25. */
  share: number;
  periodUs: number;
  quotaUs: number;
  path: string;
  /** Move a running process into the group (its later children stay in it). */
  add(pid: number): void;
  /** Throttled periods and time so far (cpu.stat). */
  throttled(): { periods: number; throttledPeriods: number; throttledMs: number };
  /** Kill what is still in the group and remove it; safe to call more than once. */
  remove(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function tasks(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Kill every process in the group, wait (up to 3 s) for it to empty, remove it. Synchronous: usable on exit. */
function removeGroup(path: string): void {
  if (!existsSync(path)) return;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 60; i++) {
    const left = tasks(path);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    try {
      rmdirSync(path);
      return;
    } catch {
      Atomics.wait(sleeper, 0, 0, 50);
    }
  }
  process.stderr.write(`could not remove cgroup ${path}: processes ${tasks(path).join(' ')} remain\n`);
}

/** Groups of earlier runs whose benchmark process is gone. */
function removeStale(): void {
  let names: string[];
  try {
    names = readdirSync(CPU_ROOT);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(PREFIX)) continue;
    const owner = Number(n.slice(PREFIX.length).split('-')[0]);
    if (Number.isInteger(owner) && !pidAlive(owner)) removeGroup(join(CPU_ROOT, n));
  }
}

let serial = 0;

/**
 * A new group limited to `share` of a core in periods of `periodUs`, with `shares` as its weight. Fails with a one-line reason when the cpu
 * controller is not mounted at /sys/fs/cgroup/cpu (cgroup v1) or the process may not write there (needs root).
 */
export function createCpuQuota(share: number, periodUs = 10_000, shares?: number): CpuQuota {
  if (!(share > 0 && share <= 64)) throw new Error(`CPU quota ${share}: needs a share of a core above 0`);
  if (!existsSync(join(CPU_ROOT, 'cpu.cfs_quota_us')))
    throw new Error(`no cgroup v1 cpu controller at ${CPU_ROOT}: run without a CPU quota`);
  removeStale();
  const path = join(CPU_ROOT, `${PREFIX}${process.pid}-${serial++}`);
  const quotaUs = Math.max(1000, Math.round(share * periodUs));
  try {
    mkdirSync(path);
    writeFileSync(join(path, 'cpu.cfs_period_us'), String(periodUs));
    writeFileSync(join(path, 'cpu.cfs_quota_us'), String(quotaUs));
    // Weight against the other work on the machine (1024 each): the group gets its quota sooner when the cores
    // are contended, and never more than the quota.
    if (shares !== undefined) writeFileSync(join(path, 'cpu.shares'), String(Math.round(shares)));
  } catch (e) {
    removeGroup(path);
    throw new Error(`cannot set up cgroup ${path}: ${(e as Error).message}`);
  }
  const q: CpuQuota = {
    share: quotaUs / periodUs,
    periodUs,
    quotaUs,
    path,
    add(pid) {
      writeFileSync(join(path, 'cgroup.procs'), String(pid));
    },
    throttled() {
      const s = readFileSync(join(path, 'cpu.stat'), 'utf8');
      const v = (k: string): number => Number(new RegExp(`^${k} (\\d+)`, 'm').exec(s)?.[1] ?? 0);
      return {
        periods: v('nr_periods'),
        throttledPeriods: v('nr_throttled'),
        throttledMs: Math.round(v('throttled_time') / 1e6),
      };
    },
    remove() {
      removeGroup(path);
    },
  };
  atExit(() => q.remove());
  return q;
}
