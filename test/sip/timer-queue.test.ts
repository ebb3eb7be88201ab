/**
 * The transaction layer's timer queue (one clock timer for all transaction timers): each timer fires at its own
 * instant, in time order across durations, cancelled ones never fire, and the queue stays bounded when most
 * timers are cancelled (Timers G and H of an INVITE answered and ACKed at once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerQueue } from '../../src/sip/timer-queue.ts';
import { SimClock } from '../../src/util/clock.ts';

describe('TimerQueue', () => {
  it('fires each timer at its own time, earliest first across durations', () => {
    const clock = new SimClock();
    const q = new TimerQueue(clock);
    const fired: Array<[string, number]> = [];
    q.set(500, () => fired.push(['G', clock.now()]));
    q.set(32_000, () => fired.push(['H', clock.now()]));
    clock.advance(100);
    q.set(500, () => fired.push(['G2', clock.now()]));
    q.set(200, () => fired.push(['100', clock.now()]));
    clock.advance(399);
    assert.deepEqual(fired, [['100', 300]]);
    clock.advance(1);
    assert.deepEqual(fired, [
      ['100', 300],
      ['G', 500],
    ]);
    clock.advance(100);
    assert.deepEqual(fired.at(-1), ['G2', 600]);
    clock.runAll();
    assert.deepEqual(fired.at(-1), ['H', 32_000]);
    assert.equal(fired.length, 4);
    assert.equal(q.size, 0);
  });

  it('a cancelled timer never fires; cancelling after firing is harmless', () => {
    const clock = new SimClock();
    const q = new TimerQueue(clock);
    const fired: string[] = [];
    const a = q.set(1000, () => fired.push('a'));
    const b = q.set(1000, () => fired.push('b'));
    a.cancel();
    clock.advance(1000);
    assert.deepEqual(fired, ['b']);
    b.cancel();
    a.cancel();
    clock.runAll();
    assert.deepEqual(fired, ['b']);
  });

  it('timers set from a firing callback run at their own time (a retransmission timer that doubles)', () => {
    const clock = new SimClock();
    const q = new TimerQueue(clock);
    const at: number[] = [];
    let interval = 500;
    const fire = (): void => {
      at.push(clock.now());
      interval = Math.min(interval * 2, 4000);
      if (at.length < 6) q.set(interval, fire);
    };
    q.set(interval, fire);
    clock.runAll();
    // Timer G: 500 ms, then MIN(2*T1, T2) doubling up to T2 (RFC 3261 17.2.1).
    assert.deepEqual(at, [500, 1500, 3500, 7500, 11_500, 15_500]);
  });

  it('a timer due at once fires on the next clock turn, not inside set()', () => {
    const clock = new SimClock();
    const q = new TimerQueue(clock);
    let fired = 0;
    q.set(0, () => fired++);
    q.set(-5, () => fired++);
    assert.equal(fired, 0);
    clock.advance(0);
    assert.equal(fired, 2);
  });

  it('one throwing callback does not lose the others', () => {
    const clock = new SimClock();
    const q = new TimerQueue(clock);
    const fired: string[] = [];
    q.set(10, () => {
      throw new Error('boom');
    });
    q.set(10, () => fired.push('after'));
    assert.throws(() => clock.advance(10), /boom/);
    clock.advance(0);
    assert.deepEqual(fired, ['after']);
  });

  it('cancelled timers are swept out when they pile up', () => {
    const clock = new SimClock();
    const q = new TimerQueue(clock);
    let fired = 0;
    const keep = q.set(64_000, () => fired++);
    for (let i = 0; i < 10_000; i++) {
      q.set(32_000, () => fired++).cancel();
      q.set(500, () => fired++).cancel();
    }
    assert.ok(q.size < 2_100, `queue holds ${q.size} entries`);
    clock.runAll();
    assert.equal(fired, 1);
    assert.equal(q.size, 0);
    keep.cancel();
  });
});
