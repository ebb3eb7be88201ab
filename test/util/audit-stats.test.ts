/**
 * Nearest-rank percentiles (the benchmark report's p50 / p90 / p99) against
 * the definition in exact integer arithmetic: the p-th percentile of n sorted
 * samples is the ceil(p * n / 100)-th smallest, for every n.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentile } from '../../src/util/stats.ts';

/** 1-based nearest rank for an integer percentile, without floating point. */
const rank = (p: number, n: number) => Math.max(1, Math.floor((p * n + 99) / 100));

/** Samples 1..n in a scrambled order, so sorting is exercised too. */
function scrambled(n: number): number[] {
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = 0; i < n; i++) {
    const j = (i * 7919) % n;
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

function mismatches(ps: number[], maxN: number): string[] {
  const out: string[] = [];
  for (let n = 1; n <= maxN; n++) {
    const xs = scrambled(n);
    for (const p of ps) {
      const got = percentile(xs, p);
      if (got !== rank(p, n)) out.push(`p${p} of ${n}: ${got}, want ${rank(p, n)}`);
    }
  }
  return out;
}

describe('nearest-rank percentile', () => {
  it('p50, p90 and p99 (the report columns) are exact for every n up to 1,000', () => {
    assert.deepEqual(mismatches([50, 90, 99], 1000), []);
  });

  it('p0 is the minimum, p100 the maximum; the value is always a sample', () => {
    for (const n of [1, 2, 3, 10, 101]) {
      const xs = scrambled(n).map((x) => x * 1.5);
      assert.equal(percentile(xs, 0), 1.5);
      assert.equal(percentile(xs, 100), n * 1.5);
      for (const p of [1, 33, 50, 66, 99]) assert.ok(xs.includes(percentile(xs, p)));
    }
  });

  it('every integer percentile is exact for every n up to 200', () => {
    const ps = Array.from({ length: 99 }, (_, i) => i + 1);
    const bad = mismatches(ps, 200);
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} mismatches`);
  });
});
