/**
 * sipp as the load generator of bench/peers/: one fixture scenario (register.xml or invite-302.xml) offered at a
 * rate for a number of seconds, by one sipp process or, for rates one process cannot reach, by several in
 * parallel (each on its own local port with its own share of the users and of the rate), their counts added.
 * Each process writes a statistics line per second (-fd 1), read back for per-second counts and for the rate it
 * actually managed to offer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSippWithStats } from '../lib/sipp.ts';

export const FIX_DIR = join(import.meta.dirname, '../../test/fixtures/sipp');

export interface SippResult {
  successful: number;
  failed: number;
  retransmissions: number;
  seconds: number;
  /** Successful transactions per second of wall time. */
  goodput: number;
  /** Calls sipp started (what it managed to offer). */
  offered: number;
  /** The rate at which calls were started, per second of the time spent starting them. */
  offeredRate: number;
  /** Seconds spent starting the calls (the phase length sipp actually achieved). */
  sendingSeconds: number;
  /** Successful calls in each second of the run (sipp's periodic statistics, -fd 1), all instances added. */
  perSecond: number[];
  /** Retransmissions sipp sent in each second. */
  retransPerSecond: number[];
  /** Calls failed in each second (an unexpected 503, a timeout). */
  failedPerSecond: number[];
  /** sipp processes used. */
  instances: number;
}

/** The users file sipp reads: user0..user{n-1}, in order. */
export function usersCsv(dir: string, users: number): string {
  const csv = join(dir, 'users.csv');
  writeFileSync(csv, `SEQUENTIAL\n${Array.from({ length: users }, (_, i) => `user${i}`).join('\n')}\n`);
  return csv;
}

/** The users of `csv` dealt into `n` files (user i to file i mod n), one per sipp instance. */
function splitUsers(csv: string, n: number): string[] {
  if (n === 1) return [csv];
  const users = readFileSync(csv, 'utf8').trim().split('\n').slice(1);
  return Array.from({ length: n }, (_, k) => {
    const f = csv.replace(/\.csv$/, `-${k}of${n}.csv`);
    writeFileSync(f, `SEQUENTIAL\n${users.filter((_, i) => i % n === k).join('\n')}\n`);
    return f;
  });
}

interface Stats {
  rows: string[][];
  col(row: string[], name: string): number;
  /** Epoch seconds of a row's CurrentTime. */
  at(row: string[]): number;
  start: number;
}

function readStats(stf: string): Stats {
  const lines = readFileSync(stf, 'utf8').trim().split('\n');
  const head = lines[0].split(';');
  const rows = lines.slice(1).map((l) => l.split(';'));
  const epoch = (v: string | undefined): number => Number((v ?? '').split('\t').pop()?.trim().split(/\s+/).pop());
  const start = epoch(rows[0]?.[head.indexOf('StartTime')]);
  return {
    rows,
    col: (row, name) => Number(row[head.indexOf(name)] ?? 0),
    at: (row) => epoch(row[head.indexOf('CurrentTime')]),
    start,
  };
}

let runs = 0;

/**
 * Offer `scenario` at `rate` calls/s for `seconds` to 127.0.0.1:port, split over `instances` sipp processes.
 * `timeoutS` kills sipp that long after the start (calls still waiting for an answer then are not counted).
 * sipp's limit on calls in progress is set high (`rate` x 12), so a server that stops answering does not throttle
 * the offered load much (a closed loop would hide overload).
 */
export async function sipp(
  scenario: string,
  csv: string,
  port: number,
  rate: number,
  seconds: number,
  dir: string,
  opts: { timeoutS?: number; instances?: number } = {},
): Promise<SippResult> {
  const n = Math.max(1, Math.floor(opts.instances ?? 1));
  const csvs = splitUsers(csv, n);
  const one = rate / n;
  const calls = Math.max(1, Math.round(one * seconds));
  const runsOf = csvs.map(async (file, k) => {
    const stf = join(dir, `${scenario}-${process.pid}-${runs++}-${k}.csv`);
    const args = [
      ...['-sf', join(FIX_DIR, `${scenario}.xml`), '-inf', file],
      ...['-r', String(Math.round(one * 1000) / 1000), '-rp', '1000', '-m', String(calls)],
      ...['-l', String(Math.max(2000, Math.round(one * 12)))],
      ...['-i', '127.0.0.1', '-p', '0', '-t', 'u1', '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1'],
      `127.0.0.1:${port}`,
    ];
    const run = await runSippWithStats(args, stf, dir, opts.timeoutS);
    return { run, stats: readStats(stf) };
  });
  const done = await Promise.all(runsOf);
  const perSecond: number[] = [];
  const retransPerSecond: number[] = [];
  const failedPerSecond: number[] = [];
  let offered = 0;
  let successful = 0;
  let failed = 0;
  let retransmissions = 0;
  let wall = 0;
  let sendingSeconds = 0;
  for (const { run, stats } of done) {
    const { rows, col } = stats;
    offered += run.col('OutgoingCall(C)');
    successful += run.col('SuccessfulCall(C)');
    failed += run.col('FailedCall(C)');
    retransmissions += run.col('Retransmissions(C)');
    wall = Math.max(wall, run.seconds);
    // The first statistics line is written at the start, with zero counts.
    rows.slice(1).forEach((row, i) => {
      perSecond[i] = (perSecond[i] ?? 0) + col(row, 'SuccessfulCall(P)');
      retransPerSecond[i] = (retransPerSecond[i] ?? 0) + col(row, 'Retransmissions(P)');
      failedPerSecond[i] = (failedPerSecond[i] ?? 0) + col(row, 'FailedCall(P)');
    });
    // When the last call was started: the first line whose cumulative count reached the total, less the part of
    // its period after that (estimated from the period's rate).
    const total = run.col('OutgoingCall(C)');
    const last = rows.find((r) => col(r, 'OutgoingCall(C)') >= total && total > 0);
    if (last) {
      const periodS = Math.max(1e-3, stats.at(last) - stats.at(rows[Math.max(0, rows.indexOf(last) - 1)]));
      const inPeriod = col(last, 'OutgoingCall(P)');
      const used = inPeriod > 0 ? Math.min(periodS, inPeriod / one) : periodS;
      sendingSeconds = Math.max(sendingSeconds, stats.at(last) - stats.start - periodS + used);
    }
  }
  sendingSeconds = Math.max(sendingSeconds, 1e-3);
  return {
    offered,
    offeredRate: Math.round(offered / Math.max(sendingSeconds, seconds * 0.5)),
    sendingSeconds: Math.round(sendingSeconds * 100) / 100,
    perSecond,
    retransPerSecond,
    failedPerSecond,
    successful,
    failed,
    retransmissions,
    seconds: Math.round(wall * 100) / 100,
    goodput: Math.round(successful / wall),
    instances: n,
  };
}
