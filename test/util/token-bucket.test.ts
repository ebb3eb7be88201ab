import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimClock } from '../../src/util/clock.ts';
import { TokenBuckets } from '../../src/util/token-bucket.ts';

test('a key spends its burst, then earns tokens back at its rate; keys are independent', () => {
  const clock = new SimClock(0);
  const b = new TokenBuckets(clock, { burst: 3, perSecond: 0.5 });
  assert.deepEqual([b.take('a'), b.take('a'), b.take('a'), b.take('a')], [true, true, true, false]);
  assert.equal(b.allows('a'), false);
  assert.equal(b.take('b'), true);
  clock.advance(1999);
  assert.equal(b.take('a'), false);
  clock.advance(1);
  assert.equal(b.take('a'), true);
  clock.advance(60_000);
  assert.deepEqual([b.take('a'), b.take('a'), b.take('a'), b.take('a')], [true, true, true, false]);
});

test('the table stays bounded: full buckets go first, then the oldest', () => {
  const clock = new SimClock(0);
  const b = new TokenBuckets(clock, { burst: 1, perSecond: 1 }, 2);
  b.take('x');
  b.take('y');
  b.take('z'); // evicts x (oldest; none is full yet)
  assert.equal(b.take('x'), true);
  assert.equal(b.take('z'), false);
});

test('waitMs says how long until a key may spend again (what a Retry-After is made from)', () => {
  const clock = new SimClock(0);
  const b = new TokenBuckets(clock, { burst: 2, perSecond: 10 / 60 });
  assert.equal(b.waitMs('a'), 0);
  b.take('a');
  b.take('a');
  assert.equal(b.waitMs('a'), 6000);
  clock.advance(4000);
  assert.equal(b.waitMs('a'), 2000);
  clock.advance(2000);
  assert.equal(b.waitMs('a'), 0);
  assert.equal(b.take('a'), true);
});
