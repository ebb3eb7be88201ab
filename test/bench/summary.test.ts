import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { overheadPercent, perSecond, ratio, sig, single, summarize } from '../../bench/lib/summary.ts';

describe('bench summary arithmetic', () => {
  it('nearest-rank percentiles of 1..100', () => {
    const s = summarize(Array.from({ length: 100 }, (_, i) => 100 - i));
    assert.equal(s.n, 100);
    assert.equal(s.p50, 50);
    assert.equal(s.p90, 90);
    assert.equal(s.p99, 99);
    assert.equal(s.min, 1);
    assert.equal(s.max, 100);
    assert.equal(s.mean, 50.5);
  });

  it('a single sample is every percentile; sd of one sample is 0', () => {
    const s = single(7.25);
    assert.deepEqual([s.p50, s.p90, s.p99, s.min, s.max, s.sd], [7.25, 7.25, 7.25, 7.25, 7.25, 0]);
  });

  it('sample standard deviation', () => {
    assert.equal(summarize([2, 4, 4, 4, 5, 5, 7, 9]).sd, 2.138);
  });

  it('refuses empty and non-finite samples', () => {
    assert.throws(() => summarize([]), RangeError);
    assert.throws(() => summarize([1, Number.NaN]), RangeError);
  });

  it('rounds to significant digits', () => {
    assert.equal(sig(1234.5678), 1235);
    assert.equal(sig(0.00123456), 0.001235);
    assert.equal(sig(0), 0);
  });

  it('ratio is seed / ours and undefined when a side is missing or ours is zero', () => {
    assert.equal(ratio(481.03, 4.81), 100);
    assert.equal(ratio(169.53, 339.06), 0.5);
    assert.equal(ratio(null, 3), undefined);
    assert.equal(ratio(3, undefined), undefined);
    assert.equal(ratio(3, 0), undefined);
  });

  it("overhead of the seed's 481.03 ms matches its Figure 6 statements", () => {
    // seed 000 VI.3: 0.8 % for a 1-minute call, below 0.07 % at 12 minutes, below 0.1 % past 6 minutes.
    assert.equal(Math.round(overheadPercent(481.03, 1) * 10) / 10, 0.8);
    assert.ok(overheadPercent(481.03, 12) < 0.07);
    assert.ok(overheadPercent(481.03, 6) < 0.14 && overheadPercent(481.03, 8.1) < 0.1);
    assert.throws(() => overheadPercent(1, 0), RangeError);
  });

  it('rate per second', () => {
    assert.equal(perSecond(500, 250), 2000);
    assert.equal(perSecond(5, 0), 0);
  });
});
