/** Percentile by nearest rank on a copy of the samples; NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  // p * n first: (p / 100) * n is inexact (p7 of 100 would give the 8th sample).
  const rank = Math.ceil((p * sorted.length) / 100);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  let s = 0;
  for (const x of samples) s += x;
  return s / samples.length;
}

export function stddev(samples: readonly number[]): number {
  if (samples.length < 2) return 0;
  const m = mean(samples);
  let s = 0;
  for (const x of samples) s += (x - m) * (x - m);
  return Math.sqrt(s / (samples.length - 1));
}
