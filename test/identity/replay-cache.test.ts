import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplayCache } from '../../src/identity/replay-cache.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';

describe('ReplayCache', () => {
  it('accepts a nonce once and refuses its replay, per scope', () => {
    const clock = new SimClock();
    const rc = new ReplayCache({ clock, windowMs: 30_000 });
    const now = clock.wallNow();
    assert.deepEqual(rc.check('n1', now), { ok: true });
    const again = rc.check('n1', now);
    assert.ok(!again.ok && again.code === 'IDENTITY_REPLAY');
    assert.ok(rc.check('n1', now, 'other-sender').ok);
    assert.ok(rc.check(new Uint8Array([1, 2]), now).ok);
    assert.equal(rc.check(new Uint8Array([1, 2]), now).ok, false);
  });

  it('refuses timestamps outside the window, and replays after the nonce is forgotten', () => {
    const clock = new SimClock();
    const rc = new ReplayCache({ clock, windowMs: 30_000 });
    const t = clock.wallNow();
    const past = rc.check('a', t - 30_001);
    assert.ok(!past.ok && past.code === 'IDENTITY_STALE');
    assert.equal(rc.check('b', t + 30_001).ok, false);
    assert.ok(rc.check('c', t).ok);
    clock.advance(29_000);
    assert.equal(rc.check('c', t).ok, false, 'still remembered inside the window');
    clock.advance(2_000);
    const late = rc.check('c', t);
    assert.ok(!late.ok && late.code === 'IDENTITY_STALE', 'forgotten, but the window refuses it');
    assert.equal(rc.size, 0);
  });

  it('stays bounded under a flood and never accepts a replay of an evicted nonce', () => {
    const clock = new SimClock();
    const rc = new ReplayCache({ clock, windowMs: 60_000, maxEntries: 100 });
    const rnd = new SeededRandom(2);
    const accepted: [string, number][] = [];
    for (let i = 0; i < 5000; i++) {
      const ts = clock.wallNow() - rnd.int(50_000);
      const nonce = `n${i}`;
      if (rc.check(nonce, ts).ok) accepted.push([nonce, ts]);
      if (i % 50 === 0) clock.advance(100);
      assert.ok(rc.size <= 100);
    }
    for (const [nonce, ts] of accepted) assert.equal(rc.check(nonce, ts).ok, false, `${nonce} replayed`);
    assert.ok(rc.stats.evicted > 0);
  });
});
