/**
 * The arithmetic behind every row of the benchmark report: summaries of
 * samples (nearest-rank percentiles from src/util/stats.ts), the seed/ours
 * ratio, and the call-length overhead of seed 000 section VI.3 (Figure 6).
 */
import { mean, percentile, stddev } from '../../src/util/stats.ts';

export interface Summary {
  n: number;
  mean: number;
  sd: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Round to a number of significant digits, so JSON and tables stay readable (0 and non-finite pass through). */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const mag = Math.floor(Math.log10(Math.abs(x)));
  const f = 10 ** (digits - 1 - mag);
  return Math.round(x * f) / f;
}

/** Summary of samples; throws on an empty set (a row with no samples is "not measured", not a summary). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('summarize: no samples');
  for (const x of samples) if (!Number.isFinite(x)) throw new RangeError(`summarize: non-finite sample ${x}`);
  let min = samples[0];
  let max = samples[0];
  for (const x of samples) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return {
    n: samples.length,
    mean: sig(mean(samples)),
    sd: sig(stddev(samples)),
    min: sig(min),
    p50: sig(percentile(samples, 50)),
    p90: sig(percentile(samples, 90)),
    p99: sig(percentile(samples, 99)),
    max: sig(max),
  };
}

/** A single value (a rate, a derived percentage) as a summary of one sample. */
export function single(x: number): Summary {
  return summarize([x]);
}

/**
 * How many times smaller ours is than the seed's (seed / ours), for times
 * where lower is better. Undefined when either side is missing or ours is 0.
 */
export function ratio(seed: number | null | undefined, ours: number | null | undefined): number | undefined {
  if (seed === null || seed === undefined || ours === null || ours === undefined) return undefined;
  if (!Number.isFinite(seed) || !Number.isFinite(ours) || ours <= 0 || seed < 0) return undefined;
  return sig(seed / ours, 3);
}

/** Seed 000 VI.3: setup time as a percentage of a call of `minutes` minutes. */
export function overheadPercent(setupMs: number, minutes: number): number {
  if (!(minutes > 0)) throw new RangeError('call length must be positive');
  return (setupMs / (minutes * 60_000)) * 100;
}

/** Events per second from a count and an elapsed time in ms. */
export function perSecond(count: number, elapsedMs: number): number {
  if (!(elapsedMs > 0)) return 0;
  return (count * 1000) / elapsedMs;
}
