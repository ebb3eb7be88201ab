/**
 * Run sipp with `-trace_stat -stf <file>` and read its last statistics line:
 * the one place the benchmarks spawn sipp and parse its ';'-separated CSV.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { track, untrack } from './reaper.ts';

export interface SippRun {
  /** A cumulative column of the last statistics line, e.g. 'SuccessfulCall(C)' (0 if absent). */
  col(name: string): number;
  /** Wall time from spawn to exit. */
  seconds: number;
  /** sipp's stderr (its tail is worth quoting in errors). */
  stderr: string;
}

/**
 * Spawn `sipp args` in `cwd`; `args` must include `-trace_stat -stf <stf>`. Rejects if no statistics were written.
 * With `deadlineS`, sipp is killed after that long (its own -timeout does not end a run whose calls still wait for
 * answers); with `-fd 1` the statistics file has a line per second, so the counts up to the deadline survive.
 */
export function runSippWithStats(args: string[], stf: string, cwd: string, deadlineS?: number): Promise<SippRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('sipp', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    track(p.pid);
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const stop = deadlineS === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), deadlineS * 1000);
    p.once('error', reject);
    p.once('exit', () => {
      untrack(p.pid);
      clearTimeout(stop);
      const seconds = (performance.now() - started) / 1000;
      let lines: string[];
      try {
        lines = readFileSync(stf, 'utf8').trim().split('\n');
      } catch (e) {
        reject(new Error(`sipp wrote no statistics: ${(e as Error).message} ${stderr.slice(-1000)}`));
        return;
      }
      const head = lines[0].split(';');
      const last = lines[lines.length - 1].split(';');
      resolve({ col: (name) => Number(last[head.indexOf(name)] ?? 0), seconds, stderr });
    });
  });
}
