import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs, parseHostPort, intOption } from '../../src/util/args.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SeededRandom, shuffle } from '../../src/util/random.ts';
import { mean, percentile } from '../../src/util/stats.ts';
import { isOverlayError } from '../../src/util/errors.ts';

describe('SimClock', () => {
  it('fires timers in time then insertion order, and cancelled ones never', () => {
    const c = new SimClock();
    const seen: string[] = [];
    c.setTimer(20, () => seen.push('b'));
    c.setTimer(10, () => seen.push('a'));
    c.setTimer(20, () => seen.push('c'));
    const t = c.setTimer(15, () => seen.push('x'));
    t.cancel();
    c.advance(19);
    assert.deepEqual(seen, ['a']);
    assert.equal(c.now(), 19);
    c.advance(1);
    assert.deepEqual(seen, ['a', 'b', 'c']);
  });

  it('runs timers scheduled by timers', () => {
    const c = new SimClock();
    let n = 0;
    const tick = () => {
      n++;
      if (n < 5) c.setTimer(100, tick);
    };
    c.setTimer(100, tick);
    assert.equal(c.runAll(), true);
    assert.equal(n, 5);
    assert.equal(c.now(), 500);
  });
});

describe('SeededRandom', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const c = new SeededRandom(43);
    const xs = Array.from({ length: 8 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 8 }, () => b.next()),
    );
    assert.notDeepEqual(
      xs,
      Array.from({ length: 8 }, () => c.next()),
    );
    for (const x of xs) assert.ok(x >= 0 && x < 1);
  });

  it('shuffles to a permutation', () => {
    const arr = shuffle([1, 2, 3, 4, 5, 6], new SeededRandom(1));
    assert.deepEqual([...arr].sort(), [1, 2, 3, 4, 5, 6]);
  });
});

describe('stats', () => {
  it('computes nearest-rank percentiles', () => {
    const xs = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    assert.equal(percentile(xs, 50), 5);
    assert.equal(percentile(xs, 99), 10);
    assert.equal(percentile(xs, 0), 1);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.equal(mean([1, 2, 3]), 2);
  });
});

describe('args', () => {
  it('parses options and refuses unknown ones with a one-line message', () => {
    const spec = {
      listen: { type: 'string' as const },
      json: { type: 'boolean' as const },
      peer: { type: 'list' as const },
    };
    const a = parseArgs(['--listen', '127.0.0.1:5060', '--json', '--peer=x', '--peer', 'y'], spec);
    assert.equal(a.listen, '127.0.0.1:5060');
    assert.equal(a.json, true);
    assert.deepEqual(a.peer, ['x', 'y']);
    assert.throws(
      () => parseArgs(['--bogus'], spec),
      (e) => isOverlayError(e, 'BAD_ARGUMENT') && !e.message.includes('\n'),
    );
    assert.throws(() => parseArgs(['--listen'], spec), /needs a value/);
  });

  it('parses host:port for IPv4, names and IPv6', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:5060', 'x'), { host: '127.0.0.1', port: 5060 });
    assert.deepEqual(parseHostPort('[::1]:5070', 'x'), { host: '::1', port: 5070 });
    assert.throws(() => parseHostPort('nohost', 'x'), /host:port/);
    assert.throws(() => parseHostPort('a:99999', 'x'), /65535/);
    assert.throws(() => intOption({ n: 'abc' }, 'n', 1, 10), /--n must be an integer/);
  });
});
